"""Declarative base with a constraint naming convention so migrations are deterministic on every backend."""

from datetime import datetime, timezone

from sqlalchemy import JSON, BigInteger, DateTime, Integer, MetaData
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# BIGINT primary keys on PostgreSQL, INTEGER (rowid alias, autoincrement) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    """Timezone-aware now, the default of every `_at` column."""
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    """Base of every table."""

    metadata = metadata
    type_annotation_map = {datetime: DateTime(timezone=True), dict: JSON, list: JSON}
