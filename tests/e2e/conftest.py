"""Browser fixtures: the API served by uvicorn on a free loopback port, and Debian's headless Chromium via Playwright."""

import socket
import threading
import time
from pathlib import Path

import pytest
import uvicorn

from services import db
from services.api import create_app
from services.settings import Settings

CHROMIUM = Path("/usr/bin/chromium")
# Keeps Chromium's background calls from leaving the machine; our own page is on 127.0.0.1.
CHROMIUM_ARGS = ["--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_server(tmp_path):
    """The API with its web pages on a fresh SQLite database, served on 127.0.0.1; yields (base URL, app)."""
    url = f"sqlite:///{tmp_path / 'ff.db'}"
    db.upgrade(url)
    app = create_app(Settings(database_url=url, gold_share=0.0))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", app
    server.should_exit = True
    thread.join(timeout=10)
    app.state.engine.dispose()


@pytest.fixture
def browser():
    """Headless Debian Chromium; the test fails (never skips) when it is missing."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()
