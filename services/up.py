"""`feedback-factory up`: the whole local stack on embedded defaults (what `make run` starts)."""

import json
import logging
import os
import signal
import subprocess
import sys
import time

from services import db
from services.settings import Settings

log = logging.getLogger("ff.up")


def bootstrap(settings: Settings) -> str:
    """Migrate the database and create an admin key for this run; return the plain key."""
    from services import auth

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db.upgrade(settings.database_url)
    engine = db.make_engine(settings.database_url)
    with db.unit_of_work(db.session_factory(engine)) as session:
        _, key = auth.create_key(session, role="admin", name=f"make-run-{int(time.time())}")
    engine.dispose()
    return key


def _demo_thread(settings: Settings, api_url: str, receiver=None) -> None:
    """Run the demo loop once the API answers (in the background of `up --demo`)."""
    import threading

    import httpx

    def go():
        for _ in range(120):
            try:
                if httpx.get(api_url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        try:
            from services import demo

            demo.run(settings, api_url=api_url, receiver=receiver)
        except Exception:
            log.exception("demo.failed")

    threading.Thread(target=go, daemon=True, name="demo").start()


def run(settings: Settings, demo: bool = False) -> None:
    """Start the embedded broker (unless one is configured), the consumer, the drift worker and the API until Ctrl-C."""
    import uvicorn

    from services.api import served_app

    key = bootstrap(settings)
    children: list[subprocess.Popen] = []
    env = dict(os.environ)
    broker_proc = None
    if not settings.kafka_bootstrap_servers:
        from services import broker

        server = broker.start_embedded(settings.data_dir)
        broker_proc = server.process  # stopped after the workers in `children`
        env["FF_KAFKA_BOOTSTRAP_SERVERS"] = server.bootstrap
        settings = settings.model_copy(update={"kafka_bootstrap_servers": server.bootstrap})
    receiver = None
    if demo:  # alerts from the drift worker's own passes go to the demo's receiver too
        from services.demo import start_receiver

        receiver, settings = start_receiver(settings)
        env.update(FF_WEBHOOK_URL=settings.webhook_url, FF_WEBHOOK_SECRET=settings.webhook_secret)
    children.append(subprocess.Popen([sys.executable, "-m", "services.cli", "consume"], env=env))
    children.append(subprocess.Popen([sys.executable, "-m", "services.cli", "drift", "worker"], env=env))
    print(json.dumps({"api": f"http://{settings.host}:{settings.port}", "docs": f"http://{settings.host}:{settings.port}/docs",
                      "admin_key": key, "kafka": settings.kafka_bootstrap_servers, "database": settings.database_url}),
          flush=True)
    print(f"\nFeedback Factory is up on http://{settings.host}:{settings.port}  (admin key: {key})\n", flush=True)
    if demo:
        _demo_thread(settings, f"http://{settings.host}:{settings.port}", receiver)
    try:
        uvicorn.run(served_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level.lower())
    finally:
        # the workers first (the consumer finishes its batch, commits and leaves the group), the broker last
        for group in (children, [broker_proc] if broker_proc else []):
            for child in group:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            for child in group:
                try:
                    child.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    child.kill()
