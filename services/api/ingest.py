"""Ingest and read-back endpoints for interactions and feedback."""

from fastapi import APIRouter, Depends
from pydantic import TypeAdapter
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from ingestion import decode
from schemas import tables as t
from schemas.errors import Conflict, NotFound
from schemas.feedback import Feedback
from schemas.ingest import IngestResult
from schemas.interaction import Interaction
from schemas.read import FeedbackOut, InteractionOut
from services import pipeline
from services.api.deps import BodyDep, SessionDep, SettingsDep, require
from services.api.errors import ERROR_RESPONSES

router = APIRouter(prefix="/v1", tags=["ingest"])
DESCRIPTORS = ("length_chars", "length_words", "length_tokens", "refusal_class", "is_refusal", "sycophancy_marker",
               "sycophancy_flip", "domain_bucket", "rm_score", "rm_disagreement")


def _body_schema(model) -> dict:
    one = TypeAdapter(model).json_schema(ref_template="#/components/schemas/{model}")
    defs = one.pop("$defs", {})
    schema = {"anyOf": [one, {"type": "array", "items": one, "minItems": 1, "maxItems": 1000}]}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}, "x-defs": defs}


INTERACTION_BODY = _body_schema(Interaction)
FEEDBACK_BODY = _body_schema(Feedback)


def _ingest(session, settings, kind: str, body: bytes) -> IngestResult:
    items = decode.decode_batch(kind, body, settings.max_batch_items)
    outcome = pipeline.ingest(session, kind, items)
    if outcome.conflicts:
        raise Conflict(
            f"{len(outcome.conflicts)} {kind} event id(s) were stored before with a different payload; nothing was stored",
            [{"loc": ["event_id"], "msg": eid, "type": "conflict"} for eid in outcome.conflicts[:50]],
        )
    return IngestResult(received=len(items), stored=len(outcome.stored), duplicates=len(outcome.duplicates))


@router.post("/interactions", response_model=IngestResult, responses=ERROR_RESPONSES,
             openapi_extra=INTERACTION_BODY, dependencies=[Depends(require("app"))])
async def post_interactions(body: BodyDep, session: SessionDep, settings: SettingsDep) -> IngestResult:
    """Ingest one interaction or a JSON array of up to 1,000; the same event id is stored once."""
    return await run_in_threadpool(_ingest, session, settings, "interaction", body)


@router.post("/feedback", response_model=IngestResult, responses=ERROR_RESPONSES,
             openapi_extra=FEEDBACK_BODY, dependencies=[Depends(require("app"))])
async def post_feedback(body: BodyDep, session: SessionDep, settings: SettingsDep) -> IngestResult:
    """Ingest one feedback event or an array of up to 1,000; feedback may arrive before its interaction."""
    return await run_in_threadpool(_ingest, session, settings, "feedback", body)


def interaction_out(row: t.Interaction, feedback: list[t.Feedback]) -> InteractionOut:
    """The read shape of a stored interaction."""
    data = {c: getattr(row, c) for c in InteractionOut.model_fields if hasattr(row, c) and c not in ("feedback", "metadata")}
    data["metadata"] = row.meta
    data["descriptors"] = {c: getattr(row, c) for c in DESCRIPTORS}
    data["feedback"] = [FeedbackOut.model_validate(f, from_attributes=True) for f in feedback]
    return InteractionOut(**data)


@router.get("/interactions/{event_id}", response_model=InteractionOut, responses=ERROR_RESPONSES,
            dependencies=[Depends(require("reviewer", "ops"))])
def get_interaction(event_id: str, session: SessionDep) -> InteractionOut:
    """One stored interaction with all feedback on it."""
    row = session.scalar(select(t.Interaction).where(t.Interaction.event_id == event_id))
    if row is None:
        raise NotFound(f"no interaction with event_id {event_id!r}")
    fbs = session.scalars(select(t.Feedback).where(t.Feedback.interaction_event_id == event_id).order_by(t.Feedback.id)).all()
    return interaction_out(row, list(fbs))
