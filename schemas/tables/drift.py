"""Drift monitoring: pinned reference windows, drift reports, alert rules, alerts, the delivery outbox, probe runs."""

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from schemas.tables.base import Base, BigId, utcnow


class DriftReference(Base):
    """A pinned reference window for one model version × bucket (set and refreshed by API)."""

    __tablename__ = "drift_reference"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model_version: Mapped[str] = mapped_column(String(200))
    bucket: Mapped[str] = mapped_column(String(20), default="*")
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    n_rows: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DriftReport(Base):
    """One drift evaluation: JSON summary here, the Evidently HTML report on disk."""

    __tablename__ = "drift_report"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model_version: Mapped[str] = mapped_column(String(200), index=True)
    bucket: Mapped[str] = mapped_column(String(20), default="*")
    reference_id: Mapped[int | None] = mapped_column(ForeignKey("drift_reference.id"))
    n_reference: Mapped[int] = mapped_column(Integer)
    n_current: Mapped[int] = mapped_column(Integer)
    drift_detected: Mapped[bool] = mapped_column(Boolean, default=False)
    summary: Mapped[dict]
    html_path: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AlertRule(Base):
    """When to alert: a signal on a slice, by drift test or threshold, with a severity and a cooldown."""

    __tablename__ = "alert_rule"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    signal: Mapped[str] = mapped_column(String(60))
    kind: Mapped[str] = mapped_column(String(20), default="drift")  # drift | threshold
    threshold: Mapped[float | None] = mapped_column(Float)
    model_version: Mapped[str] = mapped_column(String(200), default="*")
    bucket: Mapped[str] = mapped_column(String(20), default="*")
    severity: Mapped[str] = mapped_column(String(10), default="warning")  # info | warning | critical
    cooldown_s: Mapped[int] = mapped_column(Integer, default=3600)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Alert(Base):
    """An alert; `open_key` (rule × slice) is unique while open, so a slice has at most one open alert per rule."""

    __tablename__ = "alert"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("alert_rule.id"), index=True)
    open_key: Mapped[str | None] = mapped_column(String(300), unique=True)
    model_version: Mapped[str] = mapped_column(String(200))
    bucket: Mapped[str] = mapped_column(String(20))
    signal: Mapped[str] = mapped_column(String(60))
    severity: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(20), default="open")  # open | acknowledged | resolved
    value: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float | None] = mapped_column(Float)
    message: Mapped[str] = mapped_column(Text)
    evidence: Mapped[dict] = mapped_column(default=dict)
    report_id: Mapped[int | None] = mapped_column(ForeignKey("drift_report.id"))
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    acknowledged_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]


class AlertDelivery(Base):
    """Outbox row: one alert to one channel, retried with backoff until delivered (once, by idempotency key)."""

    __tablename__ = "alert_delivery"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alert.id"), index=True)
    channel: Mapped[str] = mapped_column(String(20))  # webhook | slack | alertmanager
    url: Mapped[str] = mapped_column(String(1000))
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending | delivered
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProbeRun(Base):
    """A sycophancy probe run against a model endpoint: rate per probe family."""

    __tablename__ = "probe_run"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model_version: Mapped[str] = mapped_column(String(200), index=True)
    endpoint: Mapped[str] = mapped_column(String(1000))
    overall_rate: Mapped[float] = mapped_column(Float)
    rates: Mapped[dict]
    n: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
