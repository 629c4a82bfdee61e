"""Stored interaction rows: the PostgreSQL path (COPY of the canonical JSON, columns taken apart by the server)
and the SQLite path (row dicts) store the same values, field by field, times with their offset honoured."""

import json
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from ingestion import decode, store
from schemas import tables as t
from services import db
from support.events import interaction

RICH = interaction(
    1, occurred_at="2026-11-01T09:30:00.250+02:00", turn=2, prompt="Explain \"tabs\"\tand\\backslashes\nplease",
    response="Un café, s'il vous plaît → ☕ \u2019quoted\u2019\n\tindented \\ done",
    decoding={"temperature": 0.0, "top_p": 1.0, "stop": ["\n\n", "END"], "seed": -3},
    tokens={"prompt": 0, "completion": 17}, latency_ms=0.1 + 0.2, reward_scores={"rm_a": -1.5, "rm_b": 2.25},
    verifier={"name": "unit-tests", "passed": False, "detail": None},
    metadata={"nested": {"list": [1, 2.5, None, "x"]}, "empty": {}, "flag": True}, policy_version=None)
COLUMNS = ("event_id", "payload_hash", "occurred_at", "app", "conversation_id", "turn", "prompt", "messages",
           "response", "model_name", "model_version", "policy_version", "prompt_template_id", "decoding",
           "latency_ms", "prompt_tokens", "completion_tokens", "consent_training", "consent_analytics",
           "reward_scores", "verifier_passed", "verifier", "meta", "length_chars", "refusal_class")


@pytest.mark.parametrize("event", [RICH, interaction(2, messages=[], prompt="p"), interaction(3)])
def test_stored_row_equals_the_validated_event(database_url, event):
    item = decode.decode_message("interaction", json.dumps(event).encode())
    expected = store.interaction_row(item, store.payload_hash(item), datetime.now(timezone.utc))
    expected.update(meta=expected.pop("metadata"), length_chars=123, refusal_class="full_compliance")
    engine = db.make_engine(database_url)
    sessions = db.session_factory(engine)
    with db.unit_of_work(sessions) as s:
        out = store.store_interactions(s, [item], {item.event_id: {"length_chars": 123,
                                                                   "refusal_class": "full_compliance"}})
    assert out.stored == [item.event_id]
    with sessions() as s:
        row = s.scalars(select(t.Interaction).where(t.Interaction.event_id == item.event_id)).one()
        got = {c: getattr(row, c) for c in COLUMNS}
    engine.dispose()
    assert got == {c: expected[c] for c in COLUMNS}
