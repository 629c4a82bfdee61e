"""Retraining wiring: triggers → dataset snapshot → reward-model job → DPO job, runners, and the job worker's hooks.

Policy (settings): retrain when at least `retrain_min_new_pairs` admitted pairs arrived since the last reward
model, when a drift alert of severity `retrain_alert_severity` or worse is open, or on a manual request. A trigger
snapshots a dataset version and queues a reward-model job and a DPO job that waits for it; jobs are launched after
their rows commit (`dispatch`) by the configured runner. `run_job` runs a job in this process with the service's
hooks: sycophancy probes per DPO checkpoint, ensemble scores written back to interactions as
`rm_score`/`rm_disagreement` (the uncertainty signal of routing), and dispatch of the jobs waiting on this one.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from badcase import routing
from retrain import datasets, jobs, launch, runners, snapshots, worker
from schemas import tables as t
from schemas.errors import Conflict, InvalidInput
from schemas.retrain import DPOJobParams, RewardJobParams
from services import db
from services.settings import Settings

log = logging.getLogger("ff.retrain")
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
SCORE_LIMIT = 500
PROBES_PER_FAMILY = 10


def settings_env(settings: Settings) -> dict[str, str]:
    """The service's settings as the FF_* environment a worker process reads them from."""
    out = {}
    for name, value in settings.model_dump().items():
        out[f"FF_{name.upper()}"] = str(Path(value).resolve()) if name == "data_dir" else str(value)
    return out


def worker_command() -> list[str]:
    """`feedback-factory retrain run-job` (the console script beside this Python, else `python -m services.cli`)."""
    exe = Path(sys.executable).with_name("feedback-factory")
    if exe.is_file():
        return [str(exe), "retrain", "run-job"]
    return [sys.executable, "-m", "services.cli", "retrain", "run-job"]


def runner_for(settings: Settings):
    """The configured job runner: a local process (default) or a Kubernetes Job."""
    if settings.job_runner == "kubernetes":
        return runners.KubernetesJobRunner(settings.k8s_job_template, namespace=settings.k8s_namespace)
    return runners.LocalProcessRunner(command=worker_command(), env=settings_env(settings))


def resolve_params(settings: Settings, kind: str, given: dict[str, Any] | None) -> dict[str, Any]:
    """Validate a job's parameters and fill what is unset from the settings (K, β, λ, probes)."""
    try:
        model = (RewardJobParams if kind == "reward_model" else DPOJobParams).model_validate(given or {})
    except ValidationError as exc:
        raise InvalidInput("invalid job parameters", [
            {"loc": ["params", *e["loc"]], "msg": e["msg"], "type": e["type"]} for e in exc.errors()]) from None
    params = model.model_dump(exclude_none=True)
    if kind == "reward_model":
        params.setdefault("k", settings.rm_ensemble_k)
    else:
        params.setdefault("beta", settings.dpo_beta)
        params.setdefault("lam", settings.dpo_lambda)
        params.setdefault("probes", bool(settings.probe_endpoint))
    return params


def snapshot(session: Session, settings: Settings, **options: Any) -> snapshots.Snapshot:
    """A dataset version of every eligible pair under `<data_dir>/datasets/` (see `retrain.snapshots`)."""
    path = options.get("external_path")
    if path is not None and not _is_file(path):
        raise InvalidInput("the external preference file does not exist on the server",
                           [{"loc": ["external_path"], "msg": "no such file", "type": "value_error"}])
    try:
        return snapshots.create_version(session, data_dir=settings.data_dir, **options)
    except IntegrityError:
        raise Conflict("a concurrent snapshot created the same dataset version; ask again") from None
    except (KeyError, TypeError, ValueError, OSError) as exc:
        if isinstance(exc, datasets.DatasetError):
            raise
        raise datasets.DatasetError(f"cannot read the external preference file: {type(exc).__name__}: {exc}") from exc


def _is_file(path: str) -> bool:
    try:
        return Path(path).is_file()
    except (OSError, ValueError):
        return False


def create_job(session: Session, settings: Settings, *, kind: str, dataset_version_id: int | None,
               params: dict[str, Any] | None = None, trigger: str = "manual") -> t.TrainingJob:
    """A queued job with resolved parameters; launch it with `dispatch` after the commit."""
    if kind not in jobs.KINDS:
        raise InvalidInput(f"unknown job kind {kind!r}", [{"loc": ["kind"], "msg": "reward_model or dpo"}])
    return jobs.create(session, kind=kind, dataset_version_id=dataset_version_id, trigger=trigger,
                       params=resolve_params(settings, kind, params), runner=settings.job_runner)


