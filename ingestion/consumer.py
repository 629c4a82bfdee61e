"""The Kafka consumer loop: poll a batch, validate, store it in one transaction, then commit the offsets.

At-least-once from Kafka, idempotent in the database: offsets are committed only after the rows (and the dead
letters, and the per-partition progress) are committed, so a crash re-delivers the uncommitted batch and the
event-id uniqueness absorbs it. While the database is down the loop pauses its partitions, keeps polling (so it
stays in the group), and retries the same batch with backoff.

Pipelined, one batch deep: a writer thread runs batch N's database transaction while this thread polls,
validates and prepares batch N+1 (the CPU work that needs no database). Only this thread touches the Kafka
consumer (it is not thread safe): it commits batch N's offsets once the writer reports N committed.
"""

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ingestion import deadletter, decode, offsets

log = logging.getLogger("ff.ingestion.consumer")

RECORDS = Counter("ff_consumer_records_total", "Records consumed", ["kind", "outcome"])
BATCHES = Counter("ff_consumer_batches_total", "Batches stored and committed")
BATCH_SECONDS = Histogram("ff_consumer_batch_seconds", "Time to store and commit one batch")
DB_RETRIES = Counter("ff_consumer_db_retries_total", "Batch store attempts that failed on the database")
LAG = Gauge("ff_consumer_lag", "High-water mark minus the next offset to store", ["topic", "partition"],
            multiprocess_mode="mostrecent")  # several member processes: the latest report of each partition

# Database down or connection lost; IntegrityError only from a progress row raced by a rebalanced peer.
RETRYABLE = (OperationalError, InterfaceError, IntegrityError)

IngestFn = Callable[..., object]  # (session, kind, items[, prepared]) -> an ingestion.store.StoreOutcome
PrepareFn = Callable[[str, list], object]  # (kind, items) -> what the ingest function takes as `prepared`


@dataclass
class ConsumerConfig:
    """Where to consume from and the group settings (short timeouts: Tansu joins promptly only with them)."""

    bootstrap_servers: str
    topics: dict[str, str]  # topic -> kind ("interaction" | "feedback")
    dlq_topic: str = "ff.dlq"
    group_id: str = "feedback-factory"
    max_poll_records: int = 1000
    session_timeout_ms: int = 6000
    heartbeat_interval_ms: int = 1000
    max_poll_interval_ms: int = 5000
    poll_timeout_ms: int = 500
    max_backoff_s: float = 5.0
    client_id: str = "feedback-factory-consumer"
    extra: dict = field(default_factory=dict)


def make_consumer(cfg: ConsumerConfig) -> KafkaConsumer:
    """A kafka-python group consumer with manual commits."""
    return KafkaConsumer(
        *cfg.topics, bootstrap_servers=cfg.bootstrap_servers, group_id=cfg.group_id, client_id=cfg.client_id,
        enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=cfg.max_poll_records,
        session_timeout_ms=cfg.session_timeout_ms, heartbeat_interval_ms=cfg.heartbeat_interval_ms,
        max_poll_interval_ms=cfg.max_poll_interval_ms, fetch_max_bytes=16 * 1024 * 1024,
        max_partition_fetch_bytes=4 * 1024 * 1024, **cfg.extra,
    )


def make_producer(bootstrap_servers: str) -> KafkaProducer:
    """A producer for dead letters; not idempotent (an idempotent one dies for good after a broker restart)."""
    return KafkaProducer(bootstrap_servers=bootstrap_servers, acks="all", linger_ms=5, enable_idempotence=False)


class _Job:
    """One polled batch on its way to the database: decoded, prepared, then stored by the writer thread."""

    def __init__(self, batch: dict, by_kind: dict, prepared: dict, records_by_event: dict, poison: list,
                 highwater: dict):
        self.batch, self.by_kind, self.prepared = batch, by_kind, prepared
        self.records_by_event, self.poison, self.highwater = records_by_event, poison, highwater
        self.t0 = time.perf_counter()
        self.done = threading.Event()
        self.new_dead: list[dict] = []
        self.error: BaseException | None = None


