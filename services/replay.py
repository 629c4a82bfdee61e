"""Replay of dead letters through the same ingest pipeline, after the cause was fixed."""

from datetime import datetime, timezone

from ingestion import deadletter, decode
from services import db, pipeline
from services.settings import Settings


def replay(settings: Settings, ids: list[int] | None = None) -> dict:
    """Re-validate and store each open dead letter; mark the ones that now pass as replayed."""
    engine = db.make_engine(settings.database_url)
    kinds = {settings.kafka_interactions_topic: "interaction", settings.kafka_feedback_topic: "feedback"}
    done = failed = 0
    with db.unit_of_work(db.session_factory(engine)) as session:
        for dl in deadletter.list_open(session, ids=ids):
            kind = kinds.get(dl.topic or "", "interaction")
            item = decode.decode_message(kind, dl.payload)
            if isinstance(item, decode.DecodeError):
                dl.error, failed = item.error, failed + 1
                continue
            outcome = pipeline.ingest(session, kind, [item])
            if outcome.conflicts:
                failed += 1
                continue
            dl.status, dl.replayed_at, done = "replayed", datetime.now(timezone.utc), done + 1
    engine.dispose()
    return {"replayed": done, "still_failing": failed}
