"""The model registry: versions of reward models and policies, which one is current, and lineage to the reviews.

Lineage walks model version → training job → dataset version → dataset items → badcases → review submissions →
rubric versions (and, for a policy, the reward model that judged it). Functions take the caller's session and
flush; they never commit.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from retrain.jobs import clean, now
from schemas import tables as t
from schemas.errors import NotFound

MODEL_KINDS = ("reward_model", "policy")


def register(session: Session, *, name: str, kind: str, job: t.TrainingJob | None, dataset_version_id: int | None,
             path: str, metrics: dict[str, Any], settings: dict[str, Any], promoted: bool,
             parent_id: int | None = None) -> t.ModelVersion:
    """Add the next version of a named model (versions count from 1 per name)."""
    last = session.scalar(select(func.max(t.ModelVersion.version)).where(t.ModelVersion.name == name)) or 0
    row = t.ModelVersion(name=name, kind=kind, version=last + 1, training_job_id=job.id if job else None,
                         dataset_version_id=dataset_version_id, parent_id=parent_id, path=path, metrics=clean(metrics),
                         settings=clean(settings), promoted=promoted, created_at=now())
    session.add(row)
    session.flush()
    return row


def get(session: Session, model_id: int) -> t.ModelVersion:
    """A model version by id."""
    row = session.get(t.ModelVersion, model_id)
    if row is None:
        raise NotFound(f"no model version {model_id}")
    return row


def current(session: Session, kind: str, name: str | None = None) -> t.ModelVersion | None:
    """The promoted model in use: the newest promoted version of the kind (and name)."""
    q = select(t.ModelVersion).where(t.ModelVersion.kind == kind, t.ModelVersion.promoted.is_(True))
    if name is not None:
        q = q.where(t.ModelVersion.name == name)
    return session.scalars(q.order_by(t.ModelVersion.id.desc()).limit(1)).first()


def list_models(session: Session, *, kind: str | None = None, promoted: bool | None = None, limit: int = 50,
                offset: int = 0) -> tuple[int, list[t.ModelVersion]]:
    """Model versions, newest first, with the total count."""
    q = select(t.ModelVersion)
    if kind is not None:
        q = q.where(t.ModelVersion.kind == kind)
    if promoted is not None:
        q = q.where(t.ModelVersion.promoted.is_(promoted))
    total = session.scalar(select(func.count()).select_from(q.subquery())) or 0
    return total, list(session.scalars(q.order_by(t.ModelVersion.id.desc()).limit(limit).offset(offset)))


def as_dict(row: t.ModelVersion, current_ids: set[int] | None = None) -> dict[str, Any]:
    """The public view of a model version."""
    return {"id": row.id, "name": row.name, "kind": row.kind, "version": row.version,
            "training_job_id": row.training_job_id, "dataset_version_id": row.dataset_version_id,
            "parent_id": row.parent_id, "path": row.path, "metrics": row.metrics or {}, "settings": row.settings or {},
            "promoted": row.promoted, "current": bool(current_ids and row.id in current_ids),
            "report_path": row.report_path, "created_at": row.created_at}


def current_ids(session: Session) -> set[int]:
    """Ids of the current model of each kind."""
    return {m.id for m in (current(session, k) for k in MODEL_KINDS) if m is not None}


def _items(session: Session, dataset_id: int, limit: int) -> tuple[int, list[dict[str, Any]]]:
    di, bc, it = t.DatasetItem, t.Badcase, t.Interaction
    total = session.scalar(select(func.count()).select_from(di).where(di.dataset_version_id == dataset_id)) or 0
    rows = session.execute(select(di.split, bc, it.event_id).join(bc, bc.id == di.badcase_id)
                           .join(it, it.id == di.interaction_id).where(di.dataset_version_id == dataset_id)
                           .order_by(di.badcase_id).limit(limit)).all()
    subs: dict[int, list[t.ReviewSubmission]] = {}
    ids = [b.id for _, b, _ in rows]
    for i in range(0, len(ids), 500):
        for s in session.scalars(select(t.ReviewSubmission).where(t.ReviewSubmission.badcase_id.in_(ids[i : i + 500]))
                                 .order_by(t.ReviewSubmission.id)):
            subs.setdefault(s.badcase_id, []).append(s)
    items = []
    for split, b, event_id in rows:
        resolution = b.resolution or {}
        items.append({
            "badcase_id": b.id, "interaction_event_id": event_id, "split": split, "status": b.status,
            "category": resolution.get("category"), "chosen_from": resolution.get("chosen_from"),
            "rubric_version_id": b.rubric_version_id, "review_batch": b.review_batch,
            "reviews": [{"id": s.id, "reviewer_id": s.reviewer_id, "rubric_version_id": s.rubric_version_id,
                         "verdict": s.verdict, "category": s.category, "preference": s.preference,
                         "has_rewrite": bool(s.rewrite)} for s in subs.get(b.id, [])],
        })  # fmt: skip
    return total, items


def lineage(session: Session, model_id: int, *, items_limit: int = 1000) -> dict[str, Any]:
    """Where a model came from: its job, dataset version, rows, the reviews behind them and their rubric versions."""
    model = get(session, model_id)
    job = session.get(t.TrainingJob, model.training_job_id) if model.training_job_id else None
    dataset = session.get(t.DatasetVersion, model.dataset_version_id) if model.dataset_version_id else None
    out: dict[str, Any] = {"model": as_dict(model, current_ids(session)), "job": None, "dataset": None, "items": [],
                           "items_total": 0, "rubric_versions": [], "reviewers": [], "review_batches": [],
                           "parent": None, "reward_model": None}
    if job is not None:
        out["job"] = {"id": job.id, "kind": job.kind, "status": job.status, "trigger": job.trigger,
                      "params": job.params or {}, "created_at": job.created_at, "finished_at": job.finished_at}
    if model.parent_id:
        parent = session.get(t.ModelVersion, model.parent_id)
        out["parent"] = parent and {"id": parent.id, "name": parent.name, "version": parent.version}
    rm_id = (model.settings or {}).get("reward_model_id")
    if rm_id:
        rm = session.get(t.ModelVersion, rm_id)
        out["reward_model"] = rm and {"id": rm.id, "name": rm.name, "version": rm.version,
                                      "dataset_version_id": rm.dataset_version_id}
    if dataset is None:
        return out
    manifest = dataset.manifest or {}
    out["dataset"] = {"id": dataset.id, "version": dataset.version, "content_hash": dataset.content_hash,
                      "parent_id": dataset.parent_id, "counts": manifest.get("counts"),
                      "consent_filter": manifest.get("consent_filter"), "agreement": manifest.get("agreement"),
                      "sources": manifest.get("sources"), "created_at": dataset.created_at}
    out["items_total"], out["items"] = _items(session, dataset.id, items_limit)
    rubric_ids = Counter(s["rubric_version_id"] for i in out["items"] for s in i["reviews"])
    if rubric_ids:
        rows = session.scalars(select(t.RubricVersion).where(t.RubricVersion.id.in_(rubric_ids)))
        out["rubric_versions"] = [{"id": r.id, "name": r.name, "version": r.version, "status": r.status,
                                   "reviews": rubric_ids[r.id]} for r in rows]
    reviewer_ids = sorted({s["reviewer_id"] for i in out["items"] for s in i["reviews"]})
    if reviewer_ids:
        rows = session.scalars(select(t.Reviewer).where(t.Reviewer.id.in_(reviewer_ids)).order_by(t.Reviewer.id))
        out["reviewers"] = [{"id": r.id, "name": r.name, "role": r.role} for r in rows]
    out["review_batches"] = sorted({i["review_batch"] for i in out["items"] if i["review_batch"]})
    return out
