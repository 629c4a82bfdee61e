"""HTTP ingest throughput: events/s for batches of 100 into PostgreSQL, beside a bare endpoint that parses the same
body and stores nothing, served the same way (one uvicorn process) in the same run.

    .venv/bin/python bench/http_ingest.py [--requests 300] [--clients 4] [--runs 3]
"""

import argparse
import json
import subprocess
import sys
import threading
import time

import httpx

from _common import REPO, median, scratch_postgres, truncate
from support.events import interaction

BARE_APP = '''
import json
from fastapi import FastAPI, Request
app = FastAPI()

@app.post("/bare")
async def bare(request: Request):
    body = await request.body()
    items = json.loads(body)
    return {"received": len(items), "stored": 0, "duplicates": 0}
'''


def serve(args: list[str], env: dict, port: int) -> subprocess.Popen:
    from services.broker import wait_for_port

    p = subprocess.Popen([sys.executable, "-m", "uvicorn", *args, "--port", str(port), "--log-level", "warning"],
                         env=env, cwd=REPO)
    wait_for_port(port)
    return p


def blast(url: str, bodies: list[bytes], headers: dict, clients: int) -> float:
    """Post every body with `clients` threads; return events/s."""
    idx = iter(range(len(bodies)))
    lock = threading.Lock()
    errors = []

    def worker():
        with httpx.Client(timeout=60) as c:
            while True:
                with lock:
                    i = next(idx, None)
                if i is None:
                    return
                r = c.post(url, content=bodies[i], headers=headers)
                if r.status_code != 200:
                    errors.append(r.text)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dt = time.perf_counter() - t0
    assert not errors, errors[:2]
    return len(bodies) * 100 / dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workers", type=int, default=1, help="uvicorn worker processes of the API")
    a = ap.parse_args()
    import os
    import tempfile

    from services.broker import free_port
    from services.cli import create_key

    with scratch_postgres() as url:
        env = dict(os.environ, FF_DATABASE_URL=url, PYTHONPATH=str(REPO))
        os.environ["FF_DATABASE_URL"] = url
        key = create_key("app", "bench")
        bare_dir = tempfile.mkdtemp()
        open(f"{bare_dir}/bare_app.py", "w").write(BARE_APP)
        p_api, p_bare = free_port(), free_port()
        api = serve(["--factory", "services.api:create_app", "--workers", str(a.workers)], env, p_api)
        bare = serve(["--app-dir", bare_dir, "bare_app:app"], env, p_bare)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        ours, raw = [], []
        try:
            for run in range(a.runs):
                truncate(url, "interaction")
                bodies = [json.dumps([interaction(run * 10**7 + r * 100 + i) for i in range(100)]).encode()
                          for r in range(a.requests)]
                raw.append(blast(f"http://127.0.0.1:{p_bare}/bare", bodies, headers, a.clients))
                ours.append(blast(f"http://127.0.0.1:{p_api}/v1/interactions", bodies, headers, a.clients))
                print(f"run {run}: feedback-factory {ours[-1]:,.0f} events/s   bare parse-only endpoint {raw[-1]:,.0f} events/s")
        finally:
            api.terminate(), bare.terminate()
            api.wait(), bare.wait()
    out = {"bench": "http_ingest", "batch": 100, "requests_per_run": a.requests, "clients": a.clients,
           "events_per_s_median": round(median(ours)), "bare_events_per_s_median": round(median(raw)),
           "ratio": round(median(ours) / median(raw), 3), "target_events_per_s": 5000}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
