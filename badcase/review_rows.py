"""Row helpers shared by the review modules: row locks on PostgreSQL and SQLite, stored times, the user's edit.

Functions take the caller's session and never commit.
"""

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from schemas import tables as t
from schemas.tables.badcase import REVIEW_OPEN

ACTIVE = REVIEW_OPEN  # items open for review (the partial index of claim-next is over these)
DECIDED = ("resolved", "dismissed", "adjudication", "ambiguous")
PAUSED_RUBRIC = ("needs_revision",)
# The column a no-op write touches to take SQLite's write lock on a row's table (never a key: no FK checks).
_NOOP_COLUMN = {"reviewer": "active", "review_task": "slot", "badcase": "priority", "rubric_version": "used"}


def aware(dt: datetime | None) -> datetime | None:
    """A stored time as timezone-aware UTC (SQLite hands back naive datetimes)."""
    return dt.replace(tzinfo=timezone.utc) if dt is not None and dt.tzinfo is None else dt


def is_postgres(session: Session) -> bool:
    """Whether the session talks to PostgreSQL."""
    return session.get_bind().dialect.name == "postgresql"


def sqlite_write_lock(session: Session, cls, row_id: int) -> None:
    """On SQLite, take the database's one write lock now (a no-op write on the row); nothing on PostgreSQL."""
    if not is_postgres(session):
        table = cls.__table__
        column = table.c[_NOOP_COLUMN[table.name]]
        session.execute(update(table).where(table.c.id == row_id).values({column: column}))


def locked(session: Session, cls, row_id: int):
    """Load a row under a lock: `FOR NO KEY UPDATE` on PostgreSQL, SQLite's write lock (a no-op write) there."""
    sqlite_write_lock(session, cls, row_id)
    stmt = select(cls).where(cls.id == row_id).execution_options(populate_existing=True)
    if is_postgres(session):
        # NO KEY UPDATE: the foreign keys of rows other transactions insert (claims, submissions) take KEY SHARE
        # locks on this row, which a plain FOR UPDATE would wait for, deadlocking two concurrent submitters.
        stmt = stmt.with_for_update(key_share=True)
    return session.scalars(stmt).one_or_none()


def alternative_of(body: dict | None) -> str | None:
    return body and (body.get("edited_response") or body.get("ideal_response"))


def alternative_body(event_id):
    """The body of the first edit or demonstration of an interaction (a column or an event id)."""
    fb = t.Feedback
    return (select(fb.body).where(fb.interaction_event_id == event_id, fb.kind.in_(("edit", "demonstration")))
            .order_by(fb.id).limit(1))


def alternative_response(session: Session, interaction_event_id: str) -> str | None:
    """The user's edit or demonstration of a response (the first one given), if any; looked up once per session."""
    cache = session.info.setdefault("ff_alternatives", {})
    if interaction_event_id not in cache:
        cache[interaction_event_id] = alternative_of(session.scalar(alternative_body(interaction_event_id)))
    return cache[interaction_event_id]


def clean_text(value: Any) -> str | None:
    """Stripped text, or None when blank or not text."""
    return value.strip() or None if isinstance(value, str) else None
