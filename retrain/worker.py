"""Run one training job: `python -m retrain.worker --job-id N` (also what `accelerate launch` / `torchrun` start).

The job row says what to do (kind, dataset version, resolved parameters: K, β, λ, trainer options); the worker
marks it running, trains (`retrain.steps`), registers the model version with its gate outcome, moves the model to
`<data_dir>/models/<name>/<version>/` with a `REPORT.md`, and marks the job succeeded or failed. Progress goes to
the job row every few seconds and events to the job's log file. `feedback-factory retrain run-job` calls `run`
with the service's hooks (sycophancy probes, follow-up dispatch); this entry point reads FF_DATABASE_URL and
FF_DATA_DIR itself, since `retrain` may not import `services`. Under a multi-process launch only rank 0 writes.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session, sessionmaker

from retrain import jobs, registry, report, steps
from schemas import tables as t

log = logging.getLogger("ff.retrain.worker")
DEFAULT_DATABASE_URL = "sqlite:///./var/feedback_factory.db"


@dataclass
class Hooks:
    """What the service adds to a run: a sycophancy probe (generate → rate) and a call after the job ended."""

    probe_fn: Callable[[Callable[[list[str]], list[str]]], float] | None = None
    after: Callable[[int, dict[str, Any]], None] | None = None


class _Unit:
    """A short transaction on the job's database (the worker commits its own units of work)."""

    def __init__(self, sessions: sessionmaker[Session]):
        self.sessions = sessions

    def __call__(self, fn: Callable[[Session], Any]) -> Any:
        with self.sessions() as session:
            try:
                out = fn(session)
                session.commit()
                return out
            except BaseException:
                session.rollback()
                raise


def log_path(data_dir: str | Path, job_id: int) -> Path:
    """Where a job's log goes: `<data_dir>/jobs/<id>/log.txt`."""
    return Path(data_dir).resolve() / "jobs" / str(job_id) / "log.txt"


def _event(name: str, **fields: Any) -> None:
    log.info(json.dumps({"event": name, **fields}, default=str))


def _progress(unit: _Unit, job_id: int, every_s: float = 2.0):
    last = {"at": 0.0}

    def update(fraction: float, event: dict[str, Any]) -> None:
        _event("retrain.job.progress", job_id=job_id, progress=round(fraction, 4), **event)
        if time.monotonic() - last["at"] >= every_s:
            last["at"] = time.monotonic()
            unit(lambda s: jobs.set_progress(s, job_id, fraction))

    return update


def _dataset_dir(dataset: t.DatasetVersion, data_dir: Path) -> Path:
    path = Path(dataset.path)
    return path if (path / "train.jsonl").is_file() else data_dir / "datasets" / dataset.version


def _categories(session: Session, rows: list[dict[str, Any]]) -> list[str | None]:
    ids = {int(r["badcase_id"]) for r in rows if r.get("badcase_id")}
    q = select(t.Badcase.id, t.Badcase.resolution).where(t.Badcase.id.in_(ids))
    found = dict(session.execute(q).all()) if ids else {}
    return [((found.get(int(r["badcase_id"])) or {}).get("category") if r.get("badcase_id") else None) for r in rows]


def base_policy(data_dir: Path) -> Path:
    """The demo starting policy: a tiny Llama built once under `<data_dir>/models/base-policy`."""
    path = data_dir / "models" / "base-policy"
    if not (path / "config.json").is_file():
        from retrain.tiny import build_tiny_llama

        build_tiny_llama(path)
    return path.resolve()


def _publish(session: Session, *, job: t.TrainingJob, dataset: t.DatasetVersion, kind: str, name: str, src: Path,
             data_dir: Path, result: dict[str, Any], settings: dict[str, Any], parent_id: int | None) -> t.ModelVersion:
    """Register the model, move its files under models/<name>/<version>/, write REPORT.md, finish the job."""
    model = registry.register(session, name=name, kind=kind, job=job, dataset_version_id=dataset.id, path=str(src),
                              metrics=result, settings=settings, promoted=bool(result["gate"]["promote"]),
                              parent_id=parent_id)
    final = data_dir / "models" / name / str(model.version)
    final.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(src), final)
    model.path, model.report_path = str(final), str(final / "REPORT.md")
    evidence = {"model files": final, "dataset files": dataset.path, "dataset content hash": dataset.content_hash,
                "training job": job.id, "job log": job.log_path, "metrics": f"GET /v1/models/{model.id}",
                "lineage": f"GET /v1/models/{model.id}/lineage"}
    text = report.render(model=registry.as_dict(model), job=jobs.as_dict(job), result=result, settings=settings,
                         dataset={"version": dataset.version, "manifest": dataset.manifest}, evidence=evidence)
    (final / "REPORT.md").write_text(text, encoding="utf-8")
    artifacts = {"model_version_id": model.id, "model_dir": str(final), "report": str(final / "REPORT.md"),
                 "promoted": model.promoted, "log": job.log_path}
    jobs.succeed(session, job, metrics=jobs.clean(result), artifacts=artifacts)
    session.flush()
    return model


