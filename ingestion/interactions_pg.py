"""PostgreSQL insert of interactions: COPY each event's canonical JSON into a staging table, let the server take
the columns apart, then `INSERT … SELECT … ON CONFLICT (event_id) DO NOTHING RETURNING`.

The canonical JSON is already made for the payload hash, so the Python side writes a few plain values per event
and PostgreSQL (another process, another core) does the per-field work that building row dicts and dumping their
JSON columns cost in Python. The columns match `ingestion.store.interaction_row`, the SQLite path.
"""

import zlib
from datetime import datetime

from sqlalchemy.orm import Session

from ingestion import pg_copy

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
    stage = f"_stage_interaction_{zlib.crc32(','.join(names).encode()):08x}"
    cols = ", ".join(f'"{c}"' for c in [*_PLAIN, *names])
    rows = ((item.event_id, h, now, item.prompt_text(), *map((extra.get(item.event_id) or {}).get, names),
             pg_copy.Utf8(doc)) for item, h, doc in entries)
    targets = ", ".join([cols, *(f'"{c}"' for c in _FROM_DOC)])
    return pg_copy.staged_insert(
        session, stage=stage, like=f"SELECT {cols}, NULL::jsonb AS d FROM interaction", columns=f"{cols}, d",
        rows=rows, insert=f"INSERT INTO interaction ({targets}) SELECT {cols}, {', '.join(_FROM_DOC.values())} "
                          f"FROM {stage} ON CONFLICT (event_id) DO NOTHING RETURNING event_id, id")