class BatchConsumer:
    """Runs the poll → validate → store → commit loop until `stop()` is called."""

    def __init__(self, cfg: ConsumerConfig, sessions: sessionmaker, ingest: IngestFn,
                 consumer: KafkaConsumer | None = None, prepare: PrepareFn | None = None):
        self.cfg, self.sessions, self.ingest, self.prepare = cfg, sessions, ingest, prepare
        self.consumer = consumer or make_consumer(cfg)
        self.producer: KafkaProducer | None = None
        self._running = True
        self._last_check = 0.0
        self._pending: dict[TopicPartition, OffsetAndMetadata] = {}
        self.records_done = 0  # records whose batch is stored and whose offsets were handed to commit

    def stop(self) -> None:
        """Ask the loop to finish its batch, commit and leave the group."""
        self._running = False

    def run(self) -> None:
        """Consume until stopped (pipelined, see the module docstring); then close the consumer (leaving the group)."""
        log.info("ingestion.consumer.started topics=%s group=%s", list(self.cfg.topics), self.cfg.group_id)
        inflight: _Job | None = None
        try:
            while self._running:
                batch = self.consumer.poll(timeout_ms=self.cfg.poll_timeout_ms if inflight is None else 0)
                if batch:
                    job = self._decode(batch)
                    if inflight is not None:
                        self._finish(inflight)
                    inflight = self._start(job)
                elif inflight is not None and inflight.done.wait(0.05):
                    self._finish(inflight)
                    inflight = None
                elif inflight is None:
                    self._commit_pending()
                    if time.monotonic() - self._last_check > 5:
                        self._check_offsets()
        finally:
            try:
                if inflight is not None:
                    self._finish(inflight)
                self._commit_pending()
            finally:
                self.consumer.close(autocommit=False)
            if self.producer is not None:
                self.producer.close(timeout=5)
            log.info("ingestion.consumer.stopped")

    def process(self, batch: dict[TopicPartition, list]) -> None:
        """Store one polled batch (retrying while the database is down), dead-letter its poison, commit offsets."""
        self._finish(self._start(self._decode(batch), thread=False))

    def _decode(self, batch: dict[TopicPartition, list]) -> _Job:
        """Validate every record (poison becomes a dead letter) and prepare each kind's items: no database."""
        by_kind: dict[str, list] = defaultdict(list)
        records_by_event: dict[tuple[str, str], object] = {}
        poison: list[dict] = []
        for tp, records in batch.items():
            kind = self.cfg.topics[tp.topic]
            for rec in records:
                item = decode.decode_message(kind, rec.value)
                if isinstance(item, decode.DecodeError):
                    poison.append(deadletter.row(reason=item.reason, error=item.error, topic=tp.topic,
                                                 partition=tp.partition, offset=rec.offset, key=rec.key, payload=rec.value))
                    RECORDS.labels(kind, "dead_letter").inc()
                else:
                    by_kind[kind].append(item)
                    records_by_event[(kind, item.event_id)] = rec
        prepared = {kind: self.prepare(kind, items) for kind, items in by_kind.items()} if self.prepare else {}
        return _Job(batch, by_kind, prepared, records_by_event, poison,
                    {tp: self.consumer.highwater(tp) for tp in batch})

    def _start(self, job: _Job, thread: bool = True) -> _Job:
        """Store the job's batch: in a writer thread (the loop), or here (`process`)."""
        def work():
            try:
                job.new_dead = self._store_with_retry(job)
            except BaseException as exc:  # re-raised by _finish, in the consumer's thread
                job.error = exc
            finally:
                job.done.set()

        if thread:
            threading.Thread(target=work, name="ff-consumer-writer", daemon=True).start()
        else:
            work()
        return job

    def _finish(self, job: _Job) -> None:
        """Wait for the job's transaction (polling paused partitions meanwhile), then commit its offsets."""
        paused = False
        while not job.done.wait(0.2):
            # A long wait (database down): keep polling so this member stays in the group, fetching nothing.
            self.consumer.pause(*self.consumer.assignment())
            paused = True
            self.consumer.poll(timeout_ms=0)
        if paused:
            self.consumer.resume(*self.consumer.paused())
        if job.error is not None:
            raise job.error
        self._publish_dead_letters(job.new_dead)
        batch = job.batch
        self._pending.update({tp: OffsetAndMetadata(recs[-1].offset + 1, "", -1) for tp, recs in batch.items()})
        self._commit_pending()
        self.records_done += sum(len(recs) for recs in batch.values())
        for tp, recs in batch.items():
            hw = self.consumer.highwater(tp)
            if hw is not None:
                LAG.labels(tp.topic, tp.partition).set(max(hw - recs[-1].offset - 1, 0))
        BATCHES.inc()
        BATCH_SECONDS.observe(time.perf_counter() - job.t0)

    def _commit_pending(self) -> None:
        """Commit stored offsets; after a failure (a rebalance) retry later for the partitions still ours."""
        if not self._pending:
            return
        assigned = self.consumer.assignment()
        pending = {tp: om for tp, om in self._pending.items() if tp in assigned}
        try:
            if pending:
                self.consumer.commit(pending)
            self._pending.clear()
        except Exception as exc:  # partitions that moved are re-read by their new owner, idempotently
            self._pending = pending
            log.warning("ingestion.consumer.commit_failed error=%r (will retry)", exc)

    def _store(self, job: _Job) -> list[dict]:
        with self.sessions() as session:
            try:
                dead, counts = list(job.poison), []
                for kind, items in job.by_kind.items():
                    if kind in job.prepared:
                        outcome = self.ingest(session, kind, items, job.prepared[kind])
                    else:
                        outcome = self.ingest(session, kind, items)
                    for eid in outcome.conflicts:
                        rec = job.records_by_event[(kind, eid)]
                        dead.append(deadletter.row(kind="conflict", reason="conflict", topic=rec.topic,
                                                   partition=rec.partition, offset=rec.offset, key=rec.key,
                                                   payload=rec.value,
                                                   error=f"event id {eid!r} was stored before with a different payload"))
                    counts += [(kind, "stored", len(outcome.stored)), (kind, "duplicate", len(outcome.duplicates))]
                new = deadletter.record(session, dead)
                incidents = offsets.advance(session, self.cfg.group_id, job.batch, job.highwater.get)
                new += deadletter.record(session, incidents)
                session.commit()
                for kind, outcome_name, k in counts:  # after the commit: a retried batch is counted once
                    RECORDS.labels(kind, outcome_name).inc(k)
                return new
            except BaseException:
                session.rollback()
                raise

    def _store_with_retry(self, job: _Job) -> list[dict]:
        """Store the job, retrying with backoff while the database is unavailable (runs in the writer thread)."""
        backoff, failed = 0.2, False
        while True:
            try:
                new = self._store(job)
                if failed:
                    log.info("ingestion.consumer.database_back")
                return new
            except RETRYABLE as exc:
                DB_RETRIES.inc()
                failed = True
                log.warning("ingestion.consumer.database_unavailable retry_in=%.1fs error=%s", backoff,
                            str(exc).splitlines()[0][:200])
                time.sleep(backoff)
                backoff = min(backoff * 2, self.cfg.max_backoff_s)

    def _publish_dead_letters(self, rows: list[dict]) -> None:
        if not rows:
            return
        for attempt in (1, 2):
            try:
                if self.producer is None:
                    self.producer = make_producer(self.cfg.bootstrap_servers)
                futures = [self.producer.send(self.cfg.dlq_topic, key=r["key"], value=r["payload"] or b"",
                                              headers=deadletter.headers(r)) for r in rows]
                self.producer.flush(timeout=10)
                for f in futures:
                    f.get(timeout=10)
                return
            except Exception as exc:  # the table holds them regardless; recreate the producer once
                log.warning("ingestion.consumer.dlq_publish_failed attempt=%d error=%r", attempt, exc)
                if self.producer is not None:
                    self.producer.close(timeout=1)
                self.producer = None

    def _check_offsets(self) -> None:
        """While idle: compare the broker's high-water marks with what we stored (a broker that lost its log)."""
        self._last_check = time.monotonic()
        assigned = self.consumer.assignment()
        if not assigned:
            return
        try:
            with self.sessions() as session:
                incidents = offsets.check_highwater(session, self.cfg.group_id, assigned, self.consumer.highwater)
                new = deadletter.record(session, incidents)
                session.commit()
            self._publish_dead_letters(new)
        except (OperationalError, DBAPIError) as exc:
            log.warning("ingestion.consumer.offset_check_skipped error=%s", str(exc).splitlines()[0][:200])
