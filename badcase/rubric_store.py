"""Stored rubric versions: create a new immutable version, seed the default rubric, pick the rubric for an item.

Functions take the caller's session and only flush.
"""

from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from badcase import rubric as rubric_mod
from schemas import tables as t
from schemas.errors import Conflict, InvalidInput

FIELDS = ("name", "dimensions", "disqualifiers", "categories", "tie_break", "scope")


def as_dict(row: t.RubricVersion) -> dict[str, Any]:
    """The rubric content of a stored version, as the pure functions take it."""
    return {f: getattr(row, f) for f in FIELDS}


def create_version(session: Session, data: Mapping[str, Any]) -> t.RubricVersion:
    """Store `data` as the next version of the rubric it names; versions are never updated."""
    errors = rubric_mod.validate_rubric(data)
    if errors:
        raise InvalidInput("the rubric is not valid", errors)
    name = data["name"].strip()
    latest = session.scalar(select(func.max(t.RubricVersion.version)).where(t.RubricVersion.name == name)) or 0
    row = t.RubricVersion(name=name, version=latest + 1, dimensions=list(data["dimensions"]),
                          disqualifiers=list(data.get("disqualifiers", [])), categories=list(data["categories"]),
                          tie_break=list(data.get("tie_break", [])), scope=dict(data.get("scope") or {}))
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError as exc:
        raise Conflict(f"version {latest + 1} of rubric {name!r} was created at the same time; retry") from exc
    return row


def ensure_default(session: Session) -> t.RubricVersion:
    """The latest version of the default rubric, seeding version 1 on first use (idempotent, race-safe)."""
    q = (select(t.RubricVersion).where(t.RubricVersion.name == rubric_mod.DEFAULT_NAME)
         .order_by(t.RubricVersion.version.desc()).limit(1))
    row = session.scalars(q).first()
    if row is not None:
        return row
    try:
        with session.begin_nested():
            row = t.RubricVersion(version=1, **{f: rubric_mod.DEFAULT_RUBRIC[f] for f in FIELDS})
            session.add(row)
            session.flush()
        return row
    except IntegrityError:
        return session.scalars(q).one()  # another transaction seeded it first


def current_for(session: Session, bucket: str | None) -> t.RubricVersion:
    """The rubric version new items of `bucket` are reviewed under: the newest active one scoped to it, else default."""
    ensure_default(session)
    rows = session.scalars(select(t.RubricVersion).where(t.RubricVersion.status == "active")
                           .order_by(t.RubricVersion.id.desc())).all()
    scoped = [r for r in rows if rubric_mod.in_scope(as_dict(r), bucket)]
    # A rubric written for this bucket beats a catch-all one, whatever their age.
    specific = [r for r in scoped if "*" not in ((r.scope or {}).get("buckets") or ["*"])]
    if specific or scoped:
        return (specific or scoped)[0]
    return ensure_default(session)


def list_versions(session: Session, name: str | None = None) -> list[t.RubricVersion]:
    """Every stored rubric version (of one name), newest first."""
    ensure_default(session)
    q = select(t.RubricVersion).order_by(t.RubricVersion.id.desc())
    if name:
        q = q.where(t.RubricVersion.name == name)
    return list(session.scalars(q))
