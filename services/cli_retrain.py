"""CLI commands of the retrain domain (registered on the main `feedback-factory` app).

Reports print one JSON object on stdout; progress bars and logs go to stderr so scripts can read stdout as is.
"""

import contextlib
import json
import math
import os
import sys
import time
from pathlib import Path

import typer

from services.settings import get_settings

app = typer.Typer(help="Retrain commands: datasets, reward models, DPO jobs, triggers.", no_args_is_help=True)


def _echo_json(obj) -> None:
    typer.echo(json.dumps(obj, default=str))


def _finite(x):
    return round(x, 4) if isinstance(x, float) and math.isfinite(x) else None


def _sessions():
    from services import db

    engine = db.make_engine(get_settings().database_url)
    return engine, db.session_factory(engine)


class _Bar:
    """A tqdm bar on stderr fed with 0..1 progress."""

    def __init__(self, desc: str):
        from tqdm import tqdm

        self.bar = tqdm(total=1000, desc=desc, file=sys.stderr, unit="‰", dynamic_ncols=True)

    def __call__(self, event: dict) -> None:
        done = int(1000 * min(1.0, float(event.get("progress", 0.0))))
        self.bar.update(max(0, done - self.bar.n))
        if "loss" in event:
            self.bar.set_postfix(loss=f"{event['loss']:.3f}")

    def close(self) -> None:
        self.bar.close()


