"""Dead letters (poison messages, conflicts, data-loss incidents) and the consumer's per-partition progress."""

from datetime import datetime

from sqlalchemy import BigInteger, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from schemas.tables.base import Base, BigId, utcnow


class DeadLetter(Base):
    """A message that could not be stored, with its original bytes and reason, or a broker incident."""

    __tablename__ = "dead_letters"
    # One dead letter per source position and kind: a re-delivered poison message is not recorded twice.
    __table_args__ = (UniqueConstraint("topic", "partition", "offset", "kind"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(20), default="poison")  # poison | conflict | incident
    reason: Mapped[str] = mapped_column(String(40))
    error: Mapped[str] = mapped_column(Text)
    topic: Mapped[str | None] = mapped_column(String(255))
    partition: Mapped[int | None] = mapped_column(Integer)
    offset: Mapped[int | None] = mapped_column(BigInteger)
    key: Mapped[bytes | None] = mapped_column(LargeBinary)
    payload: Mapped[bytes | None] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(20), default="open")  # open | replayed | failed
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    replayed_at: Mapped[datetime | None]


class PartitionOffset(Base):
    """The last offset stored per topic partition, written in the same transaction as the rows."""

    __tablename__ = "partition_offset"
    __table_args__ = (UniqueConstraint("group_id", "topic", "partition"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    group_id: Mapped[str] = mapped_column(String(255))
    topic: Mapped[str] = mapped_column(String(255))
    partition: Mapped[int] = mapped_column(Integer)
    last_offset: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
