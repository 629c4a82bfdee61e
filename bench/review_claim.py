"""Benchmark: claim-next latency of the review queue under 20 concurrent reviewers on PostgreSQL.

A scratch database gets N badcases x k review slots (then ANALYZE). Two paces, each run first with the raw tool
and then with ours on the same table: `paced` reviewers think for a while (random, mean --think-ms) between
items, as people do; `burst` reviewers never pause (a closed loop: latency there is mostly queueing for the two
CPUs and the GIL, so it measures throughput). The raw tool is 20 threads on bare psycopg connections running
`SELECT id FROM review_task WHERE status = 'open' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED`, marking the row and
committing until the table is drained (statement and transaction timed). Ours is 20 reviewer threads claiming
(`services.review.claim`: lease, claim row, session, blind view, commit) and submitting (gate, agreement window)
until the queue is empty. Prints percentiles (and the claim's CPU time in this process, a figure the machine's
load does not inflate), then one JSON object.

Run: .venv/bin/python bench/review_claim.py [--items N] [--reviewers R] [--k K] [--think-ms MS] [--processes P]
(--processes 2: the reviewers spread over two worker processes, as `serve --workers 2` serves them)
"""

import argparse
import json
import random
import threading
import time

from _common import scratch_postgres  # noqa: F401  (also puts the repo and tests/ on sys.path)

import numpy as np  # noqa: E402
import psycopg  # noqa: E402

from schemas import tables as t  # noqa: E402
from services import auth, db, review, runtime  # noqa: E402
from services.settings import Settings  # noqa: E402
from support.review import ALL_GOOD, make_items  # noqa: E402

RAW_SELECT = "SELECT id FROM review_task WHERE status = 'open' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
CATEGORIES = ["factual_error", "sycophancy", "verbosity", "formatting"]


def pct(xs: list[float]) -> dict[str, float]:
    """p50 / p99 / max in milliseconds."""
    a = np.asarray(xs) * 1000
    return {"p50_ms": round(float(np.percentile(a, 50)), 2), "p99_ms": round(float(np.percentile(a, 99)), 2),
            "max_ms": round(float(a.max()), 2), "n": int(a.size)}


def seed(sessions, items: int, reviewers: int, k: int) -> list[t.ApiKey]:
    """Badcases with k slots each, and reviewer keys."""
    with db.unit_of_work(sessions) as s:
        for start in range(0, items, 500):
            make_items(s, min(500, items - start), start=start, k=k)
        keys = []
        for i in range(reviewers):
            key, _ = auth.create_key(s, role="reviewer", name=f"bench-{i}")
            s.add(t.Reviewer(name=f"bench-{i}", domains=["*"], api_key_id=key.id))
            keys.append(key)
    return keys


def think(rng: random.Random, mean_ms: float) -> None:
    """A reviewer's time on an item (exponential around the mean), scaled down from minutes."""
    if mean_ms > 0:
        time.sleep(rng.expovariate(1000.0 / mean_ms))


def raw_phase(url: str, threads: int, think_ms: float) -> tuple[list[float], list[float]]:
    """Bare SKIP LOCKED claims on psycopg connections: statement and transaction latencies."""
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    stmt_times, txn_times, lock = [], [], threading.Lock()

    def worker(i):
        rng, mine_s, mine_t = random.Random(i), [], []
        with psycopg.connect(dsn) as conn:
            while True:
                think(rng, think_ms)
                t0 = time.perf_counter()
                with conn.transaction():
                    row = conn.execute(RAW_SELECT).fetchone()
                    t1 = time.perf_counter()
                    if row is None:
                        break
                    conn.execute("UPDATE review_task SET status = 'leased' WHERE id = %s", row)
                mine_t.append(time.perf_counter() - t0)
                mine_s.append(t1 - t0)
        with lock:
            stmt_times.extend(mine_s)
            txn_times.extend(mine_t)

    run_threads(worker, threads, lambda i: (i,))
    with psycopg.connect(dsn) as conn:
        conn.execute("UPDATE review_task SET status = 'open', lease_expires_at = NULL, reviewer_id = NULL")
    return stmt_times, txn_times


def run_threads(target, n: int, args_of=lambda i: ()) -> float:
    """Run n threads to completion; wall seconds."""
    ths = [threading.Thread(target=target, args=args_of(i)) for i in range(n)]
    t0 = time.perf_counter()
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    return time.perf_counter() - t0


def ours_phase(sessions, settings: Settings, keys: list[t.ApiKey],
               think_ms: float) -> tuple[list[float], list[float], list[float], float]:
    """Reviewers claiming and submitting through the service functions until the queue is empty."""
    claims, submits, cpu, lock = [], [], [], threading.Lock()

    def worker(key, seed_):
        rng, mine_c, mine_s, mine_cpu = random.Random(seed_), [], [], []
        think(rng, think_ms)  # reviewers do not all arrive in the same millisecond
        while True:
            t0, c0 = time.perf_counter(), time.thread_time()
            task = review.claim(sessions, settings, key)
            mine_c.append(time.perf_counter() - t0)
            mine_cpu.append(time.thread_time() - c0)
            if task is None:
                break
            think(rng, think_ms)
            truth = CATEGORIES[task["badcase_id"] % 4]
            answer = {"rubric_version_id": task["rubric"]["id"], "verdict": True,
                      "category": truth if rng.random() < 0.95 else rng.choice(CATEGORIES), "ratings": ALL_GOOD,
                      "preference": rng.choice(["A", "B", "tie"]), "rewrite": "Fixed.", "justification": "Rubric."}
            t0 = time.perf_counter()
            review.submit(sessions, settings, key, task["task_id"], answer)
            mine_s.append(time.perf_counter() - t0)
        with lock:
            claims.extend(mine_c)
            submits.extend(mine_s)
            cpu.extend(mine_cpu)

    wall = run_threads(worker, len(keys), lambda i: (keys[i], i))
    return claims, submits, cpu, wall


