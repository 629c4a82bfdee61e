"""Kafka fixtures: a real Tansu broker on a free loopback port, topics per test, consumer processes."""

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from sqlalchemy import create_engine, func, select

from schemas import tables as t
from services.broker import start_embedded

PARTITIONS = 6


@pytest.fixture(scope="session")
def broker(tmp_path_factory):
    b = start_embedded(tmp_path_factory.mktemp("tansu"))
    yield b.bootstrap
    b.stop()


class Stream:
    """Unique topics and group for one test, and helpers to produce and to run consumer processes."""

    def __init__(self, bootstrap: str, database_url: str, tmp_path):
        self.bootstrap, self.database_url, self.tmp = bootstrap, database_url, tmp_path
        tag = uuid.uuid4().hex[:8]
        self.topics = {"interaction": f"ff.interactions.{tag}", "feedback": f"ff.feedback.{tag}", "dlq": f"ff.dlq.{tag}"}
        self.group = f"ff-test-{tag}"
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        admin.create_topics([NewTopic(n, PARTITIONS, 1) for n in self.topics.values()])
        admin.close()
        self.highwater: dict[int, int] = {}
        self.procs: list[subprocess.Popen] = []
        self.engine = create_engine(database_url)

    def env(self, **over) -> dict:
        env = dict(os.environ)
        env.update({
            "FF_DATABASE_URL": self.database_url, "FF_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "FF_KAFKA_INTERACTIONS_TOPIC": self.topics["interaction"], "FF_KAFKA_FEEDBACK_TOPIC": self.topics["feedback"],
            "FF_KAFKA_DLQ_TOPIC": self.topics["dlq"], "FF_KAFKA_GROUP_ID": self.group, "FF_KAFKA_METRICS_PORT": "0",
            "FF_KAFKA_PARTITIONS": str(PARTITIONS), "FF_LOG_LEVEL": "INFO", "FF_CONSUMER_PROCESSES": "1",
        })
        env.update({k: str(v) for k, v in over.items()})
        return env

    def produce(self, values: list[bytes], kind: str = "interaction") -> None:
        prod = KafkaProducer(bootstrap_servers=self.bootstrap, acks="all", linger_ms=10, batch_size=256 * 1024,
                             enable_idempotence=False)
        futures = [prod.send(self.topics[kind], key=str(i % 97).encode(), value=v) for i, v in enumerate(values)]
        prod.flush()
        for f in futures:
            md = f.get(timeout=30)
            self.highwater[md.partition] = max(self.highwater.get(md.partition, 0), md.offset + 1)
        prod.close()

    def start_consumer(self, name: str = "c", **env) -> subprocess.Popen:
        log = open(self.tmp / f"consumer-{name}-{len(self.procs)}.log", "wb")
        p = subprocess.Popen([sys.executable, "-m", "services.cli", "consume"], env=self.env(**env),
                             stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(p)
        return p

    def count(self, table=t.Interaction) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(table)).scalar_one()

    def wait_for(self, predicate, timeout: float = 120, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            for p in self.procs:
                assert p.poll() is None or p.returncode in (0, -9, -15), f"consumer exited {p.returncode}: {self.logs()}"
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}; logs:\n{self.logs()[-3000:]}")

    def committed(self) -> dict[int, int | None]:
        c = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=self.group, enable_auto_commit=False)
        out = {p: c.committed(TopicPartition(self.topics["interaction"], p)) for p in range(PARTITIONS)}
        c.close()
        return out

    def all_committed(self) -> bool:
        committed = self.committed()
        return all(committed.get(p) == hw for p, hw in self.highwater.items())

    def logs(self) -> str:
        return "\n".join(f.read_text(errors="replace") for f in sorted(self.tmp.glob("consumer-*.log")))

    def stop_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        self.engine.dispose()


@pytest.fixture
def stream(broker, pg_url, tmp_path):
    s = Stream(broker, pg_url, tmp_path)
    yield s
    s.stop_all()


def encode(events: list[dict]) -> list[bytes]:
    return [json.dumps(e).encode() for e in events]
