"""Badcases (flagged interactions), the reasons that fired with their evidence, and review state."""

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from schemas.tables.base import Base, BigId, utcnow

BADCASE_STATUSES = ("flagged", "queued", "in_review", "resolved", "ambiguous", "adjudication", "dismissed")
# Items open for review, in the order claim-next takes them: the claim walks this index and stops at the first
# free slot, instead of sorting the whole queue (70 ms at 5,000 queued items, 0.4 ms along the index).
REVIEW_OPEN = ("queued", "in_review")  # statuses of items open for review (badcase.review_rows.ACTIVE)
REVIEW_ORDER_WHERE = f"{{t}}status IN ({', '.join(repr(s) for s in REVIEW_OPEN)}) AND NOT {{t}}is_gold"  # t: alias


class Badcase(Base):
    """An interaction chosen for expert review: why, how urgent, and where it stands."""

    __tablename__ = "badcase"
    __table_args__ = (Index("ix_badcase_queue", "status", "priority"),
                      Index("ix_badcase_review_order", text("priority DESC"), "id",
                            postgresql_where=text(REVIEW_ORDER_WHERE.format(t="")),
                            sqlite_where=text(REVIEW_ORDER_WHERE.format(t=""))))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    interaction_id: Mapped[int] = mapped_column(ForeignKey("interaction.id"), unique=True)
    status: Mapped[str] = mapped_column(String(20), default="flagged")
    severity: Mapped[str] = mapped_column(String(10), default="low")  # low | medium | high | critical
    priority: Mapped[float] = mapped_column(Float, default=0.0)
    uncertainty: Mapped[float | None] = mapped_column(Float)
    cluster_key: Mapped[str | None] = mapped_column(String(64), index=True)
    cluster_size: Mapped[int] = mapped_column(Integer, default=1)
    is_exploration: Mapped[bool] = mapped_column(Boolean, default=False)
    is_gold: Mapped[bool] = mapped_column(Boolean, default=False)
    gold_answer: Mapped[dict | None]
    admitted: Mapped[bool] = mapped_column(Boolean, default=False)  # passed admission control into the training buffer
    bucket: Mapped[str | None] = mapped_column(String(20))
    model_version: Mapped[str | None] = mapped_column(String(200))
    reasons: Mapped[list] = mapped_column(default=list)  # rule names that fired (details in badcase_reason)
    rules_version: Mapped[str | None] = mapped_column(String(40))
    required_reviews: Mapped[int] = mapped_column(Integer, default=3)
    submissions_count: Mapped[int] = mapped_column(Integer, default=0)
    rubric_version_id: Mapped[int | None] = mapped_column(ForeignKey("rubric_version.id"))
    review_batch: Mapped[str | None] = mapped_column(String(64), index=True)
    chosen_response: Mapped[str | None] = mapped_column(Text)
    resolution: Mapped[dict | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    resolved_at: Mapped[datetime | None]


class BadcaseReason(Base):
    """One detection rule that fired on a badcase, with its evidence."""

    __tablename__ = "badcase_reason"
    __table_args__ = (UniqueConstraint("badcase_id", "rule"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    badcase_id: Mapped[int] = mapped_column(ForeignKey("badcase.id"), index=True)
    rule: Mapped[str] = mapped_column(String(40))
    severity: Mapped[str] = mapped_column(String(10))
    evidence: Mapped[dict] = mapped_column(default=dict)
    rules_version: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
