"""A local webhook receiver for trying alerts out: verifies the HMAC signature and keeps each alert once."""

import html
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from drift import alerting


class WebhookReceiver(ThreadingHTTPServer):
    """Records signed alert deliveries (deduplicated by Idempotency-Key) and lists them on `GET /`."""

    daemon_threads = True

    def __init__(self, secret: str, log_file: Path | None = None, port: int = 0):
        super().__init__(("127.0.0.1", port), _Handler)
        self.secret, self.log_file = secret, log_file
        self.received: dict[str, dict] = {}
        self.rejected = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        """Where to send alerts."""
        return f"http://127.0.0.1:{self.server_address[1]}/alerts"

    def start(self) -> "WebhookReceiver":
        """Serve in a background thread."""
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self


class _Handler(BaseHTTPRequestHandler):
    server: WebhookReceiver

    def log_message(self, *_):  # keep the console for the service's own logs
        pass

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not alerting.verify_signature(body, self.headers.get(alerting.SIGNATURE_HEADER), self.server.secret):
            self.server.rejected += 1
            self.send_response(401)
            self.end_headers()
            return
        key = self.headers.get("Idempotency-Key") or ""
        with self.server.lock:
            if key not in self.server.received:
                doc = json.loads(body)
                self.server.received[key] = doc
                if self.server.log_file:
                    with open(self.server.log_file, "a") as f:
                        f.write(json.dumps({"idempotency_key": key, "alert": doc}) + "\n")
        self.send_response(200)
        self.end_headers()

    def do_GET(self):  # noqa: N802
        rows = "".join(f"<li><code>{html.escape(k)}</code><pre>{html.escape(json.dumps(v, indent=2))}</pre></li>"
                       for k, v in self.server.received.items())
        page = (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Webhook receiver</title></head><body>"
                f"<h1>Alerts received ({len(self.server.received)})</h1><ul>{rows}</ul></body></html>").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)
