"""The drift worker: per slice, evaluate the current window against the pinned reference, keep the report, alert.

`run_once` is one pass (the `drift run` command and the Helm CronJob); `loop` is the long-running worker that
runs a pass every `drift_interval_seconds` and drains the alert outbox every few seconds in between. Each slice
is its own short transaction; Evidently runs outside any transaction so ingestion is never held up by it.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from drift import alerts, windows
from drift.evaluate import DriftInputError, evaluate
from drift.windows import Slice, aware
from schemas import tables as t
from services import db
from services.settings import Settings

log = logging.getLogger("ff.drift")
DELIVERY_TICK_S = 5.0
REPORTS_DIR = "reports"


def channels(settings: Settings) -> dict[str, str]:
    """Alert channels configured in the settings (an empty URL leaves a channel out)."""
    am = settings.alertmanager_url.rstrip("/")
    if am and not am.endswith("/api/v2/alerts"):
        am += "/api/v2/alerts"
    out = {"webhook": settings.webhook_url, "slack": settings.slack_webhook_url, "alertmanager": am}
    return {name: url for name, url in out.items() if url}


def report_file(settings: Settings, relative: str) -> Path:
    """Where a report's stored (data_dir-relative) HTML path lies on this machine."""
    path = Path(relative)
    return path if path.is_absolute() else Path(settings.data_dir) / path


def _latest_report(session: Session, slice_: Slice) -> t.DriftReport | None:
    r = t.DriftReport
    q = (select(r).where(r.model_version == slice_.model_version, r.bucket == slice_.bucket)
         .order_by(r.id.desc()).limit(1))
    return session.scalar(q)


def _windows(factory: sessionmaker, slice_: Slice, n: int, now: datetime) -> dict[str, Any]:
    """Resolve (or auto-pin) the reference of a slice and load both windows; one short transaction."""
    with db.unit_of_work(factory) as session:
        ref = windows.active_reference(session, slice_)
        auto = False
        if ref is None:
            ref = windows.pin_first_rows(session, slice_, n, now)
            auto = ref is not None
        if ref is None:
            return {"skip": f"fewer than {n} rows to pin a reference window"}
        last = _latest_report(session, slice_)
        if not auto and last is not None and last.reference_id == ref.id:
            auto = bool(last.summary.get("reference", {}).get("auto_pinned"))
        reference = windows.reference_window(session, ref)
        current = windows.current_window(session, slice_, after=aware(ref.window_end), n=n)
        ref_info = {"id": ref.id, "window_start": aware(ref.window_start).isoformat(),
                    "window_end": aware(ref.window_end).isoformat(), "n_rows": reference.n, "auto_pinned": auto}
        return {"ref": ref_info, "reference": reference, "current": current,
                "last_window": last.summary.get("window") if last is not None else None}


