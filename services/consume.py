"""The consumer worker: wires the Kafka loop of `ingestion` to the ingest pipeline, metrics and signals.

One consumer process validates and stores with one core's worth of Python (the GIL), so `consume` runs
`FF_CONSUMER_PROCESSES` group members (0: one more than the CPUs the process may use, cgroup quota included, at
most the partition count; each member waits on PostgreSQL for part of every batch, and the extra member keeps
the cores busy meanwhile: on 2 cores, 2 members stored 7.1-8.8k events/s, 3 members 8.8-11k,
bench/kafka_ingest.py). With more than one, this process is their supervisor: it spawns them, serves their summed
metrics (prometheus_client's multiprocess mode) on the one metrics port, restarts a member that dies, and
forwards SIGTERM so each member finishes its batch, commits and leaves the group. Members die with the
supervisor (PR_SET_PDEATHSIG): a SIGKILLed consumer takes its members with it, as one process would.
"""

import ctypes
import logging
import multiprocessing
import os
import shutil
import signal
import tempfile
import time

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError
from prometheus_client import start_http_server

from ingestion.consumer import BatchConsumer, ConsumerConfig
from services import db, runtime
from services.settings import Settings, get_settings

log = logging.getLogger("ff.consume")

_PR_SET_PDEATHSIG = 1
RESTART_BACKOFF_S = (1.0, 30.0)  # first and longest wait before restarting a member that died
HEALTHY_S = 60.0  # a member that ran this long before dying is restarted after the first wait again


def config(settings: Settings, **over) -> ConsumerConfig:
    """The consumer configuration from the FF_* settings."""
    cfg = ConsumerConfig(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        topics={settings.kafka_interactions_topic: "interaction", settings.kafka_feedback_topic: "feedback"},
        dlq_topic=settings.kafka_dlq_topic, group_id=settings.kafka_group_id,
        max_poll_records=settings.kafka_max_poll_records, session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
        max_poll_interval_ms=settings.kafka_max_poll_interval_ms,
    )
    for k, v in over.items():
        setattr(cfg, k, v)
    return cfg


def ensure_topics(settings: Settings) -> None:
    """Create the ingest and dead-letter topics when they do not exist yet."""
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers, client_id="feedback-factory-admin")
    try:
        existing = set(admin.list_topics())
        wanted = [settings.kafka_interactions_topic, settings.kafka_feedback_topic, settings.kafka_dlq_topic]
        new = [NewTopic(name, settings.kafka_partitions, 1) for name in wanted if name not in existing]
        if new:
            try:
                admin.create_topics(new)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()


def available_cpus(cpu_max: str = "/sys/fs/cgroup/cpu.max") -> int:
    """CPUs this process may use: its affinity, capped by a cgroup v2 CPU quota (a container's CPU limit)."""
    n = len(os.sched_getaffinity(0))
    try:
        quota, period = open(cpu_max).read().split()[:2]
        if quota != "max":
            n = min(n, max(1, round(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return n


def processes(settings: Settings) -> int:
    """How many group members `consume` runs: the setting, or available CPUs + 1; never more than partitions."""
    n = settings.consumer_processes or available_cpus() + 1
    return max(1, min(n, settings.kafka_partitions))


def _serve_metrics(settings: Settings, port: int | None, registry=None) -> None:
    port = settings.kafka_metrics_port if port is None else port
    if port:
        kw = {"registry": registry} if registry is not None else {}
        start_http_server(port, addr="127.0.0.1" if settings.host == "127.0.0.1" else "0.0.0.0", **kw)


def run(settings: Settings, metrics_port: int | None = None) -> None:
    """Consume until SIGTERM/SIGINT: finish the batch, commit, leave the group (each member, when several)."""
    if not settings.kafka_bootstrap_servers:
        raise SystemExit("FF_KAFKA_BOOTSTRAP_SERVERS is not set (`feedback-factory up` starts an embedded broker)")
    ensure_topics(settings)
    n = processes(settings)
    if n > 1:
        return supervise(settings, n, metrics_port)
    _serve_metrics(settings, metrics_port)
    consume_loop(settings)


def consume_loop(settings: Settings, client_id: str | None = None) -> None:
    """One group member in this process until SIGTERM/SIGINT."""
    from badcase import descriptors  # noqa: F401  (imported before the heap is frozen: numpy, the lexicons)
    from services import pipeline  # descriptors, rules, numpy: members need them, the supervisor does not

    engine = db.make_engine(settings.database_url)
    cfg = config(settings, **({"client_id": client_id} if client_id else {}))
    loop = BatchConsumer(cfg, db.session_factory(engine), pipeline.ingest, prepare=pipeline.prepare)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: loop.stop())
    runtime.tune_gc(settings, settings.consumer_gc_gen0_threshold)
    try:
        loop.run()
    finally:
        engine.dispose()


def _member(index: int, supervisor_pid: int) -> None:
    """Entry point of a member process (spawned): die with the supervisor, then consume."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the member outlives a SIGKILLed supervisor
        pass
    if os.getppid() != supervisor_pid:  # the supervisor died before prctl took effect
        os._exit(1)
    settings = get_settings()
    runtime.setup_logging(settings)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the supervisor decides
    consume_loop(settings, client_id=f"feedback-factory-consumer-{index}")


def supervise(settings: Settings, n: int, metrics_port: int | None = None) -> None:
    """Run `n` member processes until SIGTERM/SIGINT, restarting any that dies; serve their summed metrics."""
    from prometheus_client import CollectorRegistry, multiprocess

    metrics_dir = tempfile.mkdtemp(prefix="ff-consumer-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir  # read by the members' prometheus_client at import
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    _serve_metrics(settings, metrics_port, registry)
    ctx = multiprocessing.get_context("spawn")
    stopping = {"now": False}

    def stop(*_):
        stopping["now"] = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
    members: dict[int, multiprocessing.Process] = {}
    backoff = {i: RESTART_BACKOFF_S[0] for i in range(n)}
    due = {i: 0.0 for i in range(n)}
    started: dict[int, float] = {}
    log.info("consume.supervisor.started members=%d", n)
    try:
        while not stopping["now"]:
            for i in range(n):
                p = members.get(i)
                if p is not None and not p.is_alive():
                    multiprocess.mark_process_dead(p.pid)
                    if time.monotonic() - started[i] > HEALTHY_S:
                        backoff[i] = RESTART_BACKOFF_S[0]
                    log.error("consume.member.died index=%d exitcode=%s restart_in=%.0fs", i, p.exitcode, backoff[i])
                    due[i] = time.monotonic() + backoff[i]
                    backoff[i] = min(backoff[i] * 2, RESTART_BACKOFF_S[1])
                    members.pop(i)
                if i not in members and time.monotonic() >= due[i]:
                    members[i] = ctx.Process(target=_member, args=(i, os.getpid()), name=f"ff-consumer-{i}")
                    members[i].start()
                    started[i] = time.monotonic()
            time.sleep(0.2)
    finally:
        for p in members.values():
            if p.is_alive():
                p.terminate()  # SIGTERM: finish the batch, commit, leave the group
        for p in members.values():
            p.join(max(settings.kafka_session_timeout_ms / 1000, 30))
            if p.is_alive():
                p.kill()
        shutil.rmtree(metrics_dir, ignore_errors=True)
        log.info("consume.supervisor.stopped")
