"""Badcase detection inside the ingest pipeline: descriptors before storing, rules after, re-evaluation on feedback."""

import threading
import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from badcase import flagging, queue, routing, rubric_store, rules
from schemas import tables as t
from services.settings import get_settings

_BASELINES: dict = {"at": 0.0, "value": {}}
_LOCK = threading.Lock()
BASELINE_TTL_S = 60.0


def descriptor_columns(items: list) -> dict[str, dict]:
    """Descriptor columns per event id for a batch of validated interactions (one vectorised call)."""
    if not items:
        return {}
    from badcase import descriptors

    prompts = [it.prompt_text() for it in items]
    responses = [it.response for it in items]
    # A flip needs an earlier assistant turn to push back on: only such conversations are built as dicts.
    messages = [[{"role": m.role, "content": m.content} for m in it.messages]
                + [{"role": "assistant", "content": it.response}]
                if it.messages and any(m.role == "assistant" for m in it.messages) else None for it in items]
    cols = descriptors.compute(prompts, responses, messages)
    names = list(cols)
    out = {}
    for it, values in zip(items, zip(*(_plain(cols[n]) for n in names))):
        row = dict(zip(names, values))
        row["rm_score"], row["rm_disagreement"] = rules.reward_summary(it.reward_scores)
        out[it.event_id] = row
    return out


def _plain(values) -> list:
    """Plain Python values: `descriptors.compute` gives lists of them; numpy arrays become lists."""
    return values.tolist() if hasattr(values, "tolist") else values


def _baselines(session: Session) -> dict:
    with _LOCK:
        if time.monotonic() - _BASELINES["at"] > BASELINE_TTL_S:
            _BASELINES["value"] = flagging.length_baselines(session)
            _BASELINES["at"] = time.monotonic()
        return _BASELINES["value"]


def _negative_feedback(session: Session, event_ids: list[str]) -> dict[str, list[dict]]:
    fb = t.Feedback
    rows = session.execute(select(fb.interaction_event_id, fb.event_id, fb.kind, fb.body)
                           .where(fb.is_negative.is_(True), fb.interaction_event_id.in_(event_ids))).all()
    out: dict[str, list[dict]] = {}
    for iid, eid, kind, body in rows:
        out.setdefault(iid, []).append({"feedback_id": eid, "kind": kind, **{k: v for k, v in body.items() if k != "metadata"}})
    return out


_COLS = ("id", "event_id", "prompt", "response", "model_version", "domain_bucket", "length_chars", "is_refusal",
         "refusal_class", "sycophancy_marker", "sycophancy_flip", "rm_score", "rm_disagreement", "verifier_passed",
         "verifier")


def stored_rows(items: list, columns: dict[str, dict], ids: dict[str, int]) -> list[dict]:
    """The rule inputs of just-stored interactions, from memory (no read-back)."""
    rows = []
    for it in items:
        if it.event_id not in ids:
            continue
        rows.append({"id": ids[it.event_id], "event_id": it.event_id, "prompt": it.prompt_text(), "response": it.response,
                     "model_version": it.model.version, "verifier_passed": it.verifier.passed if it.verifier else None,
                     "verifier": it.verifier.model_dump() if it.verifier else None, **columns.get(it.event_id, {})})
    return rows


def flag_interactions(session: Session, event_ids: list[str], exploration_share: float | None = None,
                      rows: list[dict] | None = None, feedback_waiting: bool = True) -> int:
    """Run the detection rules on stored interactions; flagged ones (and an exploration sample) become badcases.

    `rows` skips reading the interactions back; `feedback_waiting=False` skips looking for feedback that arrived first.
    """
    if not event_ids:
        return 0
    it = t.Interaction
    if rows is None:
        rows = [dict(r._mapping) for r in session.execute(select(*[getattr(it, c) for c in _COLS])
                                                          .where(it.event_id.in_(event_ids)))]
    negative = _negative_feedback(session, event_ids) if feedback_waiting else {}
    baselines = _baselines(session)
    share = get_settings().exploration_share if exploration_share is None else exploration_share
    flagged = []
    for row in rows:
        firings = rules.evaluate(row, negative_feedback=negative.get(row["event_id"]),
                                 baseline=baselines.get((row.get("domain_bucket"), row["model_version"])))
        if firings or routing.explore(row["event_id"], share):
            flagged.append((row, firings, not firings))
    return flagging.record_many(session, flagged)


def flag_feedback(session: Session, feedback_items: list) -> int:
    """Feedback that arrives after its interaction re-evaluates it (negative feedback flags it)."""
    targets = sorted({f.interaction_id for f in feedback_items if f.kind in ("thumbs", "rating", "edit", "regenerate")})
    if not targets:
        return 0
    it = t.Interaction
    stored = list(session.scalars(select(it.event_id).where(it.event_id.in_(targets))))
    return flag_interactions(session, stored) if stored else 0


def _enqueue(session: Session, bc: t.Badcase) -> None:
    rubric = rubric_store.current_for(session, bc.bucket)
    queue.enqueue(session, bc, bc.required_reviews, rubric.id)


_LAST_FILL = {"at": 0.0}


def fill_queue(session: Session, capacity: int | None = None, min_interval_s: float = 0.0) -> int:
    """Move flagged badcases into the review queue within reviewer capacity (diversity first).

    `min_interval_s` lets the ingest path fill at most that often per process (queue filling is not urgent).
    """
    if min_interval_s and time.monotonic() - _LAST_FILL["at"] < min_interval_s:
        return 0
    _LAST_FILL["at"] = time.monotonic()
    cap = get_settings().review_capacity if capacity is None else capacity
    return flagging.fill_queue(session, capacity=cap, enqueue=_enqueue)
