"""Badcase endpoints: list with filters and pagination, one with reasons and evidence."""

from typing import Literal

from fastapi import APIRouter, Depends, Query
from sqlalchemy import func, select

from schemas import tables as t
from schemas.errors import NotFound
from schemas.read import BadcaseOut, BadcaseReasonOut
from services.api.deps import ObjectId, SessionDep, require
from services.api.errors import ERROR_RESPONSES
from services.api.ingest import interaction_out

router = APIRouter(prefix="/v1", tags=["badcases"])

Status = Literal["flagged", "queued", "in_review", "resolved", "ambiguous", "adjudication", "dismissed"]


def badcase_out(bc: t.Badcase, event_id: str, details=None, interaction=None) -> BadcaseOut:
    """The read shape of a badcase."""
    fields = {k: getattr(bc, k) for k in BadcaseOut.model_fields if hasattr(bc, k) and k not in ("details", "interaction")}
    return BadcaseOut(**fields, interaction_event_id=event_id, details=details or [], interaction=interaction)


@router.get("/badcases", responses=ERROR_RESPONSES, dependencies=[Depends(require("lead", "ops"))])
def list_badcases(session: SessionDep, status: Status | None = None,
                  reason: str | None = Query(None, max_length=40), bucket: str | None = Query(None, max_length=20),
                  model_version: str | None = Query(None, max_length=200),
                  limit: int = Query(50, ge=1, le=500), offset: int = Query(0, ge=0, le=10**9)) -> dict:
    """Badcases by priority, filtered by status, reason, bucket and model version; paginated."""
    bc, it = t.Badcase, t.Interaction
    q = select(bc, it.event_id).join(it, it.id == bc.interaction_id)
    if status:
        q = q.where(bc.status == status)
    if bucket:
        q = q.where(bc.bucket == bucket)
    if model_version:
        q = q.where(bc.model_version == model_version)
    if reason:
        q = q.where(bc.id.in_(select(t.BadcaseReason.badcase_id).where(t.BadcaseReason.rule == reason)))
    total = session.scalar(select(func.count()).select_from(q.subquery()))
    rows = session.execute(q.order_by(bc.priority.desc(), bc.id).limit(limit).offset(offset)).all()
    return {"total": total, "limit": limit, "offset": offset,
            "items": [badcase_out(b, eid).model_dump(mode="json") for b, eid in rows]}


@router.get("/badcases/{badcase_id}", response_model=BadcaseOut, responses=ERROR_RESPONSES,
            dependencies=[Depends(require("lead", "ops"))])
def get_badcase(badcase_id: ObjectId, session: SessionDep) -> BadcaseOut:
    """One badcase with every reason and its evidence, and the interaction it is about."""
    bc = session.get(t.Badcase, badcase_id)
    if bc is None:
        raise NotFound(f"no badcase {badcase_id}")
    it = session.get(t.Interaction, bc.interaction_id)
    fbs = session.scalars(select(t.Feedback).where(t.Feedback.interaction_event_id == it.event_id)).all()
    reasons = session.scalars(select(t.BadcaseReason).where(t.BadcaseReason.badcase_id == bc.id).order_by(t.BadcaseReason.id))
    details = [BadcaseReasonOut.model_validate(r, from_attributes=True) for r in reasons]
    return badcase_out(bc, it.event_id, details, interaction_out(it, list(fbs)))