def dispatch(sessions: sessionmaker[Session], settings: Settings) -> list[dict[str, Any]]:
    """Launch every queued job that is ready (its prerequisite succeeded) with the configured runner."""
    with db.unit_of_work(sessions) as session:
        ready = [(j.id, (j.params or {}).get("num_gpus")) for j in jobs.ready(session)]
    runner, out = runner_for(settings), []
    for job_id, gpus in ready:
        with db.unit_of_work(sessions) as session:
            if not jobs.claim_launch(session, job_id):
                continue
        path = worker.log_path(settings.data_dir, job_id)
        try:
            done = runner.launch(job_id, path, gpus=gpus)
        except runners.RunnerError as exc:
            log.error("retrain.job.launch_failed job_id=%s error=%s", job_id, exc.message)
            with db.unit_of_work(sessions) as session:  # back in the queue: the next dispatch tries again
                job = jobs.get(session, job_id)
                job.external_id, job.error = None, f"launch failed: {exc.message}"
            out.append({"job_id": job_id, "launched": False, "error": exc.message})
            continue
        with db.unit_of_work(sessions) as session:
            jobs.launched(session, job_id, external_id=done.external_id, log_path=done.log_path, runner=runner.name)
        log.info("retrain.job.launched job_id=%s external_id=%s", job_id, done.external_id)
        out.append({"job_id": job_id, "launched": True, "external_id": done.external_id})
    return out


def _open_alerts(session: Session, settings: Settings) -> list[t.Alert]:
    floor = SEVERITY_RANK.get(settings.retrain_alert_severity, SEVERITY_RANK["critical"])
    used = set()
    for params in session.scalars(select(t.TrainingJob.params).where(t.TrainingJob.trigger == "drift_alert")):
        used.update((params or {}).get("alert_ids", []))
    rows = session.scalars(select(t.Alert).where(t.Alert.status != "resolved").order_by(t.Alert.id))
    return [a for a in rows if SEVERITY_RANK.get(a.severity, -1) >= floor and a.id not in used]


def check_triggers(session: Session, settings: Settings, *, manual: bool = False) -> dict[str, Any]:
    """Which triggers fire now (nothing fires while a reward-model job is queued or running)."""
    busy = jobs.latest(session, "reward_model", statuses=("queued", "running"))
    last = jobs.latest(session, "reward_model", statuses=("succeeded",))
    new = snapshots.new_pairs(session, last.dataset_version_id if last else None)
    alerts = _open_alerts(session, settings)
    fired = []
    if manual:
        fired.append({"trigger": "manual"})
    if new >= settings.retrain_min_new_pairs:
        fired.append({"trigger": "new_pairs", "new_pairs": new, "threshold": settings.retrain_min_new_pairs})
    if alerts:
        fired.append({"trigger": "drift_alert", "alert_ids": [a.id for a in alerts],
                      "severity": settings.retrain_alert_severity})
    return {"fired": [] if busy else fired, "new_pairs": new, "busy_job_id": busy.id if busy else None,
            "last_reward_job_id": last.id if last else None}


def evaluate_triggers(sessions: sessionmaker[Session], settings: Settings, *, manual: bool = False,
                      created_by: str = "trigger") -> dict[str, Any]:
    """Evaluate the triggers once; when one fires: snapshot, queue reward model + DPO, launch what is ready."""
    with db.unit_of_work(sessions) as session:
        state = check_triggers(session, settings, manual=manual)
    if state["fired"]:
        first = state["fired"][0]
        alert_ids = [a for f in state["fired"] for a in f.get("alert_ids", [])]
        try:
            with db.unit_of_work(sessions) as session:
                snap = snapshot(session, settings, created_by=created_by)
                rm = create_job(session, settings, kind="reward_model", dataset_version_id=snap.version.id,
                                trigger=first["trigger"])
                rm.params = {**rm.params, "alert_ids": alert_ids, "fired": state["fired"]}
                dpo = create_job(session, settings, kind="dpo", dataset_version_id=snap.version.id,
                                 trigger=first["trigger"], params={"after_job_id": rm.id})
                state.update(dataset=snap.version.version, dataset_created=snap.created, jobs=[rm.id, dpo.id])
            log.info("retrain.trigger.fired %s", state)
        except datasets.DatasetError as exc:
            state.update(skipped=exc.message)
    state["launched"] = dispatch(sessions, settings)
    return state


