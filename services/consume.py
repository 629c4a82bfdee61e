"""The consumer worker: wires the Kafka loop of `ingestion` to the ingest pipeline, metrics and signals."""

import logging
import signal

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError
from prometheus_client import start_http_server

from ingestion.consumer import BatchConsumer, ConsumerConfig
from services import db, pipeline, runtime
from services.settings import Settings

log = logging.getLogger("ff.consume")


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


def run(settings: Settings, metrics_port: int | None = None) -> None:
    """Consume until SIGTERM/SIGINT: finish the batch, commit, leave the group."""
    if not settings.kafka_bootstrap_servers:
        raise SystemExit("FF_KAFKA_BOOTSTRAP_SERVERS is not set (`feedback-factory up` starts an embedded broker)")
    ensure_topics(settings)
    port = settings.kafka_metrics_port if metrics_port is None else metrics_port
    if port:
        start_http_server(port, addr="127.0.0.1" if settings.host == "127.0.0.1" else "0.0.0.0")
    engine = db.make_engine(settings.database_url)
    loop = BatchConsumer(config(settings), db.session_factory(engine), pipeline.ingest, prepare=pipeline.prepare)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: loop.stop())
    runtime.tune_gc(settings)
    try:
        loop.run()
    finally:
        engine.dispose()