def _child(url: str, settings: Settings, keys: list, think_ms: float, out) -> None:
    """One API-like worker process: its own engine and its share of the reviewers as threads."""
    engine = db.make_engine(url)
    try:
        out.put(ours_phase(db.session_factory(engine), settings, keys, think_ms)[:3])
    finally:
        engine.dispose()


def ours_phase_processes(url: str, settings: Settings, keys: list[t.ApiKey], think_ms: float,
                         processes: int) -> tuple[list[float], list[float], list[float], float]:
    """The same reviewers spread over worker processes, as `serve --workers N` spreads requests."""
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    out = ctx.Queue()
    procs = [ctx.Process(target=_child, args=(url, settings, keys[i::processes], think_ms, out))
             for i in range(processes)]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    parts = [out.get() for _ in procs]
    for p in procs:
        p.join()
    wall = time.perf_counter() - t0
    return ([x for c, _, _ in parts for x in c], [x for _, s_, _ in parts for x in s_],
            [x for _, _, u in parts for x in u], wall)


def reset(url: str) -> None:
    """Every slot open again and no review recorded, for the next pace."""
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        conn.execute("TRUNCATE review_submission, review_claim, review_session, agreement_report")
        conn.execute("UPDATE review_task SET status = 'open', lease_expires_at = NULL, reviewer_id = NULL, "
                     "ab_order = NULL")
        conn.execute("UPDATE badcase SET status = 'queued', submissions_count = 0, resolution = NULL, "
                     "chosen_response = NULL, admitted = false, resolved_at = NULL")
        conn.execute("UPDATE rubric_version SET status = 'active'")
        conn.execute("ANALYZE")


def run_pace(url: str, engine, settings: Settings, keys: list[t.ApiKey], think_ms: float,
             processes: int = 1) -> dict:
    """Raw tool, then ours, on the same table at one pace."""
    reset(url)
    raw_stmt, raw_txn = raw_phase(url, len(keys), think_ms)
    reset(url)
    if processes > 1:
        engine.dispose()  # no pooled connection crosses the fork
        claims, submits, cpu, wall = ours_phase_processes(url, settings, keys, think_ms, processes)
    else:
        claims, submits, cpu, wall = ours_phase(db.session_factory(engine), settings, keys, think_ms)
    while review.refreshes_running():  # the last agreement refreshes finish before the next phase
        time.sleep(0.05)
    return {"think_ms": think_ms, "processes": processes, "reviews_per_s": round(len(submits) / wall, 1), "claim_next": pct(claims),
            "claim_next_client_cpu": pct(cpu),
            "submit": pct(submits), "raw_select_for_update_skip_locked": pct(raw_stmt),
            "raw_claim_transaction": pct(raw_txn)}


def show(name: str, r: dict) -> None:
    """One pace as a small table."""
    rows = [("claim-next (service: lease, claim, session, blind view, commit)", r["claim_next"]),
            ("  of which CPU time in this process (SQLAlchemy, psycopg, view)", r["claim_next_client_cpu"]),
            ("submit (gate, agreement window)", r["submit"]),
            ("raw SELECT … FOR UPDATE SKIP LOCKED LIMIT 1 (statement)", r["raw_select_for_update_skip_locked"]),
            ("raw claim transaction (select, update, commit)", r["raw_claim_transaction"])]
    print(f"{name}: think {r['think_ms']:g} ms, {r['processes']} process(es), {r['reviews_per_s']} reviews/s")
    for label, p in rows:
        print(f"  {label:<66} p50 {p['p50_ms']:8.2f} ms   p99 {p['p99_ms']:8.2f} ms   (n={p['n']})")


def main() -> None:
    """Seed once, run both paces (raw tool and ours on the same table), print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--reviewers", type=int, default=20)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--think-ms", type=float, default=500.0)
    parser.add_argument("--processes", type=int, default=1,
                        help="worker processes the reviewers are spread over (as `serve --workers N`)")
    parser.add_argument("--default-gc", action="store_true",
                        help="keep CPython's default collector settings (serve freezes the heap after start-up)")
    args = parser.parse_args()
    with scratch_postgres() as url:
        settings = Settings(database_url=url, gold_share=0.0)
        engine = db.make_engine(url)
        sessions = db.session_factory(engine)
        keys = seed(sessions, args.items, args.reviewers, args.k)
        if not args.default_gc:
            runtime.tune_gc(settings)  # as `serve` does once the app is built
        paced = run_pace(url, engine, settings, keys, args.think_ms, args.processes)
        burst = run_pace(url, engine, settings, keys, 0.0, args.processes)
        engine.dispose()
    out = {"bench": "review.claim_next", "database": "postgresql", "reviewers": args.reviewers, "items": args.items,
           "k": args.k, "paced": paced, "burst": burst, "target_claim_p99_ms": 50,
           "claim_p99_within_target": paced["claim_next"]["p99_ms"] < 50}
    show("paced", paced)
    show("burst", burst)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
