"""Kafka ingest throughput, end to end (Kafka → validate → descriptors → store in PostgreSQL, idempotent → commit),
printed beside the raw kafka-python consume rate (json decode only) and the raw idempotent PostgreSQL insert rate
of the same rows, in the same run. Also the same pipeline without descriptors (their share of the time), and
the bare validate → store path (no descriptors, no flagging): the floor of any pipeline on this consumer.

The headline figure is the shipped command, `feedback-factory consume`, as a subprocess with its default batch
size and number of members (CPUs + 1, 3 on this 2-core machine; `--processes N` overrides): one process validates
with one core's worth of Python (the GIL), so a group of members is how the consumer scales. Its rate is taken
over the steady part of the run (rows 10 % → 90 % of the events, as stored and committed in PostgreSQL), and
also from the first row to the last (which includes the group's join). The raw consume rate of each run is the
mean of one measurement just before and one just after the `consume` run (the machine's speed drifts between
minutes). The in-process single-member loop is measured from its first record fetched to its last offset handed
to commit. Where the time goes: the CPU each kind of process used per stored event over the steady part (the
consumer's processes, PostgreSQL, Tansu, the machine as a whole; from /proc), beside the raw consume's time per
event on its one core.

    .venv/bin/python bench/kafka_ingest.py [--events 100000] [--runs 3] [--processes N] [--profile]
"""

import argparse
import os
import cProfile
import io
import json
import pstats
import time
import uuid

from _common import REPO, cpu_seconds, median, scratch_postgres, truncate
from support.events import interaction


def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    from kafka import KafkaProducer

    p = KafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=10, batch_size=256 * 1024, enable_idempotence=False)
    for i, v in enumerate(values):
        p.send(topic, key=str(i % 1000).encode(), value=v)
    p.flush()
    p.close()


def raw_consume(bootstrap: str, topic: str, n: int) -> float:
    from kafka import KafkaConsumer, TopicPartition

    c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                      fetch_max_bytes=16 * 1024 * 1024, max_partition_fetch_bytes=4 * 1024 * 1024, max_poll_records=500)
    tps = [TopicPartition(topic, p) for p in c.partitions_for_topic(topic)]
    c.assign(tps)
    c.seek_to_beginning(*tps)
    got, t0 = 0, None
    while got < n:
        for recs in c.poll(timeout_ms=1000).values():
            t0 = t0 or time.perf_counter()
            for r in recs:
                json.loads(r.value)
            got += len(recs)
    dt = time.perf_counter() - t0
    c.close()
    return n / dt


def raw_insert(url: str, rows: list[dict]) -> float:
    from ingestion import store
    from services import db

    truncate(url, "interaction")
    engine = db.make_engine(url)
    sessions = db.session_factory(engine)
    t0 = time.perf_counter()
    for i in range(0, len(rows), 500):
        with db.unit_of_work(sessions) as s:
            store._copy_insert(s, store.t.Interaction.__table__, rows[i:i + 500])
    dt = time.perf_counter() - t0
    engine.dispose()
    return len(rows) / dt


def _store_only(session, kind, items, prepared=None):
    from ingestion import store

    return store.store_interactions(session, items, {}, deduped=prepared["deduped"] if prepared else None)


def _dedupe_only(kind, items):
    from ingestion import store

    return {"columns": {}, "deduped": store.dedupe(items)} if items else None


def end_to_end(bootstrap: str, topic: str, url: str, n: int, descriptors: bool, profile: bool = False,
               store_only: bool = False):
    """The consumer's own loop (pipelined: the next batch is validated while the last one is stored) until n records
    are stored and their offsets committed; events/s from the first record fetched. `store_only`: the pipeline cut
    down to validate → store (no descriptors, no flagging)."""
    import threading

    from ingestion.consumer import BatchConsumer, ConsumerConfig
    from services import db, flagging, pipeline

    truncate(url, "badcase_reason", "badcase", "interaction", "partition_offset")
    original = flagging.descriptor_columns
    if not descriptors:
        flagging.descriptor_columns = lambda items: {}
    run_ingest, run_prepare = (_store_only, _dedupe_only) if store_only else (pipeline.ingest, pipeline.prepare)
    engine = db.make_engine(url)
    cfg = ConsumerConfig(bootstrap_servers=bootstrap, topics={topic: "interaction"}, group_id=f"bench-{uuid.uuid4().hex[:6]}",
                         max_poll_records=1000, max_poll_interval_ms=30000, poll_timeout_ms=100)
    wprof = cProfile.Profile() if profile else None

    def ingest(*args, **kw):  # runs in the consumer's writer thread: its own profiler
        if wprof is None:
            return run_ingest(*args, **kw)
        wprof.enable()
        try:
            return run_ingest(*args, **kw)
        finally:
            wprof.disable()

    loop = BatchConsumer(cfg, db.session_factory(engine), ingest, prepare=run_prepare)
    # Join the group and fetch before the clock starts (the raw consume figure also starts at its first record).
    first = {}
    while not first:
        first = loop.consumer.poll(timeout_ms=1000)
    for tp, recs in first.items():
        loop.consumer.seek(tp, recs[0].offset)

    def watch():  # stop() is a flag: safe from another thread; the consumer itself stays in the loop's thread
        while loop.records_done < n:
            time.sleep(0.005)
        loop.stop()

    prof = cProfile.Profile() if profile else None
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    t0 = time.perf_counter()
    try:
        if prof:
            prof.enable()
        loop.run()
        dt = time.perf_counter() - t0
    finally:
        if prof:
            prof.disable()
        flagging.descriptor_columns = original
        engine.dispose()
    return n / dt, (prof, wprof)


