"""CLI commands of the drift domain (registered on the main `feedback-factory` app)."""

import json
import logging
from pathlib import Path

import typer

from services.settings import get_settings

app = typer.Typer(help="Drift commands.", no_args_is_help=True)
probes_app = typer.Typer(help="Sycophancy probes.", no_args_is_help=True)


def _echo_json(obj) -> None:
    typer.echo(json.dumps(obj, default=str))


def _setup_logging() -> None:
    logging.basicConfig(level=get_settings().log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")


@app.command("run")
def drift_run() -> None:
    """Evaluate every model version × bucket once, store reports, open/resolve alerts, deliver; print JSON."""
    from services import drift_worker

    _echo_json(drift_worker.run_once(get_settings()))


@app.command("worker")
def drift_worker_cmd() -> None:
    """Run drift every FF_DRIFT_INTERVAL_SECONDS and deliver alerts every few seconds until SIGTERM."""
    from services import drift_worker

    _setup_logging()
    drift_worker.loop(get_settings())


@app.command("check")
def drift_check(reference: Path = typer.Option(..., "--reference", exists=True, dir_okay=False,
                                               help="JSONL of interactions (the HTTP ingest shape), one per line."),
                current: Path = typer.Option(..., "--current", exists=True, dir_okay=False,
                                             help="JSONL of interactions to compare with the reference.")) -> None:
    """Compare two files of interactions without a database; print per-signal test, score, threshold, verdict."""
    from services import drift_check as check

    try:
        _echo_json(check.check_files(reference, current))
    except check.CheckError as exc:
        _echo_json({"error": {"code": exc.code, "message": exc.message, "details": exc.details}})
        raise typer.Exit(2) from None


@probes_app.command("run")
def probes_run(endpoint: str = typer.Option(..., "--endpoint", help="Base URL of an OpenAI-compatible server."),
               model: str = typer.Option(..., "--model", help="Model name sent in each request."),
               model_version: str = typer.Option(None, "--model-version",
                                                 help="Model version the run is stored under (default: --model)."),
               probes: Path = typer.Option(None, "--probes", exists=True,
                                           help="Probe JSONL file or directory (default: shipped sets + Perez 2022)."),
               max_probes: int = typer.Option(None, "--max-probes", min=1, help="At most N probes per family."),
               store: bool = typer.Option(True, "--store/--no-store",
                                          help="Store the run and apply the alert rule if the database answers."),
               ) -> None:
    """Ask the probe set and print the sycophancy rate per probe family as one JSON object."""
    from services import probe_runs

    out = probe_runs.run(get_settings(), endpoint=endpoint, model=model, model_version=model_version,
                         probes_file=probes, max_probes=max_probes, store=store)
    _echo_json(out)
    if not out["overall"]["n"]:
        raise typer.Exit(1)
