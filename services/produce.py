"""A small producer for people trying the service: JSONL lines to the ingest topics."""

import json
from pathlib import Path

from kafka import KafkaProducer

from services.settings import Settings


def producer(settings: Settings) -> KafkaProducer:
    """A batching producer (not idempotent: Tansu restarts break idempotent producers for good)."""
    return KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all", linger_ms=10,
                         batch_size=256 * 1024, enable_idempotence=False, compression_type=None)


def _key(line: bytes) -> bytes | None:
    try:
        obj = json.loads(line)
    except ValueError:
        return None
    cid = obj.get("conversation_id") or obj.get("interaction_id") if isinstance(obj, dict) else None
    return str(cid).encode() if cid else None


def produce_lines(settings: Settings, lines, *, kind: str = "interaction", topic: str | None = None) -> int:
    """Send raw JSON lines (bytes) as they are; returns how many were acknowledged."""
    topic = topic or (settings.kafka_interactions_topic if kind == "interaction" else settings.kafka_feedback_topic)
    prod = producer(settings)
    futures = [prod.send(topic, key=_key(line), value=line) for line in lines]
    prod.flush()
    sent = sum(1 for f in futures if f.get(timeout=30) is not None)
    prod.close()
    return sent


def produce_file(settings: Settings, path: Path, *, kind: str = "interaction", topic: str | None = None) -> dict:
    """Send every non-empty line of a JSONL file."""
    lines = [ln.strip().encode() for ln in Path(path).read_text().splitlines() if ln.strip()]
    return {"topic": topic or kind, "sent": produce_lines(settings, lines, kind=kind, topic=topic)}
