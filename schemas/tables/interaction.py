"""Interactions and the feedback on them, as ingested (HTTP or Kafka)."""

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from schemas.tables.base import Base, BigId, utcnow


class Interaction(Base):
    """One model response in production; `event_id` is the idempotency key."""

    __tablename__ = "interaction"
    __table_args__ = (Index("ix_interaction_model_time", "model_version", "occurred_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(128), unique=True)
    payload_hash: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    app: Mapped[str] = mapped_column(String(200))
    conversation_id: Mapped[str] = mapped_column(String(128))
    turn: Mapped[int] = mapped_column(Integer, default=0)
    prompt: Mapped[str] = mapped_column(Text)
    messages: Mapped[list | None]
    response: Mapped[str] = mapped_column(Text)
    model_name: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[str] = mapped_column(String(200))
    policy_version: Mapped[str | None] = mapped_column(String(200))
    prompt_template_id: Mapped[str | None] = mapped_column(String(200))
    decoding: Mapped[dict | None]
    latency_ms: Mapped[float | None] = mapped_column(Float)
    prompt_tokens: Mapped[int | None]
    completion_tokens: Mapped[int | None]
    consent_training: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_analytics: Mapped[bool] = mapped_column(Boolean, default=True)
    reward_scores: Mapped[dict | None]
    verifier_passed: Mapped[bool | None] = mapped_column(Boolean)
    verifier: Mapped[dict | None]
    meta: Mapped[dict] = mapped_column("metadata", default=dict)
    # descriptors, computed by the ingest pipeline (badcase.descriptors)
    length_chars: Mapped[int | None]
    length_words: Mapped[int | None]
    length_tokens: Mapped[int | None]
    refusal_class: Mapped[str | None] = mapped_column(String(20))
    is_refusal: Mapped[bool | None] = mapped_column(Boolean)
    sycophancy_marker: Mapped[bool | None] = mapped_column(Boolean)
    sycophancy_flip: Mapped[bool | None] = mapped_column(Boolean)
    domain_bucket: Mapped[str | None] = mapped_column(String(20))
    rm_score: Mapped[float | None] = mapped_column(Float)
    rm_disagreement: Mapped[float | None] = mapped_column(Float)


class Feedback(Base):
    """Feedback of one kind on one interaction; linked once that interaction has arrived."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(128), unique=True)
    payload_hash: Mapped[str] = mapped_column(String(32))
    interaction_event_id: Mapped[str] = mapped_column(String(128), index=True)
    interaction_id: Mapped[int | None] = mapped_column(ForeignKey("interaction.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(20))
    author_id: Mapped[str | None] = mapped_column(String(128))
    is_negative: Mapped[bool] = mapped_column(Boolean, default=False)
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    body: Mapped[dict]
