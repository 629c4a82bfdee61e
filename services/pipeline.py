"""The one ingest pipeline (validate → store → flag) shared by the HTTP API and the Kafka consumer."""

from prometheus_client import Counter
from sqlalchemy.orm import Session

from ingestion import store
from ingestion.store import StoreOutcome
from services import flagging

FILL_INTERVAL_S = 2.0  # the ingest path tops up the review queue at most this often per process
EVENTS = Counter("ff_events_total", "Events taken by the ingest pipeline", ["kind", "outcome"])


def _count(kind: str, outcome: StoreOutcome) -> None:
    EVENTS.labels(kind, "stored").inc(len(outcome.stored))
    EVENTS.labels(kind, "duplicate").inc(len(outcome.duplicates))
    EVENTS.labels(kind, "conflict").inc(len(outcome.conflicts))


def prepare(kind: str, items: list) -> dict | None:
    """The ingest work that needs no database (descriptors, canonical JSON and hashes), done ahead of `ingest`
    (the Kafka consumer prepares the next batch while the previous one is being stored)."""
    if kind != "interaction" or not items:
        return None
    return {"columns": flagging.descriptor_columns(items), "deduped": store.dedupe(items)}


def ingest_interactions(session: Session, items: list, prepared: dict | None = None) -> StoreOutcome:
    """Compute descriptors, store validated interactions idempotently, flag badcases; the caller commits."""
    prepared = prepared or prepare("interaction", items) or {"columns": {}, "deduped": None}
    columns = prepared["columns"]
    outcome = store.store_interactions(session, items, columns, deduped=prepared["deduped"])
    rows = flagging.stored_rows(items, columns, outcome.ids)
    if flagging.flag_interactions(session, outcome.stored, rows=rows, feedback_waiting=outcome.linked > 0):
        flagging.fill_queue(session, min_interval_s=FILL_INTERVAL_S)
    _count("interaction", outcome)
    return outcome


def ingest_feedback(session: Session, items: list, prepared: None = None) -> StoreOutcome:
    """Store validated feedback idempotently and re-evaluate the interactions it is about; the caller commits."""
    outcome = store.store_feedback(session, items)
    stored = set(outcome.stored)
    if flagging.flag_feedback(session, [f for f in items if f.event_id in stored]):
        flagging.fill_queue(session, min_interval_s=FILL_INTERVAL_S)
    _count("feedback", outcome)
    return outcome


def ingest(session: Session, kind: str, items: list, prepared: dict | None = None) -> StoreOutcome:
    """Dispatch a batch of one kind (`interaction` or `feedback`); `prepared` is `prepare(kind, items)` if made."""
    return (ingest_interactions if kind == "interaction" else ingest_feedback)(session, items, prepared)
