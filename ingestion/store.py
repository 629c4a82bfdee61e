"""Idempotent persistence of interactions and feedback: an event id is stored once; a changed payload is a conflict.

Functions take the caller's session and only flush; the caller owns the transaction.
"""

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlalchemy import String, any_, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ingestion import interactions_pg, pg_copy
from schemas import feedback as fb_wire
from schemas import tables as t
from schemas.interaction import Interaction


@dataclass
class StoreOutcome:
    """What happened to each event of a batch."""

    stored: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    ids: dict[str, int] = field(default_factory=dict)  # row id of each stored event
    linked: int = 0  # feedback rows that were waiting for these interactions


def canonical_json(item) -> bytes:
    """The validated payload as compact JSON in field order (what the payload hash is of)."""
    return item.__pydantic_serializer__.to_json(item, warnings=False)


def payload_hash(item) -> str:
    """A short stable hash of the validated payload; the same event sent twice hashes the same."""
    return _hash(canonical_json(item))


def _hash(canonical: bytes) -> str:
    return hashlib.blake2b(canonical, digest_size=16).hexdigest()


def _is_pg(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _in(session: Session, column, values: list[str]):
    """`column IN values`; on PostgreSQL as `= ANY(array)` so the statement text stays short and cached."""
    if _is_pg(session):
        return column == any_(bindparam("ids_" + column.name, values, type_=postgresql.ARRAY(String)))
    return column.in_(values)


def _copy_insert(session: Session, table, rows: list[dict]) -> dict[str, int]:
    """PostgreSQL: the rows through a staging table (`ingestion.pg_copy`), JSON columns dumped."""
    col_list = ", ".join(f'"{c}"' for c in rows[0])
    stage = f"_stage_{table.name}"
    return pg_copy.staged_insert(
        session, stage=stage, like=f'SELECT {col_list} FROM "{table.name}"', columns=col_list,
        rows=([json.dumps(v) if isinstance(v, (dict, list)) else v for v in r.values()] for r in rows),
        insert=f'INSERT INTO "{table.name}" ({col_list}) SELECT {col_list} FROM {stage} '
               f'ON CONFLICT (event_id) DO NOTHING RETURNING event_id, id')


def _insert_new(session: Session, table, rows: list[dict]) -> dict[str, int]:
    """Insert rows whose event id is new; return the event ids actually inserted with their row ids."""
    if not rows:
        return {}
    if _is_pg(session):
        return _copy_insert(session, table, rows)
    stmt = (sqlite.insert(table).on_conflict_do_nothing(index_elements=["event_id"])
            .returning(table.c.event_id, table.c.id))
    return dict(session.execute(stmt, rows).all())


@dataclass(frozen=True)
class Deduped:
    """A batch with repeats collapsed: event id -> (item, payload hash, canonical JSON), and the repeats."""

    seen: dict[str, tuple[object, str, bytes]]
    duplicates: tuple[str, ...]
    conflicts: tuple[str, ...]


def dedupe(items: list) -> Deduped:
    """Collapse repeats inside one batch: same payload is a duplicate, a different one a conflict (no database).

    Each kept event comes with its hash and its canonical JSON (what the hash is of)."""
    seen: dict[str, tuple[object, str, bytes]] = {}
    duplicates, conflicts = [], []
    for item in items:
        canonical = canonical_json(item)
        h = _hash(canonical)
        prev = seen.get(item.event_id)
        if prev is None:
            seen[item.event_id] = (item, h, canonical)
        elif prev[1] == h:
            duplicates.append(item.event_id)
        else:
            conflicts.append(item.event_id)
    return Deduped(seen, tuple(duplicates), tuple(conflicts))


def _dedupe(items: list, deduped: Deduped | None = None) -> tuple[dict[str, tuple[object, str, bytes]], StoreOutcome]:
    d = deduped or dedupe(items)
    return d.seen, StoreOutcome(duplicates=list(d.duplicates), conflicts=list(d.conflicts))


def _classify(session: Session, table, seen: dict, inserted: set[str], outcome: StoreOutcome) -> None:
    rest = [eid for eid in seen if eid not in inserted]
    outcome.stored.extend(eid for eid in seen if eid in inserted)
    if not rest:
        return
    existing = dict(session.execute(select(table.c.event_id, table.c.payload_hash).where(_in(session, table.c.event_id, rest))).all())
    for eid in rest:
        (outcome.duplicates if existing.get(eid) == seen[eid][1] else outcome.conflicts).append(eid)


def interaction_row(item: Interaction, h: str, now: datetime) -> dict:
    """The `interaction` row of one validated interaction."""
    return {
        "event_id": item.event_id, "payload_hash": h, "occurred_at": item.occurred_at, "received_at": now,
        "app": item.app, "conversation_id": item.conversation_id, "turn": item.turn,
        "prompt": item.prompt_text(),
        "messages": [m.model_dump() for m in item.messages] if item.messages else None,
        "response": item.response, "model_name": item.model.name, "model_version": item.model.version,
        "policy_version": item.policy_version, "prompt_template_id": item.prompt_template_id,
        "decoding": item.decoding.model_dump(exclude_none=True) if item.decoding else None,
        "latency_ms": item.latency_ms,
        "prompt_tokens": item.tokens.prompt if item.tokens else None,
        "completion_tokens": item.tokens.completion if item.tokens else None,
        "consent_training": item.consent.training, "consent_analytics": item.consent.analytics,
        "reward_scores": item.reward_scores,
        "verifier_passed": item.verifier.passed if item.verifier else None,
        "verifier": item.verifier.model_dump() if item.verifier else None,
        "metadata": item.metadata,
    }


def store_interactions(session: Session, items: list[Interaction], extra: dict[str, dict] | None = None,
                       deduped: Deduped | None = None) -> StoreOutcome:
    """Insert new interactions (ON CONFLICT DO NOTHING), report duplicates and conflicts, link waiting feedback.

    `extra` maps an event id to more column values for its row (descriptors computed by the pipeline);
    `deduped` is `dedupe(items)` when the caller made it ahead of the transaction.
    """
    seen, outcome = _dedupe(items, deduped)
    now = datetime.now(timezone.utc)
    table = t.Interaction.__table__
    if _is_pg(session):
        inserted = interactions_pg.insert(session, list(seen.values()), extra or {}, now) if seen else {}
    else:
        rows = []
        for eid, (item, h, _) in seen.items():
            row = interaction_row(item, h, now)
            if extra and eid in extra:
                row.update(extra[eid])
            rows.append(row)
        inserted = _insert_new(session, table, rows)
    _classify(session, table, seen, inserted, outcome)
    outcome.ids = inserted
    if inserted:
        outcome.linked = link_feedback(session, list(inserted))
    return outcome


def link_feedback(session: Session, interaction_event_ids: list[str]) -> int:
    """Point feedback that arrived before its interaction at the interaction's row."""
    fb, it = t.Feedback.__table__, t.Interaction.__table__
    sub = select(it.c.id).where(it.c.event_id == fb.c.interaction_event_id).scalar_subquery()
    res = session.execute(
        update(fb).where(fb.c.interaction_id.is_(None), _in(session, fb.c.interaction_event_id, interaction_event_ids))
        .values(interaction_id=sub).execution_options(synchronize_session=False)
    )
    return res.rowcount or 0


def feedback_row(item, h: str, interaction_id: int | None, now: datetime) -> dict:
    """The `feedback` row of one validated feedback event."""
    common = {"event_id", "interaction_id", "source", "author_id", "occurred_at", "kind", "schema_version"}
    return {
        "event_id": item.event_id, "payload_hash": h, "interaction_event_id": item.interaction_id,
        "interaction_id": interaction_id, "kind": item.kind, "source": item.source, "author_id": item.author_id,
        "is_negative": fb_wire.is_negative(item), "occurred_at": item.occurred_at, "received_at": now,
        "body": item.model_dump(mode="json", exclude=common),
    }


def store_feedback(session: Session, items: list) -> StoreOutcome:
    """Insert new feedback, linked to its interaction when that is already stored."""
    seen, outcome = _dedupe(items)
    now = datetime.now(timezone.utc)
    it = t.Interaction.__table__
    refs = {item.interaction_id for item, _, _ in seen.values()}
    ids = dict(session.execute(select(it.c.event_id, it.c.id).where(_in(session, it.c.event_id, list(refs)))).all()) if refs else {}
    rows = [feedback_row(item, h, ids.get(item.interaction_id), now) for item, h, _ in seen.values()]
    table = t.Feedback.__table__
    inserted = _insert_new(session, table, rows)
    _classify(session, table, seen, inserted, outcome)
    return outcome
