"""Training jobs: create, hand to a runner, and move through queued → running → succeeded | failed.

A job is a row first and a process second: the caller commits the queued row, then a runner launches it (the
launch is claimed with a conditional update so two dispatchers never start one job twice), and the worker records
its start, progress, metrics, artifacts and end. A job may wait for another (`params.after_job_id`, e.g. DPO after
the reward model it is judged by); it is launched once that one succeeded and fails with it otherwise.
Functions take the caller's session and flush; they never commit.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from schemas import tables as t
from schemas.errors import Conflict, InvalidInput, NotFound

KINDS = ("reward_model", "dpo")
STATUSES = ("queued", "running", "succeeded", "failed")
TRIGGERS = ("manual", "new_pairs", "drift_alert")
LAUNCHING = "launching"


def now() -> datetime:
    """The job clock (UTC)."""
    return datetime.now(timezone.utc)


def clean(value: Any) -> Any:
    """JSON-safe copy: NaN and infinities become None (PostgreSQL's jsonb refuses them), tuples become lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


def create(session: Session, *, kind: str, dataset_version_id: int | None, params: dict[str, Any] | None = None,
           runner: str = "local", trigger: str = "manual") -> t.TrainingJob:
    """A queued job on a dataset version."""
    if kind not in KINDS:
        raise InvalidInput(f"unknown job kind {kind!r}", [{"loc": ["kind"], "msg": f"one of {', '.join(KINDS)}"}])
    if dataset_version_id is not None and session.get(t.DatasetVersion, dataset_version_id) is None:
        raise NotFound(f"no dataset version {dataset_version_id}")
    after = (params or {}).get("after_job_id")
    if after is not None and session.get(t.TrainingJob, after) is None:
        raise NotFound(f"no training job {after} to wait for")
    job = t.TrainingJob(kind=kind, status="queued", runner=runner, trigger=trigger,
                        dataset_version_id=dataset_version_id, params=clean(dict(params or {})), progress=0.0,
                        artifacts={}, metrics={}, created_at=now())
    session.add(job)
    session.flush()
    return job


def get(session: Session, job_id: int) -> t.TrainingJob:
    """A job by id."""
    job = session.get(t.TrainingJob, job_id)
    if job is None:
        raise NotFound(f"no training job {job_id}")
    return job


def list_jobs(session: Session, *, status: str | None = None, kind: str | None = None, limit: int = 50,
              offset: int = 0) -> tuple[int, list[t.TrainingJob]]:
    """Jobs, newest first, with the total count."""
    q = select(t.TrainingJob)
    if status is not None:
        q = q.where(t.TrainingJob.status == status)
    if kind is not None:
        q = q.where(t.TrainingJob.kind == kind)
    total = session.scalar(select(func.count()).select_from(q.subquery())) or 0
    return total, list(session.scalars(q.order_by(t.TrainingJob.id.desc()).limit(limit).offset(offset)))


def ready(session: Session) -> list[t.TrainingJob]:
    """Queued jobs no runner has taken whose prerequisite (if any) succeeded; those whose prerequisite failed fail."""
    out = []
    for job in session.scalars(select(t.TrainingJob).where(t.TrainingJob.status == "queued",
                                                           t.TrainingJob.external_id.is_(None))
                               .order_by(t.TrainingJob.id)):
        after = (job.params or {}).get("after_job_id")
        before = session.get(t.TrainingJob, after) if after is not None else None
        if before is not None and before.status == "failed":
            fail(session, job, f"prerequisite job {after} failed")
        elif before is None or before.status == "succeeded":
            out.append(job)
    session.flush()
    return out


def claim_launch(session: Session, job_id: int) -> bool:
    """Mark a queued job as being launched; False when another dispatcher took it first."""
    res = session.execute(update(t.TrainingJob).where(t.TrainingJob.id == job_id, t.TrainingJob.status == "queued",
                                                      t.TrainingJob.external_id.is_(None))
                          .values(external_id=LAUNCHING).execution_options(synchronize_session=False))
    return bool(res.rowcount)


def launched(session: Session, job_id: int, *, external_id: str, log_path: str | None, runner: str) -> t.TrainingJob:
    """Record what the runner started (a process id or a Kubernetes Job name) and where its log goes."""
    job = get(session, job_id)
    job.external_id, job.runner = external_id, runner
    job.log_path = log_path or job.log_path
    session.flush()
    return job


def start(session: Session, job_id: int) -> t.TrainingJob:
    """Move a queued job to running (a job runs once: anything else is a conflict)."""
    res = session.execute(update(t.TrainingJob).where(t.TrainingJob.id == job_id, t.TrainingJob.status == "queued")
                          .values(status="running", started_at=now(), progress=0.0)
                          .execution_options(synchronize_session=False))
    job = session.get(t.TrainingJob, job_id, populate_existing=True)
    if job is None:
        raise NotFound(f"no training job {job_id}")
    if not res.rowcount:
        raise Conflict(f"training job {job_id} is {job.status}, not queued: it runs once")
    return job


def set_progress(session: Session, job_id: int, progress: float, metrics: dict[str, Any] | None = None) -> None:
    """Record how far a running job is (0..1) and, optionally, its latest figures."""
    values: dict[str, Any] = {"progress": max(0.0, min(1.0, float(progress)))}
    if metrics is not None:
        values["metrics"] = clean(metrics)
    session.execute(update(t.TrainingJob).where(t.TrainingJob.id == job_id, t.TrainingJob.status == "running")
                    .values(**values).execution_options(synchronize_session=False))


def succeed(session: Session, job: t.TrainingJob, *, metrics: dict[str, Any], artifacts: dict[str, Any]) -> None:
    """A finished job with its figures and the files it left."""
    job.status, job.progress, job.finished_at = "succeeded", 1.0, now()
    job.metrics, job.artifacts, job.error = clean(metrics), clean(artifacts), None
    session.flush()


def fail(session: Session, job: t.TrainingJob, error: str) -> None:
    """A job that ended without a result, and why (the last lines of the error)."""
    job.status, job.finished_at, job.error = "failed", now(), error[-4000:]
    session.flush()


def latest(session: Session, kind: str, *, statuses: tuple[str, ...] = STATUSES) -> t.TrainingJob | None:
    """The newest job of a kind among the given statuses."""
    q = select(t.TrainingJob).where(t.TrainingJob.kind == kind, t.TrainingJob.status.in_(statuses))
    return session.scalars(q.order_by(t.TrainingJob.id.desc()).limit(1)).first()


def as_dict(job: t.TrainingJob) -> dict[str, Any]:
    """The public view of a job."""
    return {"id": job.id, "kind": job.kind, "status": job.status, "runner": job.runner, "trigger": job.trigger,
            "dataset_version_id": job.dataset_version_id, "params": job.params or {}, "progress": job.progress,
            "external_id": job.external_id, "log_path": job.log_path, "artifacts": job.artifacts or {},
            "metrics": job.metrics or {}, "error": job.error, "created_at": job.created_at,
            "started_at": job.started_at, "finished_at": job.finished_at}
