"""The loop as ops see it: a drifted stream raises an alert that reaches a webhook receiver and the ops page."""

import json
from pathlib import Path

from ingestion import decode
from services import auth, db, demo_stream, drift_worker, pipeline
from services.webhook_receiver import WebhookReceiver

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def _ingest(app, kind, events):
    items = decode.decode_batch(kind, json.dumps(events).encode(), 10_000)
    with db.unit_of_work(app.state.sessions) as s:
        pipeline.ingest(s, kind, items)


def test_drift_alert_reaches_webhook_and_ops_page(live_server, browser, tmp_path):
    base, app = live_server
    app.state.settings.data_dir = tmp_path
    ref, ref_fb = demo_stream.make(2000, phase="reference")
    cur, cur_fb = demo_stream.make(2000, phase="current", start=2000)
    for i in range(0, 2000, 1000):
        _ingest(app, "interaction", ref[i:i + 1000])
    _ingest(app, "feedback", ref_fb)
    for i in range(0, 2000, 1000):
        _ingest(app, "interaction", cur[i:i + 1000])
    _ingest(app, "feedback", cur_fb)

    receiver = WebhookReceiver("s3cret").start()
    settings = app.state.settings.model_copy(update={"webhook_url": receiver.url, "webhook_secret": "s3cret",
                                                     "data_dir": tmp_path})
    out = drift_worker.run_once(settings)
    drifted = {s for r in out["reports"] for s in r["drifted"]}
    assert {"length_chars", "is_refusal", "sycophancy_flip"} <= drifted
    assert len(receiver.received) == len(drifted)  # one alert per drifted signal, each delivered once
    assert receiver.rejected == 0
    drift_worker.run_once(settings)  # a second run neither re-opens nor re-delivers
    assert len(receiver.received) == len(drifted)

    with db.unit_of_work(app.state.sessions) as s:
        key = auth.create_key(s, role="ops", name="ops-e2e")[1]
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    ctx.add_cookies([{"name": "ff_key", "value": key, "url": base}])
    page = ctx.new_page()
    page.goto(f"{base}/ui/ops")
    text = page.content()
    assert "length_chars" in text and "is_refusal" in text
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "ops_page.png"), full_page=True)
    ctx.close()