def supervised(bootstrap: str, topic: str, url: str, n: int, processes: int,
               **env_over: str) -> tuple[float, float, dict[str, float]]:
    """`feedback-factory consume` with `processes` members until all n rows are stored; (steady 10 %→90 % events/s,
    first-row-to-last events/s, CPU µs per event over the steady part by process kind, `_common.cpu_seconds`).
    Offsets are checked committed afterwards (untimed)."""
    import subprocess
    import sys

    import psycopg

    truncate(url, "badcase_reason", "badcase", "interaction", "partition_offset")
    group = f"bench-{uuid.uuid4().hex[:6]}"
    env = {**os.environ, "FF_DATABASE_URL": url, "FF_KAFKA_BOOTSTRAP_SERVERS": bootstrap,
           "FF_KAFKA_INTERACTIONS_TOPIC": topic, "FF_KAFKA_FEEDBACK_TOPIC": f"{topic}.feedback",
           "FF_KAFKA_DLQ_TOPIC": f"{topic}.dlq", "FF_KAFKA_GROUP_ID": group, "FF_KAFKA_METRICS_PORT": "0",
           "FF_CONSUMER_PROCESSES": str(processes), "FF_LOG_LEVEL": "WARNING"}
    env.pop("FF_KAFKA_MAX_POLL_RECORDS", None)  # the shipped batch size, unless `env_over` says otherwise
    env.update(env_over)
    proc = subprocess.Popen([sys.executable, "-m", "services.cli", "consume"], env=env, cwd=str(REPO))
    marks: dict[str, float] = {}
    cpu: dict[str, tuple[int, dict[str, float]]] = {}
    try:
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as conn:
            while True:  # max(id) walks the primary key; count(*) would scan the table each time
                top = conn.execute("SELECT coalesce(max(id), 0) FROM interaction").fetchone()[0]
                now = time.perf_counter()
                for name, share in (("first", 1 / n), ("p10", 0.1), ("p90", 0.9)):
                    if top >= share * n and name not in marks:
                        marks[name] = now
                        cpu[name] = (top, cpu_seconds())
                if top >= n and conn.execute("SELECT count(*) FROM interaction").fetchone()[0] == n:
                    marks["last"] = now
                    break
                if proc.poll() is not None:
                    raise RuntimeError(f"consume exited {proc.returncode}")
                time.sleep(0.02)
        from kafka import KafkaConsumer, TopicPartition

        # the topic holds exactly n records from offset 0 (end_offsets() is wrong on Tansu): committed offsets sum to n
        c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
        tps = [TopicPartition(topic, p) for p in c.partitions_for_topic(topic)]
        deadline = time.monotonic() + 30
        while (done := sum(c.committed(tp) or 0 for tp in tps)) < n and time.monotonic() < deadline:
            time.sleep(0.2)
        c.close()
        if done != n:
            raise RuntimeError(f"committed offsets sum to {done}, not {n}")
    finally:
        proc.terminate()
        proc.wait(60)
    (r0, c0), (r1, c1) = cpu["p10"], cpu["p90"]
    per_event = {k: round((c1[k] - c0[k]) / (r1 - r0) * 1e6, 1) for k in c1}
    return 0.8 * n / (marks["p90"] - marks["p10"]), (n - 1) / (marks["last"] - marks["first"]), per_event


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--processes", type=int, default=0, help="members of the `consume` run (0: its default)")
    ap.add_argument("--profile", action="store_true")
    a = ap.parse_args()
    from services.consume import processes
    from services.settings import Settings

    a.processes = processes(Settings(consumer_processes=a.processes, kafka_partitions=6))
    from kafka.admin import KafkaAdminClient, NewTopic

    from ingestion import decode, store
    from services.broker import start_embedded

    events = [interaction(i) for i in range(a.events)]
    values = [json.dumps(e).encode() for e in events]
    size = sum(map(len, values)) / len(values)
    items = [decode.decode_message("interaction", v) for v in values]
    from datetime import datetime, timezone
    now = datetime.now(timezone.utc)
    rows = [store.interaction_row(it, store.payload_hash(it), now) for it in items]
    broker = start_embedded()
    try:
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
        topic = "bench.interactions"
        admin.create_topics([NewTopic(topic, 6, 1)])
        admin.close()
        t0 = time.perf_counter()
        produce(broker.bootstrap, topic, values)
        produce_rate = a.events / (time.perf_counter() - t0)
        with scratch_postgres() as url:
            raw_c, raw_i, e2e, e2e_nodesc, bare, sup, sup_all, cpus = [], [], [], [], [], [], [], []
            for run in range(a.runs):
                before = raw_consume(broker.bootstrap, topic, a.events)  # raw consume on both sides of `consume`
                steady, whole, cpu = supervised(broker.bootstrap, topic, url, a.events, a.processes)
                cpus.append(cpu)
                raw_c.append((before + raw_consume(broker.bootstrap, topic, a.events)) / 2)
                sup.append(steady)
                sup_all.append(whole)
                raw_i.append(raw_insert(url, rows))
                e2e.append(end_to_end(broker.bootstrap, topic, url, a.events, True)[0])
                e2e_nodesc.append(end_to_end(broker.bootstrap, topic, url, a.events, False)[0])
                bare.append(end_to_end(broker.bootstrap, topic, url, a.events, False, store_only=True)[0])
                print(f"run {run}: consume ({a.processes} processes) {sup[-1]:,.0f}/s steady, {sup_all[-1]:,.0f}/s "
                      f"first row to last | one process: end-to-end {e2e[-1]:,.0f}/s (without descriptors {e2e_nodesc[-1]:,.0f}/s; "
                      f"validate → store only {bare[-1]:,.0f}/s) | "
                      f"raw consume+json {raw_c[-1]:,.0f}/s | raw idempotent COPY insert {raw_i[-1]:,.0f} rows/s", flush=True)
                print(f"       CPU µs per event (consume steady part): " + ", ".join(f"{k} {v:.0f}" for k, v in cpu.items())
                      + f" | raw consume: {1e6 / raw_c[-1]:.0f} µs per event on one core", flush=True)
            if a.profile:
                _, profs = end_to_end(broker.bootstrap, topic, url, a.events, True, profile=True)
                for name, prof in zip(("poll/decode/prepare thread", "writer thread (store, flag, commit)"), profs):
                    s = io.StringIO()
                    pstats.Stats(prof, stream=s).sort_stats(os.environ.get("SORT", "tottime")).print_stats(40)
                    print(f"--- {name}\n{s.getvalue()}")
    finally:
        broker.stop()
    out = {"bench": "kafka_ingest", "events": a.events, "event_bytes": round(size), "produce_per_s": round(produce_rate),
           "processes": a.processes, "consume_per_s": round(median(sup)),
           "consume_first_to_last_per_s": round(median(sup_all)),
           "ratio_to_raw_consume": round(median([x / y for x, y in zip(sup, raw_c)]), 3),
           "ratio_first_to_last": round(median([x / y for x, y in zip(sup_all, raw_c)]), 3),
           "per_run_ratios": [round(x / y, 3) for x, y in zip(sup, raw_c)],
           "one_process_per_s": round(median(e2e)), "end_to_end_without_descriptors_per_s": round(median(e2e_nodesc)),
           "validate_store_only_per_s": round(median(bare)),
           "raw_consume_json_per_s": round(median(raw_c)), "raw_pg_idempotent_insert_per_s": round(median(raw_i)),
           "one_process_ratio": round(median(e2e) / median(raw_c), 3),
           "validate_store_only_ratio": round(median(bare) / median(raw_c), 3),
           "descriptor_overhead": round(median(e2e_nodesc) / median(e2e) - 1, 3), "target_ratio": 0.33,
           "cpu_us_per_event": {k: median([c[k] for c in cpus]) for k in cpus[0]}}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
