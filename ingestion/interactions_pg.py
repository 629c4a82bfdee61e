"""PostgreSQL insert of interactions: COPY each event's canonical JSON into a staging table, let the server take
the columns apart, then `INSERT … SELECT … ON CONFLICT (event_id) DO NOTHING RETURNING`.

The canonical JSON is already made for the payload hash, so the Python side writes a few plain values per event
and PostgreSQL (another process, another core) does the per-field work that building row dicts and dumping their
JSON columns cost in Python. The columns match `ingestion.store.interaction_row`, the SQLite path.
"""

import zlib
from datetime import datetime

from sqlalchemy.orm import Session

# Interaction column <- SQL over the staged document `d` (jsonb). JSON nulls become SQL NULLs; `messages` [] too.
_FROM_DOC = {
    "occurred_at": "(d->>'occurred_at')::timestamptz",
    "app": "d->>'app'",
    "conversation_id": "d->>'conversation_id'",
    "turn": "(d->>'turn')::int",
    "messages": "NULLIF(NULLIF(d->'messages', 'null'), '[]')::json",
    "response": "d->>'response'",
    "model_name": "d->'model'->>'name'",
    "model_version": "d->'model'->>'version'",
    "policy_version": "d->>'policy_version'",
    "prompt_template_id": "d->>'prompt_template_id'",
    "decoding": "jsonb_strip_nulls(NULLIF(d->'decoding', 'null'))::json",
    "latency_ms": "(d->>'latency_ms')::float8",
    "prompt_tokens": "(d->'tokens'->>'prompt')::int",
    "completion_tokens": "(d->'tokens'->>'completion')::int",
    "consent_training": "(d->'consent'->>'training')::bool",
    "consent_analytics": "(d->'consent'->>'analytics')::bool",
    "reward_scores": "NULLIF(d->'reward_scores', 'null')::json",
    "verifier_passed": "(d->'verifier'->>'passed')::bool",
    "verifier": "NULLIF(d->'verifier', 'null')::json",
    "metadata": "(d->'metadata')::json",
}
_PLAIN = ("event_id", "payload_hash", "received_at", "prompt")  # written by Python as they are


def insert(session: Session, entries: list[tuple[object, str, bytes]], extra: dict[str, dict],
           now: datetime) -> dict[str, int]:
    """Insert (item, payload hash, canonical JSON) entries whose event id is new; their event ids and row ids.

    `extra` maps an event id to more column values (descriptors); every event gets the columns of the first.
    """
    names = list(next(iter(extra.values()), {}))
    plain = [*_PLAIN, *names]
    stage = f"_stage_interaction_{zlib.crc32(','.join(names).encode()):08x}"
    cols = ", ".join(f'"{c}"' for c in plain)
    raw = session.connection().connection.driver_connection
    with raw.cursor() as cur:
        cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS "
                    f"SELECT {cols}, NULL::jsonb AS d FROM interaction WITH NO DATA")
        with cur.copy(f"COPY {stage} ({cols}, d) FROM STDIN") as copy:
            for item, h, doc in entries:
                more = extra.get(item.event_id, {})
                copy.write_row((item.event_id, h, now, item.prompt_text(), *[more.get(n) for n in names],
                                doc.decode()))
        targets = ", ".join([cols, *(f'"{c}"' for c in _FROM_DOC)])
        cur.execute(f"INSERT INTO interaction ({targets}) SELECT {cols}, {', '.join(_FROM_DOC.values())} "
                    f"FROM {stage} ON CONFLICT (event_id) DO NOTHING RETURNING event_id, id")
        inserted = dict(cur.fetchall())
        cur.execute(f"TRUNCATE {stage}")
    return inserted
