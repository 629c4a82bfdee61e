"""Expert review: rubric versions, reviewers, per-item review slots, claims, submissions, sessions, agreement."""

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from schemas.tables.base import Base, BigId, utcnow


class RubricVersion(Base):
    """An immutable version of the review rubric; every submission names the version it followed."""

    __tablename__ = "rubric_version"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    dimensions: Mapped[list]  # quality dimensions in rank order: [{"name", "description", "scale_min", "scale_max"}]
    disqualifiers: Mapped[list] = mapped_column(default=list)
    categories: Mapped[list] = mapped_column(default=list)  # failure categories reviewers choose from
    tie_break: Mapped[list] = mapped_column(default=list)
    scope: Mapped[dict] = mapped_column(default=dict)  # e.g. {"buckets": ["code"]}
    status: Mapped[str] = mapped_column(String(20), default="active")  # active | needs_revision | retired
    used: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Reviewer(Base):
    """A subject-matter expert (or lead) with expertise domains matching the badcase buckets."""

    __tablename__ = "reviewer"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    api_key_id: Mapped[int | None] = mapped_column(ForeignKey("api_key.id"), unique=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(20), default="reviewer")  # reviewer | lead
    domains: Mapped[list] = mapped_column(default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReviewTask(Base):
    """One of the k review slots of a badcase; a slot is leased to at most one reviewer at a time."""

    __tablename__ = "review_task"
    __table_args__ = (UniqueConstraint("badcase_id", "slot"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    badcase_id: Mapped[int] = mapped_column(ForeignKey("badcase.id"), index=True)
    slot: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default="open")  # open | leased | submitted
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("reviewer.id"), index=True)
    lease_expires_at: Mapped[datetime | None]
    ab_order: Mapped[str | None] = mapped_column(String(2))  # "AB" or "BA": response shown first
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ReviewClaim(Base):
    """Every claim a reviewer made on an item; unique so one reviewer never gets the same item twice."""

    __tablename__ = "review_claim"
    __table_args__ = (UniqueConstraint("badcase_id", "reviewer_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    badcase_id: Mapped[int] = mapped_column(ForeignKey("badcase.id"))
    task_id: Mapped[int] = mapped_column(ForeignKey("review_task.id"), index=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("reviewer.id"), index=True)
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(20))  # submitted | released | expired


class ReviewSubmission(Base):
    """A reviewer's answer on one item, validated against the rubric version it names."""

    __tablename__ = "review_submission"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("review_task.id"), unique=True)
    badcase_id: Mapped[int] = mapped_column(ForeignKey("badcase.id"), index=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("reviewer.id"), index=True)
    rubric_version_id: Mapped[int] = mapped_column(ForeignKey("rubric_version.id"), index=True)
    verdict: Mapped[bool]  # is it a badcase
    category: Mapped[str | None] = mapped_column(String(60))
    ratings: Mapped[dict] = mapped_column(default=dict)
    preference: Mapped[str | None] = mapped_column(String(10))  # original | rewrite | tie (de-randomised from A/B)
    ab_order: Mapped[str | None] = mapped_column(String(2))
    rewrite: Mapped[str | None] = mapped_column(Text)
    critique: Mapped[str | None] = mapped_column(Text)
    justification: Mapped[str | None] = mapped_column(Text)
    is_gold: Mapped[bool] = mapped_column(Boolean, default=False)
    gold_correct: Mapped[bool | None] = mapped_column(Boolean)
    duration_s: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReviewSession(Base):
    """A reviewer's working session, capped (90 minutes by default) against fatigue."""

    __tablename__ = "review_session"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("reviewer.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_activity_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]


class AgreementReport(Base):
    """Agreement over a window of resolved items for one rubric version and batch."""

    __tablename__ = "agreement_report"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    rubric_version_id: Mapped[int | None] = mapped_column(ForeignKey("rubric_version.id"), index=True)
    review_batch: Mapped[str | None] = mapped_column(String(64))
    n_items: Mapped[int] = mapped_column(Integer)
    krippendorff_alpha: Mapped[float | None] = mapped_column(Float)
    fleiss_kappa: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(30))
    per_reviewer: Mapped[dict] = mapped_column(default=dict)
    details: Mapped[dict] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
