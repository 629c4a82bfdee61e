"""Ops endpoints: dead letters and broker incidents."""

from typing import Literal

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select

from schemas import tables as t
from schemas.read import DeadLetterOut
from services.api.deps import SessionDep, require
from services.api.errors import ERROR_RESPONSES

router = APIRouter(prefix="/v1", tags=["ops"])


@router.get("/dead-letters", response_model=list[DeadLetterOut], responses=ERROR_RESPONSES,
            dependencies=[Depends(require("ops"))])
def list_dead_letters(session: SessionDep,
                      status: Literal["open", "replayed"] | None = None,
                      kind: Literal["poison", "conflict", "incident"] | None = None,
                      limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0, le=10**9)) -> list[DeadLetterOut]:
    """Dead letters (poison messages, conflicts, broker data-loss incidents), newest first."""
    q = select(t.DeadLetter)
    if status:
        q = q.where(t.DeadLetter.status == status)
    if kind:
        q = q.where(t.DeadLetter.kind == kind)
    rows = session.scalars(q.order_by(t.DeadLetter.id.desc()).limit(limit).offset(offset))
    return [DeadLetterOut(id=r.id, kind=r.kind, reason=r.reason, error=r.error, topic=r.topic, partition=r.partition,
                          offset=r.offset, payload=r.payload.decode("utf-8", "replace") if r.payload else None,
                          status=r.status, created_at=r.created_at) for r in rows]
