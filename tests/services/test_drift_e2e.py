"""End to end: a length shift ingested through the real pipeline fires one drift alert, delivered exactly once."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from drift import alerting
from ingestion import decode
from schemas import tables as t
from services import auth, db, drift_worker, pipeline
from services.api import create_app
from services.settings import Settings
from support.events import interaction

SECRET = "e2e-secret"
N = 200  # rows per window
T0 = datetime(2026, 11, 2, tzinfo=timezone.utc)
WORDS = "the account settings page lets you change the password and recovery email at any time".split()


def text_of(length: int, i: int) -> str:
    """Neutral filler of exactly `length` characters (no refusal or sycophancy phrasing)."""
    words = (WORDS[(i + k) % len(WORDS)] for k in range(10**6))
    out = ""
    while len(out) < length:
        out += next(words) + " "
    return out[:length - 1] + "."


def events(start: int, n: int, scale: float) -> list[dict]:
    """n interactions whose response lengths cycle through the same values, times `scale`."""
    return [interaction(i, response=text_of(int((240 + (i * 37) % 360) * scale), i)) for i in range(start, start + n)]


def ingest(factory, batch: list[dict]) -> None:
    items = decode.decode_batch("interaction", json.dumps(batch).encode(), 10_000)
    with db.unit_of_work(factory) as session:
        outcome = pipeline.ingest(session, "interaction", items)
    assert len(outcome.stored) == len(batch)


class Receiver:
    """A webhook receiver on a fixed loopback port that verifies signatures; stopped = connection refused."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.received: list[dict] = []
        self.server = None

    def start(self) -> None:
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                return

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append({"key": self.headers["Idempotency-Key"], "body": json.loads(body),
                                 "valid": alerting.verify_signature(body, self.headers[alerting.SIGNATURE_HEADER],
                                                                    SECRET)})
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.stop()


def test_length_shift_alerts_once_and_is_delivered_once_through_an_outage(database_url, tmp_path, receiver):
    settings = Settings(database_url=database_url, data_dir=tmp_path, drift_window_rows=N,
                        webhook_url=receiver.url, webhook_secret=SECRET)
    engine = db.make_engine(database_url)
    factory = db.session_factory(engine)
    ingest(factory, events(0, N, 1.0))        # reference window: normal lengths
    ingest(factory, events(N, N, 1.5))        # current window: +50 % length

    first = drift_worker.run_once(settings, now=T0)   # the receiver is down: connection refused
    [report] = first["reports"]
    assert report["slice"] == {"model_version": "v1", "bucket": "*"} and report["auto_pinned"] is True
    assert report["drifted"] == ["length_chars"] and first["alerts"] == {"opened": 1, "resolved": 0}
    assert first["deliveries"] == {"attempted": 1, "delivered": 0, "retry": 1}
    assert (tmp_path / report["html"]).stat().st_size > 10_000

    now = T0
    for _ in range(3):                          # still down: retries fail, with growing backoff
        now += timedelta(minutes=30)
        assert drift_worker.deliver(factory, settings, now)["delivered"] == 0
    receiver.start()
    assert drift_worker.deliver(factory, settings, now + timedelta(seconds=1))["attempted"] == 0  # not due yet
    now += timedelta(hours=1)
    assert drift_worker.deliver(factory, settings, now) == {"attempted": 1, "delivered": 1, "retry": 0}
    for _ in range(3):
        now += timedelta(hours=1)
        assert drift_worker.deliver(factory, settings, now)["attempted"] == 0

    [got] = receiver.received
    assert got["valid"] and got["body"]["alert"]["signal"] == "length_chars"
    assert got["body"]["alert"]["slice"] == {"model_version": "v1", "bucket": "*"}
    with factory() as s:
        [alert] = s.scalars(select(t.Alert)).all()
        [delivery] = s.scalars(select(t.AlertDelivery)).all()
    assert got["key"] == delivery.idempotency_key == f"{alert.evidence['uid']}:webhook"
    assert (delivery.status, delivery.attempts) == ("delivered", 5)

    # the shift goes on: the next run re-evaluates the newer window but does not open a second alert
    ingest(factory, events(2 * N, N // 2, 1.5))
    second = drift_worker.run_once(settings, now=now + timedelta(minutes=5))
    assert second["reports"][0]["drifted"] == ["length_chars"] and second["alerts"]["opened"] == 0
    assert drift_worker.run_once(settings, now=now + timedelta(minutes=10))["skipped"][0]["skipped"] == \
        "no new rows since the last report"
    with factory() as s:
        assert len(s.scalars(select(t.Alert)).all()) == 1
    assert len(receiver.received) == 1

    # the API and the ops page show it
    app = create_app(settings)
    with db.unit_of_work(app.state.sessions) as s:
        ops_key = auth.create_key(s, role="ops", name="e2e")[1]
    with TestClient(app) as client:
        hdr = {"Authorization": f"Bearer {ops_key}"}
        page = client.get("/v1/alerts?status=open", headers=hdr).json()
        assert page["total"] == 1 and page["items"][0]["deliveries"][0]["status"] == "delivered"
        reports = client.get("/v1/drift/reports?model_version=v1", headers=hdr).json()
        assert reports["total"] == 2 and reports["items"][0]["drifted"] == ["length_chars"]
        one = client.get(f"/v1/drift/reports/{report['id']}", headers=hdr).json()
        assert one["summary"]["signals"]["length_chars"]["drift_detected"] is True
        html = client.get(f"/v1/drift/reports/{report['id']}/html", headers=hdr)
        assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
        client.cookies.set("ff_key", ops_key)
        ops = client.get("/ui/ops")
        assert ops.status_code == 200 and "drift_length_chars" in ops.text
        assert f"/ui/ops/reports/{report['id']}" in ops.text
        assert client.get(f"/ui/ops/reports/{report['id']}").status_code == 200
        client.cookies.clear()
        assert client.get("/ui/ops").status_code == 401
        alert_id = page["items"][0]["id"]
        assert client.post(f"/v1/alerts/{alert_id}/ack", headers=hdr).json()["status"] == "acknowledged"
        assert client.post(f"/v1/alerts/{alert_id}/resolve", headers=hdr).json()["status"] == "resolved"
        assert client.post("/v1/alerts/999999/ack", headers=hdr).status_code == 404
    app.state.engine.dispose()
    engine.dispose()


def test_worker_runs_passes_and_stops_on_sigterm(tmp_path):
    url = f"sqlite:///{tmp_path / 'worker.db'}"
    db.upgrade(url)
    env = {**os.environ, "FF_DATABASE_URL": url, "FF_DATA_DIR": str(tmp_path), "FF_DRIFT_INTERVAL_SECONDS": "1"}
    exe = Path(sys.executable).with_name("feedback-factory")
    proc = subprocess.Popen([str(exe), "drift", "worker"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    engine = db.make_engine(url)
    try:
        deadline = time.monotonic() + 30
        seeded = 0
        while time.monotonic() < deadline and not seeded:   # the first pass seeds the default alert rules
            time.sleep(0.2)
            with engine.connect() as conn:
                seeded = len(conn.execute(select(t.AlertRule.id)).all())
        assert seeded and proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert b"drift.worker.stopped" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
        engine.dispose()