@app.command("reward-model")
def reward_model(
    train: Path = typer.Option(..., "--train", exists=True, dir_okay=False,
                               help="Preference pairs (.jsonl/.jsonl.gz): chosen, rejected, optional prompt."),
    eval_file: Path = typer.Option(..., "--eval", exists=True, dir_okay=False, help="Held-out pairs to evaluate on."),
    out: Path = typer.Option(None, "--out", help="Where to save the model (default: a temporary directory)."),
    k: int = typer.Option(1, "--k", min=1, max=16, help="Ensemble members (the budget is split between them)."),
    budget_s: float = typer.Option(780.0, "--budget-s", min=10,
                                   help="Wall-clock budget for loading, training and held-out scoring."),
    epochs: float = typer.Option(None, "--epochs", min=0.01), lr: float = typer.Option(None, "--lr", min=0.0),
    batch_size: int = typer.Option(None, "--batch-size", min=1),
    max_length: int = typer.Option(None, "--max-length", min=16),
    freeze_layers: int = typer.Option(None, "--freeze-layers", min=0),
    backbone: Path = typer.Option(None, "--backbone", help="A local encoder (default: MiniLM from its wheel)."),
    threads: int = typer.Option(1, "--threads", min=1, help="torch threads (1 was fastest on small shared CPUs)."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Train a Bradley–Terry reward model on a preference file; print held-out accuracy and the length correlation."""
    import tempfile

    for key, value in (("HF_HUB_OFFLINE", "1"), ("HF_HUB_DISABLE_TELEMETRY", "1"), ("TRANSFORMERS_OFFLINE", "1")):
        os.environ.setdefault(key, value)
    started = time.monotonic()
    from retrain import datasets, reward, steps

    options = {**steps.REWARD_DEFAULTS, **{k_: v for k_, v in dict(epochs=epochs, lr=lr, batch_size=batch_size,
               max_length=max_length, freeze_layers=freeze_layers).items() if v is not None}}  # fmt: skip
    out_dir = out or Path(tempfile.mkdtemp(prefix="ff-rm-"))
    bar = _Bar("reward model")
    with contextlib.redirect_stdout(sys.stderr):  # nothing but the JSON object reaches stdout
        import torch

        torch.set_num_threads(threads)
        train_rows = datasets.read_preference_file(train)
        eval_rows = datasets.read_preference_file(eval_file)
        budget = budget_s - (time.monotonic() - started)
        common = dict(backbone=backbone, seed=seed, time_budget_s=budget, progress=bar, **options)
        if k == 1:
            figures = reward.train_reward_model(train_rows, eval_rows, out_dir, **common)
        else:
            common.pop("seed")
            summary = reward.train_ensemble(k, train_rows, eval_rows, out_dir, seeds=[seed + i for i in range(k)],
                                            **common)
            figures = {**steps.evaluate_ensemble(out_dir, eval_rows), "counts": summary["member_figures"][0]["counts"]}
    bar.close()
    length = figures.get("length") or {}
    _echo_json({
        "heldout_accuracy": _finite(figures["accuracy"]),
        "length_score_correlation": _finite(length.get("score_length_pearson")),
        "length_score_spearman": _finite(length.get("score_length_spearman")),
        "margin_length_correlation": _finite(length.get("margin_length_pearson")),
        "length_only_accuracy": _finite(length.get("longer_is_chosen_accuracy")),
        "per_bucket": {b: {"n": g["n"], "accuracy": _finite(g["accuracy"])}
                       for b, g in (figures.get("per_bucket") or {}).items()},
        "train_pairs": len(train_rows), "eval_pairs": len(eval_rows), "k": k, "counts": figures.get("counts"),
        "settings": {**options, "budget_s": budget_s, "threads": threads, "seed": seed},
        "model_dir": str(out_dir), "wall_s": round(time.monotonic() - started, 1),
    })  # fmt: skip


@app.command("snapshot")
def snapshot(external: Path = typer.Option(None, "--external", exists=True, dir_okay=False,
                                           help="A preference file to mix in (e.g. hh-rlhf pairs)."),
             weight: float = typer.Option(0.0, "--weight", min=0.0, help="External pairs per reviewed pair."),
             holdout_share: float = typer.Option(0.12, "--holdout-share", min=0.10, max=0.15),
             only_new: bool = typer.Option(False, "--only-new", help="Only pairs not in the parent version.")) -> None:
    """Snapshot resolved, admitted, consented pairs into a dataset version; print its manifest."""
    from services import db, retraining

    engine, sessions = _sessions()
    try:
        with db.unit_of_work(sessions) as session:
            snap = retraining.snapshot(session, get_settings(), external_path=str(external) if external else None,
                                       external_weight=weight, holdout_share=holdout_share, only_new=only_new,
                                       created_by="cli")
            _echo_json({"version": snap.version.version, "created": snap.created, "path": snap.version.path,
                        "manifest": snap.version.manifest})
    finally:
        engine.dispose()


@app.command("run-job")
def run_job(job_id: int = typer.Option(..., "--job-id", min=1, help="The training job to run here.")) -> None:
    """Run one queued training job in this process (what the local and Kubernetes runners start)."""
    from services import retraining

    job = retraining.run_job(get_settings(), job_id)
    _echo_json({"job_id": job["id"], "status": job["status"], "metrics_keys": sorted(job["metrics"]),
                "artifacts": job["artifacts"], "error": job["error"]})
    if job["status"] != "succeeded":
        raise typer.Exit(1)


def _watch(sessions, job_id: int, poll_s: float) -> dict:
    from retrain import jobs
    from services import db

    bar = _Bar(f"job {job_id}")
    try:
        while True:
            with db.unit_of_work(sessions) as session:
                job = jobs.as_dict(jobs.get(session, job_id))
            bar({"progress": job["progress"]})
            bar.bar.set_postfix(status=job["status"])
            if job["status"] in ("succeeded", "failed"):
                return job
            time.sleep(poll_s)
    finally:
        bar.close()


@app.command("jobs")
def jobs_cmd(job_id: int = typer.Argument(None, min=1, help="One job (default: list the latest)."),
             watch: bool = typer.Option(True, "--watch/--no-watch", help="Follow a running job with a progress bar."),
             poll_s: float = typer.Option(2.0, "--poll-s", min=0.1),
             limit: int = typer.Option(20, "--limit", min=1, max=500)) -> None:
    """List training jobs, or show one (following it with a progress bar until it ends)."""
    from retrain import jobs
    from services import db

    engine, sessions = _sessions()
    try:
        if job_id is None:
            with db.unit_of_work(sessions) as session:
                total, rows = jobs.list_jobs(session, limit=limit)
                _echo_json({"total": total, "jobs": [{k: v for k, v in jobs.as_dict(j).items() if k != "metrics"}
                                                     for j in rows]})
            return
        with db.unit_of_work(sessions) as session:
            job = jobs.as_dict(jobs.get(session, job_id))
        if watch and job["status"] in ("queued", "running"):
            job = _watch(sessions, job_id, poll_s)
        _echo_json(job)
    finally:
        engine.dispose()


@app.command("trigger")
def trigger(manual: bool = typer.Option(False, "--manual", help="Retrain now, whatever the triggers say.")) -> None:
    """Evaluate the retraining triggers once (new pairs, drift alerts, manual) and launch ready jobs; print JSON."""
    from services import retraining

    engine, sessions = _sessions()
    try:
        _echo_json(retraining.evaluate_triggers(sessions, get_settings(), manual=manual,
                                                created_by="cli-manual" if manual else "trigger"))
    finally:
        engine.dispose()
