"""Per-partition progress stored with the rows, and broker data-loss detection from it.

If a partition's high-water mark falls below the last offset we stored, the broker lost its log (or the topic
was recreated): we say so loudly (log event, metric, an `incident` dead letter) instead of skipping silently.
"""

import logging
from collections.abc import Callable

from kafka import TopicPartition
from prometheus_client import Counter
from sqlalchemy import select
from sqlalchemy.orm import Session

from ingestion import deadletter
from schemas import tables as t

log = logging.getLogger("ff.ingestion.offsets")

DATA_LOSS = Counter("ff_consumer_data_loss_incidents_total", "Partitions whose offsets went backwards", ["topic", "partition"])


def _stored(session: Session, group: str, tps) -> dict[tuple[str, int], t.PartitionOffset]:
    topics = {tp.topic for tp in tps}
    rows = session.scalars(select(t.PartitionOffset).where(t.PartitionOffset.group_id == group,
                                                           t.PartitionOffset.topic.in_(topics)))
    return {(r.topic, r.partition): r for r in rows}


def _incident(tp: TopicPartition, last: int, hw: int) -> dict:
    DATA_LOSS.labels(tp.topic, tp.partition).inc()
    log.error("ingestion.consumer.broker_data_loss topic=%s partition=%d last_stored_offset=%d highwater=%d",
              tp.topic, tp.partition, last, hw)
    return deadletter.row(kind="incident", reason="offsets_went_backwards", topic=tp.topic, partition=tp.partition,
                          offset=last, error=(f"partition {tp.topic}[{tp.partition}] high-water mark {hw} is below the "
                                              f"last stored offset {last}: the broker lost data or the topic was recreated"))


def check_highwater(session: Session, group: str, tps, highwater: Callable[[TopicPartition], int | None]) -> list[dict]:
    """Incidents for partitions whose high-water mark is below what we stored; resets the stored progress."""
    stored = _stored(session, group, tps)
    incidents = []
    for tp in tps:
        row, hw = stored.get((tp.topic, tp.partition)), highwater(tp)
        if row is not None and hw is not None and hw <= row.last_offset:
            incidents.append(_incident(tp, row.last_offset, hw))
            row.last_offset = hw - 1
    session.flush()
    return incidents


def advance(session: Session, group: str, batch: dict, highwater: Callable[[TopicPartition], int | None]) -> list[dict]:
    """Record the last offset stored per partition of a batch; return data-loss incidents found on the way."""
    incidents = check_highwater(session, group, batch.keys(), highwater)
    stored = _stored(session, group, batch.keys())
    for tp, recs in batch.items():
        last = recs[-1].offset
        row = stored.get((tp.topic, tp.partition))
        if row is None:
            session.add(t.PartitionOffset(group_id=group, topic=tp.topic, partition=tp.partition, last_offset=last))
        elif last > row.last_offset or any(i["partition"] == tp.partition and i["topic"] == tp.topic for i in incidents):
            row.last_offset = last
    session.flush()
    return incidents
