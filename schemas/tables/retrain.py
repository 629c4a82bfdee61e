"""Retraining: dataset versions with their rows' lineage, training jobs, and the model registry."""

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from schemas.tables.base import Base, BigId, utcnow


class DatasetVersion(Base):
    """A versioned preference dataset snapshot (files on disk, manifest here)."""

    __tablename__ = "dataset_version"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    version: Mapped[str] = mapped_column(String(40), unique=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("dataset_version.id"))
    content_hash: Mapped[str] = mapped_column(String(64))
    path: Mapped[str] = mapped_column(String(1000))
    n_train: Mapped[int] = mapped_column(Integer, default=0)
    n_holdout: Mapped[int] = mapped_column(Integer, default=0)
    manifest: Mapped[dict]
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DatasetItem(Base):
    """Lineage: which badcase (and so which reviews and interaction) produced each row of a dataset version."""

    __tablename__ = "dataset_item"
    __table_args__ = (UniqueConstraint("dataset_version_id", "badcase_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    dataset_version_id: Mapped[int] = mapped_column(ForeignKey("dataset_version.id"), index=True)
    badcase_id: Mapped[int] = mapped_column(ForeignKey("badcase.id"), index=True)
    interaction_id: Mapped[int] = mapped_column(ForeignKey("interaction.id"))
    split: Mapped[str] = mapped_column(String(10))  # train | holdout


class TrainingJob(Base):
    """A reward-model or DPO job, run by the local process runner or as a Kubernetes Job."""

    __tablename__ = "training_job"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(20))  # reward_model | dpo
    status: Mapped[str] = mapped_column(String(20), default="queued")  # queued | running | succeeded | failed
    runner: Mapped[str] = mapped_column(String(20), default="local")
    trigger: Mapped[str] = mapped_column(String(40), default="manual")  # manual | new_pairs | drift_alert
    dataset_version_id: Mapped[int | None] = mapped_column(ForeignKey("dataset_version.id"))
    params: Mapped[dict] = mapped_column(default=dict)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    external_id: Mapped[str | None] = mapped_column(String(200))
    log_path: Mapped[str | None] = mapped_column(String(1000))
    artifacts: Mapped[dict] = mapped_column(default=dict)
    metrics: Mapped[dict] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class ModelVersion(Base):
    """A registered model (reward model or policy) with its lineage and evaluation."""

    __tablename__ = "model_version"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))  # reward_model | policy
    version: Mapped[int] = mapped_column(Integer)
    training_job_id: Mapped[int | None] = mapped_column(ForeignKey("training_job.id"))
    dataset_version_id: Mapped[int | None] = mapped_column(ForeignKey("dataset_version.id"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("model_version.id"))
    path: Mapped[str] = mapped_column(String(1000))
    metrics: Mapped[dict] = mapped_column(default=dict)
    settings: Mapped[dict] = mapped_column(default=dict)
    promoted: Mapped[bool] = mapped_column(Boolean, default=False)
    report_path: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