def _reward(unit: _Unit, job: t.TrainingJob, dataset: t.DatasetVersion, data_dir: Path, progress) -> dict[str, Any]:
    params = job.params or {}
    ddir = _dataset_dir(dataset, data_dir)
    train, holdout = steps.read_rows(ddir / "train.jsonl"), steps.read_rows(ddir / "holdout.jsonl")
    incumbent = unit(lambda s: registry.current(s, "reward_model"))
    categories = unit(lambda s: _categories(s, holdout))
    out = data_dir / "jobs" / str(job.id) / "model"
    k, tolerance = int(params.get("k", 3)), float(params.get("tolerance", 0.0))
    options = {**steps.REWARD_DEFAULTS, **(params.get("reward") or {})}
    _event("retrain.reward.start", job_id=job.id, train=len(train), holdout=len(holdout), k=k,
           incumbent=incumbent and incumbent.id)
    result = steps.reward_step(train, holdout, out, k=k, options=options, tolerance=tolerance,
                               incumbent_dir=incumbent.path if incumbent else None, categories=categories,
                               progress=progress)
    if incumbent is not None:
        result["incumbent_model_id"] = incumbent.id
    settings = {"K": k, "tolerance": tolerance, **options, "backbone": result["training"]["settings"].get("backbone")}
    model = unit(lambda s: _publish(s, job=s.get(t.TrainingJob, job.id), dataset=dataset, kind="reward_model",
                                    name=params.get("model_name", "reward-model"), src=out, data_dir=data_dir,
                                    result=result, settings=settings, parent_id=incumbent.id if incumbent else None))
    _event("retrain.reward.done", job_id=job.id, model_id=model.id, **result["gate"])
    return {"model_id": model.id, "promoted": model.promoted, "kind": "reward_model", "path": model.path}


def _dpo(unit: _Unit, job: t.TrainingJob, dataset: t.DatasetVersion, data_dir: Path, progress,
         hooks: Hooks) -> dict[str, Any]:
    params = job.params or {}
    ddir = _dataset_dir(dataset, data_dir)
    train, holdout = steps.read_rows(ddir / "train.jsonl"), steps.read_rows(ddir / "holdout.jsonl")
    start = unit(lambda s: registry.current(s, "policy"))
    policy_dir = Path(params["policy_path"]) if params.get("policy_path") else (
        Path(start.path) if start else base_policy(data_dir))
    rm = unit(lambda s: registry.get(s, params["reward_model_id"]) if params.get("reward_model_id")
              else registry.current(s, "reward_model"))
    beta, lam, options = float(params.get("beta", 0.1)), float(params.get("lam", 1.0)), params.get("dpo", {})
    probe = hooks.probe_fn if params.get("probes") else None
    out = data_dir / "jobs" / str(job.id) / "dpo"
    _event("retrain.dpo.start", job_id=job.id, policy=str(policy_dir), reward_model=rm and rm.id, beta=beta, lam=lam)
    result = steps.dpo_step(policy_dir, train, holdout, out, beta=beta, lam=lam, options=options,
                            reward_dir=rm.path if rm else None, probe_fn=probe,
                            probe_tolerance=float(params.get("probe_tolerance", 0.0)), progress=progress)
    settings = {"beta": beta, "lambda": lam, **options, "policy_path": str(policy_dir),
                "reward_model_id": rm.id if rm else None,
                "reward_model_K": (rm.settings or {}).get("K") if rm else None,
                "probes": probe is not None}  # fmt: skip
    parent = start.id if start and not params.get("policy_path") else None
    model = unit(lambda s: _publish(s, job=s.get(t.TrainingJob, job.id), dataset=dataset, kind="policy",
                                    name=params.get("model_name", "policy"), src=Path(result["best_checkpoint"]),
                                    data_dir=data_dir, result=result, settings=settings, parent_id=parent))
    _event("retrain.dpo.done", job_id=job.id, model_id=model.id, **result["gate"])
    return {"model_id": model.id, "promoted": model.promoted, "kind": "policy", "path": model.path}


