"""Builders of review-queue test data: interactions through the ingest store, badcases as rows, reviewers, answers."""

import json

from sqlalchemy.orm import Session

from badcase import queue, rubric_store
from ingestion import decode, store
from schemas import tables as t
from support.events import feedback, interaction

ALL_GOOD = {"harmlessness": 5, "honesty": 4, "helpfulness": 3}


def make_items(session: Session, n: int, *, start: int = 0, k: int = 3, bucket: str = "general", edit: bool = True,
               priority: float | None = None, gold_answer: dict | None = None, batch: str | None = None,
               consent: bool = True, edit_text: str | None = None) -> list[t.Badcase]:
    """n stored interactions (with a user edit when `edit`) flagged as badcases and enqueued for k reviewers."""
    events = [interaction(start + i, consent=consent) for i in range(n)]
    store.store_interactions(session, decode.decode_batch("interaction", json.dumps(events).encode(), 10_000))
    if edit:
        fbs = [feedback(start + i, f"int-{start + i}", "edit", edited_response=edit_text or f"Better answer {start + i}.")
               for i in range(n)]
        store.store_feedback(session, decode.decode_batch("feedback", json.dumps(fbs).encode(), 10_000))
    session.flush()
    rubric = rubric_store.ensure_default(session)
    out = []
    for i in range(n):
        it = session.query(t.Interaction).filter_by(event_id=f"int-{start + i}").one()
        bc = t.Badcase(interaction_id=it.id, severity="medium", bucket=bucket, review_batch=batch,
                       priority=float(n - i) if priority is None else priority, reasons=["negative_feedback"],
                       is_gold=gold_answer is not None, gold_answer=gold_answer, model_version=it.model_version)
        session.add(bc)
        session.flush()
        queue.enqueue(session, bc, k, rubric.id)
        out.append(bc)
    return out


def make_reviewer(session: Session, name: str, *, domains=("general",), role: str = "reviewer") -> t.Reviewer:
    """A reviewer row (no API key)."""
    row = t.Reviewer(name=name, role=role, domains=list(domains))
    session.add(row)
    session.flush()
    return row


def answer(rubric_id: int, *, verdict: bool = True, category: str | None = "factual_error", preference: str | None = "B",
           rewrite: str | None = None, **over) -> dict:
    """A valid submission body under the default rubric."""
    body = {"rubric_version_id": rubric_id, "verdict": verdict, "category": category if verdict else None,
            "ratings": dict(ALL_GOOD), "preference": preference, "rewrite": rewrite,
            "critique": "States the wrong expiry time.", "justification": "Honesty ranks above helpfulness."}
    body.update(over)
    return body