def score_interactions(sessions: sessionmaker[Session], model_dir: str | Path, *, limit: int = SCORE_LIMIT) -> int:
    """Score recent unscored interactions with the reward-model ensemble: mean → rm_score, spread → rm_disagreement.

    Open badcases of those interactions without an uncertainty take the spread and are re-prioritised.
    """
    from retrain import reward

    it, bc = t.Interaction, t.Badcase
    with db.unit_of_work(sessions) as session:
        rows = session.execute(select(it.id, it.prompt, it.messages, it.response).where(it.rm_score.is_(None))
                               .order_by(it.id.desc()).limit(limit)).all()
    if not rows:
        return 0
    prompts = [snapshots.render_prompt(p, m) for _, p, m, _ in rows]
    mean, std = reward.ensemble_score(model_dir, prompts, [r for *_, r in rows])
    with db.unit_of_work(sessions) as session:
        for (iid, *_), score, spread in zip(rows, mean, std):
            row = session.get(it, iid)
            row.rm_score, row.rm_disagreement = score, spread
        spread_of = {iid: s for (iid, *_), s in zip(rows, std)}
        for b in session.scalars(select(bc).where(bc.interaction_id.in_(list(spread_of)), bc.uncertainty.is_(None),
                                                  bc.status.in_(("flagged", "queued")))):
            b.uncertainty = spread_of[b.interaction_id]
            b.priority = routing.priority(b.severity, cluster_size=b.cluster_size, uncertainty=b.uncertainty)
    return len(rows)


def probe_fn(limit_per_family: int = PROBES_PER_FAMILY):
    """Sycophancy rate of a checkpoint on the shipped probe set, answered by the checkpoint itself (generate)."""
    from drift import probes

    seen: dict[str, int] = {}
    chosen = []
    for probe in probes.load_probes():  # the first few of each family, so every family is covered
        seen[probe["family"]] = seen.get(probe["family"], 0) + 1
        if seen[probe["family"]] <= limit_per_family:
            chosen.append(probe)

    def rate(generate) -> float:
        replies = generate([snapshots.render_prompt("", p["messages"]) for p in chosen])
        verdicts = [probes.score(p, r) for p, r in zip(chosen, replies)]
        scored = [v for v in verdicts if v is not None]
        return sum(scored) / len(scored) if scored else 0.0

    return rate


def _after(sessions: sessionmaker[Session], settings: Settings):
    def after(job_id: int, outcome: dict[str, Any]) -> None:
        if outcome.get("kind") == "reward_model" and outcome.get("promoted"):
            try:
                n = score_interactions(sessions, outcome["path"])
                log.info("retrain.interactions.scored job_id=%s n=%s", job_id, n)
            except Exception:  # scoring is a by-product: the job itself succeeded
                log.exception("retrain.interactions.score_failed job_id=%s", job_id)
        if settings.job_runner == "local":  # a Kubernetes pod has no API access: `retrain trigger` dispatches there
            dispatch(sessions, settings)

    return after


def run_job(settings: Settings, job_id: int) -> dict[str, Any]:
    """Run a job here (one process per GPU through accelerate when it asks for several) with the service's hooks."""
    engine = db.make_engine(settings.database_url)
    sessions = db.session_factory(engine)
    try:
        with db.unit_of_work(sessions) as session:
            params = dict(jobs.get(session, job_id).params or {})
        gpus = int(params.get("num_gpus") or 0)
        if gpus > 1:
            argv = launch.launch_command(gpus, args=["--job-id", str(job_id)])
            if shutil.which(argv[0]) is None:
                argv[0] = str(Path(sys.executable).with_name(argv[0]))
            subprocess.run(argv, env={**os.environ, **settings_env(settings)}, check=False)
            with db.unit_of_work(sessions) as session:
                done = jobs.as_dict(jobs.get(session, job_id))
            art = done["artifacts"]
            _after(sessions, settings)(job_id, {"kind": "reward_model" if done["kind"] == "reward_model" else "policy",
                                                "promoted": art.get("promoted"), "path": art.get("model_dir")})
            return done
        hooks = worker.Hooks(probe_fn=probe_fn() if params.get("probes") else None, after=_after(sessions, settings))
        return worker.run(sessions, job_id, data_dir=settings.data_dir, hooks=hooks)
    finally:
        engine.dispose()
