"""Dead letters: what could not be stored, with its original bytes, reason and source position."""

from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from schemas import tables as t


def row(*, reason: str, error: str, kind: str = "poison", topic: str | None = None, partition: int | None = None,
        offset: int | None = None, key: bytes | None = None, payload: bytes | None = None) -> dict:
    """One `dead_letters` row."""
    return {"kind": kind, "reason": reason, "error": error[:4000], "topic": topic, "partition": partition,
            "offset": offset, "key": key, "payload": payload, "status": "open",
            "created_at": datetime.now(timezone.utc)}


def record(session: Session, rows: list[dict]) -> list[dict]:
    """Insert dead letters once per source position; return the rows that are new (a re-delivery adds none)."""
    if not rows:
        return []
    table = t.DeadLetter.__table__
    ins = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = ins(table).on_conflict_do_nothing(index_elements=["topic", "partition", "offset", "kind"]).returning(table.c.id)
    new = []
    for r in rows:  # few per batch (poison is rare); one statement each keeps the id ↔ row pairing exact
        rid = session.execute(stmt, r).scalar()
        if rid is not None:
            new.append({**r, "id": rid})
    return new


def headers(r: dict) -> list[tuple[str, bytes]]:
    """Kafka headers of a dead letter on the DLQ topic: error, reason and the source topic/partition/offset."""
    return [("ff-error", r["error"].encode()), ("ff-reason", r["reason"].encode()), ("ff-kind", r["kind"].encode()),
            ("ff-source-topic", (r["topic"] or "").encode()), ("ff-source-partition", str(r["partition"]).encode()),
            ("ff-source-offset", str(r["offset"]).encode()), ("ff-dead-letter-id", str(r["id"]).encode())]


def list_open(session: Session, *, ids: list[int] | None = None, limit: int = 1000) -> list[t.DeadLetter]:
    """Open, replayable dead letters (poison or conflict with a payload), oldest first."""
    q = select(t.DeadLetter).where(t.DeadLetter.status == "open", t.DeadLetter.kind.in_(("poison", "conflict")),
                                   t.DeadLetter.payload.is_not(None))
    if ids:
        q = q.where(t.DeadLetter.id.in_(ids))
    return list(session.scalars(q.order_by(t.DeadLetter.id).limit(limit)))