def _attach_log(path: Path) -> logging.Handler:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    for name in ("ff.retrain", "retrain"):
        logging.getLogger(name).addHandler(handler)
        logging.getLogger(name).setLevel(logging.INFO)
    return handler


def run(sessions: sessionmaker[Session], job_id: int, *, data_dir: str | Path, hooks: Hooks | None = None) -> dict:
    """Run a queued job to its end; returns the job's public view (the job row records any failure)."""
    hooks, unit, data_dir = hooks or Hooks(), _Unit(sessions), Path(data_dir).resolve()

    def begin(s: Session):
        job = jobs.start(s, job_id)
        job.log_path = job.log_path or str(log_path(data_dir, job_id))
        return job, s.get(t.DatasetVersion, job.dataset_version_id) if job.dataset_version_id else None

    job, dataset = unit(begin)
    handler = _attach_log(Path(job.log_path))
    outcome: dict[str, Any] = {}
    try:
        _event("retrain.job.started", job_id=job_id, kind=job.kind, dataset=dataset and dataset.version)
        if dataset is None:
            raise ValueError("the job names no dataset version")
        progress = _progress(unit, job_id)
        outcome = (_reward(unit, job, dataset, data_dir, progress) if job.kind == "reward_model"
                   else _dpo(unit, job, dataset, data_dir, progress, hooks))
        _event("retrain.job.succeeded", job_id=job_id, **outcome)
    except Exception as exc:
        log.error("retrain.job.failed job_id=%s\n%s", job_id, traceback.format_exc())
        message = f"{type(exc).__name__}: {exc}"
        unit(lambda s: jobs.fail(s, jobs.get(s, job_id), message))
    finally:
        for name in ("ff.retrain", "retrain"):
            logging.getLogger(name).removeHandler(handler)
        handler.close()
    if hooks.after is not None:
        hooks.after(job_id, outcome)
    return unit(lambda s: jobs.as_dict(jobs.get(s, job_id)))


def follow(sessions: sessionmaker[Session], job_id: int, *, data_dir: str | Path, rank: int) -> None:
    """A non-zero rank of a multi-process DPO launch: train alongside rank 0, write nothing to the database."""
    unit, data_dir = _Unit(sessions), Path(data_dir).resolve()
    job = unit(lambda s: jobs.get(s, job_id))
    if job.kind != "dpo":
        return  # the reward-model loop is single-process; only rank 0 runs it
    dataset = unit(lambda s: s.get(t.DatasetVersion, job.dataset_version_id))
    params, ddir = job.params or {}, _dataset_dir(dataset, data_dir)
    start = unit(lambda s: registry.current(s, "policy"))
    policy_dir = Path(params["policy_path"]) if params.get("policy_path") else (
        Path(start.path) if start else base_policy(data_dir))
    steps.dpo_step(policy_dir, steps.read_rows(ddir / "train.jsonl"), steps.read_rows(ddir / "holdout.jsonl"),
                   data_dir / "jobs" / str(job_id) / f"dpo-rank{rank}", beta=float(params.get("beta", 0.1)),
                   lam=float(params.get("lam", 1.0)), options=params.get("dpo", {}))


def make_sessions(database_url: str) -> sessionmaker[Session]:
    """Sessions on the job database (SQLite waits for the write lock instead of failing at once)."""
    args = {"timeout": 30} if database_url.startswith("sqlite") else {}
    return sessionmaker(create_engine(database_url, connect_args=args), expire_on_commit=False)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m retrain.worker --job-id N`; exit status 1 when the job failed."""
    ap = argparse.ArgumentParser(description="Run one Feedback Factory training job.")
    ap.add_argument("--job-id", type=int, required=True)
    ap.add_argument("--database-url", default=os.environ.get("FF_DATABASE_URL", DEFAULT_DATABASE_URL))
    ap.add_argument("--data-dir", default=os.environ.get("FF_DATA_DIR", "./var"))
    args = ap.parse_args(argv)
    for key, value in (("HF_HUB_OFFLINE", "1"), ("HF_HUB_DISABLE_TELEMETRY", "1"), ("TRANSFORMERS_OFFLINE", "1")):
        os.environ.setdefault(key, value)
    rank = int(os.environ.get("RANK", "0"))
    if rank != 0:
        follow(make_sessions(args.database_url), args.job_id, data_dir=args.data_dir, rank=rank)
        return 0
    job = run(make_sessions(args.database_url), args.job_id, data_dir=args.data_dir)
    print(json.dumps({"job_id": job["id"], "status": job["status"], "artifacts": job["artifacts"]}, default=str))
    return 0 if job["status"] == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