def _store(factory: sessionmaker, settings: Settings, slice_: Slice, loaded: dict, result, now: datetime,
           window: dict) -> dict[str, Any]:
    """Store the report (JSON in the DB, HTML on disk) and apply the alert rules, in one transaction."""
    with db.unit_of_work(factory) as session:
        summary = {**result.summary(), "slice": slice_.as_dict(), "reference": loaded["ref"], "window": window}
        report = t.DriftReport(model_version=slice_.model_version, bucket=slice_.bucket,
                               reference_id=loaded["ref"]["id"], n_reference=loaded["reference"].n,
                               n_current=loaded["current"].n, drift_detected=result.drift_detected,
                               summary=summary, created_at=now)
        session.add(report)
        session.flush()
        relative = f"{REPORTS_DIR}/drift-{report.id}.html"
        target = report_file(settings, relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        result.save_html(str(target))
        report.html_path = relative
        outcomes = {"opened": 0, "resolved": 0}
        for rule in alerts.rules_for(session, slice_, list(result.signals)):
            outcome = alerts.apply_rule(session, rule=rule, slice_=slice_, result=result.signals[rule.signal],
                                        now=now, channels=channels(settings), report_id=report.id)
            if outcome:
                outcomes[outcome] += 1
    return {"id": report.id, "slice": slice_.as_dict(), "drift_detected": result.drift_detected,
            "drifted": result.drifted, "auto_pinned": loaded["ref"]["auto_pinned"], "html": relative, **outcomes}


def evaluate_slice(factory: sessionmaker, settings: Settings, slice_: Slice, now: datetime) -> dict[str, Any]:
    """One slice: windows, Evidently, report and alerts; returns the report entry or a skip reason."""
    n = settings.drift_window_rows
    loaded = _windows(factory, slice_, n, now)
    if "skip" in loaded:
        return {"slice": slice_.as_dict(), "skipped": loaded["skip"]}
    current = loaded["current"]
    if current.n < n:
        return {"slice": slice_.as_dict(), "skipped": f"current window holds {current.n} of {n} rows",
                "auto_pinned": loaded["ref"]["auto_pinned"]}
    window = {"reference_id": loaded["ref"]["id"], **current.signature()}
    if loaded["last_window"] == window:
        return {"slice": slice_.as_dict(), "skipped": "no new rows since the last report"}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = evaluate(loaded["reference"].frame, current.frame)
    except DriftInputError as exc:
        return {"slice": slice_.as_dict(), "skipped": str(exc)}
    return _store(factory, settings, slice_, loaded, result, now, window)


def seed(factory: sessionmaker) -> int:
    """Insert missing default alert rules (a concurrent seeder winning the race is fine)."""
    try:
        with db.unit_of_work(factory) as session:
            return alerts.seed_rules(session)
    except Exception as exc:  # noqa: BLE001 - a unique-name race: the other process seeded them
        log.info("drift.rules.seed_skipped error=%s", type(exc).__name__)
        return 0


def deliver(factory: sessionmaker, settings: Settings, now: datetime | None = None,
            client: httpx.Client | None = None) -> dict[str, int]:
    """Send due alert deliveries from the outbox."""
    owned = client is None
    client = client or httpx.Client(timeout=10.0)
    try:
        with factory() as session:
            return alerts.deliver_pending(session, now or datetime.now(timezone.utc), settings.webhook_secret or None,
                                          client)
    finally:
        if owned:
            client.close()


def run_pass(factory: sessionmaker, settings: Settings, now: datetime | None = None,
             client: httpx.Client | None = None) -> dict[str, Any]:
    """One pass over every slice with enough rows, then the outbox."""
    now = aware(now) or datetime.now(timezone.utc)
    seeded = seed(factory)
    with factory() as session:
        todo = windows.slices(session, settings.drift_window_rows)
    reports, skipped, failed = [], [], []
    for slice_ in todo:
        try:
            entry = evaluate_slice(factory, settings, slice_, now)
        except Exception as exc:  # noqa: BLE001 - one bad slice must not stop the others
            log.exception("drift.slice.failed slice=%s/%s", slice_.model_version, slice_.bucket)
            failed.append({"slice": slice_.as_dict(), "error": f"{type(exc).__name__}: {exc}"[:500]})
            continue
        (skipped if "skipped" in entry else reports).append(entry)
    deliveries = deliver(factory, settings, now, client)
    opened = sum(r.get("opened", 0) for r in reports)
    resolved = sum(r.get("resolved", 0) for r in reports)
    log.info("drift.run.completed slices=%d reports=%d opened=%d resolved=%d", len(todo), len(reports), opened,
             resolved)
    return {"now": now.isoformat(), "seeded_rules": seeded, "slices": len(todo), "reports": reports,
            "skipped": skipped, "failed": failed, "alerts": {"opened": opened, "resolved": resolved},
            "deliveries": deliveries}


def run_once(settings: Settings, now: datetime | None = None, client: httpx.Client | None = None) -> dict[str, Any]:
    """One drift run on the configured database (what `feedback-factory drift run` prints)."""
    engine = db.make_engine(settings.database_url)
    try:
        return run_pass(db.session_factory(engine), settings, now, client)
    finally:
        engine.dispose()


def loop(settings: Settings, stop: threading.Event | None = None) -> None:
    """Run a pass every `drift_interval_seconds` and drain the outbox every few seconds until SIGTERM/SIGINT."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    engine = db.make_engine(settings.database_url)
    factory = db.session_factory(engine)
    next_run = time.monotonic()
    log.info("drift.worker.started interval_s=%d", settings.drift_interval_seconds)
    with httpx.Client(timeout=10.0) as client:
        while not stop.is_set():
            try:
                if time.monotonic() >= next_run:
                    next_run = time.monotonic() + settings.drift_interval_seconds
                    run_pass(factory, settings, client=client)
                    # The worker is also the scheduler of retraining: new admitted pairs or a severe drift alert.
                    from services import retraining

                    retraining.evaluate_triggers(factory, settings, created_by="drift-worker")
                else:
                    deliver(factory, settings, client=client)
            except Exception:  # noqa: BLE001 - a database outage: log and try again on the next tick
                log.exception("drift.worker.pass_failed")
            stop.wait(max(0.0, min(DELIVERY_TICK_S, next_run - time.monotonic())))
    engine.dispose()
    log.info("drift.worker.stopped")
