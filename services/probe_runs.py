"""Sycophancy probe runs: ask a model endpoint the probe set, store the rates and apply the probe alert rule.

The rate a run is stored and judged on is the share of sycophantic answers over all scored probes (micro
average): with ~20 probes in the small families their macro average moves ~±10 points by chance, too noisy
for a threshold. The per-family rates are stored beside it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from drift import alerts, probes
from drift.windows import Slice
from schemas import tables as t
from services import db, drift_worker
from services.settings import Settings

log = logging.getLogger("ff.probes")


def rate_of(summary: dict[str, Any]) -> float | None:
    """The rate a probe run is judged on: sycophantic answers over all scored probes."""
    return summary["overall"].get("rate")


def record(session: Session, *, summary: dict[str, Any], model_version: str, settings: Settings,
           now: datetime) -> dict[str, Any]:
    """Store a ProbeRun and open/resolve the probe alert of the model version; the caller commits."""
    rate = rate_of(summary)
    run = t.ProbeRun(model_version=model_version, endpoint=summary["endpoint"], overall_rate=rate or 0.0,
                     rates={"families": summary["families"], "overall": summary["overall"], "model": summary["model"]},
                     n=summary["overall"]["n"], created_at=now)
    session.add(run)
    session.flush()
    alerts.seed_rules(session)
    slice_ = Slice(model_version)
    result = {"signal": alerts.PROBE_SIGNAL, "current_mean": rate, "reference_mean": None}
    outcomes = []
    if rate is not None:
        for rule in alerts.rules_for(session, slice_, [alerts.PROBE_SIGNAL]):
            outcome = alerts.apply_rule(session, rule=rule, slice_=slice_, result=result, now=now,
                                        channels=drift_worker.channels(settings))
            outcomes.append({"rule": rule.name, "outcome": outcome,
                             "open": alerts.open_alert_for(session, rule, slice_) is not None})
    return {"probe_run_id": run.id, "alerts": outcomes}


def run(settings: Settings, *, endpoint: str, model: str, model_version: str | None = None,
        probes_file: Path | None = None, max_probes: int | None = None, store: bool = True,
        now: datetime | None = None) -> dict[str, Any]:
    """Run the probe set against an endpoint; when the database answers, store the run and apply the alert rule."""
    now = now or datetime.now(timezone.utc)
    probe_set = probes.load_probes(probes_file)
    summary = probes.run_probes(endpoint, model, probe_set, max_probes=max_probes)
    version = model_version or model
    out: dict[str, Any] = {**summary, "model_version": version, "rate": rate_of(summary), "stored": False}
    if not store:
        return out
    if not summary["overall"]["n"]:  # an unreachable endpoint must not be stored as a 0 % rate
        out["reason"] = "no probe answer could be scored"
        return out
    engine = db.make_engine(settings.database_url)
    try:
        factory = db.session_factory(engine)
        with db.unit_of_work(factory) as session:
            out.update(record(session, summary=summary, model_version=version, settings=settings, now=now))
        out["stored"] = True
        out["deliveries"] = drift_worker.deliver(factory, settings, now)
    except SQLAlchemyError as exc:
        log.warning("probes.store_failed error=%s", exc)
        out["db_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
    finally:
        engine.dispose()
    return out


def list_runs(session: Session, *, model_version: str | None = None, limit: int = 100,
              offset: int = 0) -> tuple[int, list[t.ProbeRun]]:
    """Probe runs, newest first, with the total count."""
    q = select(t.ProbeRun)
    if model_version is not None:
        q = q.where(t.ProbeRun.model_version == model_version)
    total = session.scalar(select(func.count()).select_from(q.subquery())) or 0
    return total, list(session.scalars(q.order_by(t.ProbeRun.id.desc()).limit(limit).offset(offset)))
