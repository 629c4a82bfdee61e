"""HTTP ingest: idempotency, conflicts, out-of-order feedback, bad input, auth — on SQLite and PostgreSQL."""

import json

import pytest
from sqlalchemy import create_engine, func, select

from schemas import tables as t
from support.events import feedback, interaction



def count(url: str, table) -> int:
    engine = create_engine(url)
    with engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(table)).scalar_one()
    engine.dispose()
    return n


def post(client, key, path, payload, **kw):
    return client.post(path, content=json.dumps(payload) if not isinstance(payload, bytes) else payload,
                       headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"}, **kw)


def test_batch_of_1000_is_stored_once(client, keys, database_url):
    batch = [interaction(i) for i in range(1000)]
    r = post(client, keys["app"], "/v1/interactions", batch)
    assert r.status_code == 200, r.text
    assert r.json() == {"received": 1000, "stored": 1000, "duplicates": 0}
    assert count(database_url, t.Interaction) == 1000
    r = post(client, keys["app"], "/v1/interactions", batch)
    assert r.json() == {"received": 1000, "stored": 0, "duplicates": 1000}
    assert count(database_url, t.Interaction) == 1000


def test_single_object_and_read_back_with_feedback(client, keys, database_url):
    ev = interaction(7, consent=False)
    assert post(client, keys["app"], "/v1/interactions", ev).json() == {"received": 1, "stored": 1, "duplicates": 0}
    assert post(client, keys["app"], "/v1/feedback", feedback(1, "int-7", "rating", score=1, dimension="helpfulness")).status_code == 200
    r = client.get("/v1/interactions/int-7", headers={"Authorization": f"Bearer {keys['reviewer']}"})
    assert r.status_code == 200
    body = r.json()
    assert body["response"] == ev["response"] and body["model_version"] == "v1" and body["consent_training"] is False
    assert body["prompt"].startswith("How do I reset the password of account 7")
    assert body["metadata"] == {"region": "eu", "i": 7}
    assert [(f["kind"], f["is_negative"], f["body"]["dimension"]) for f in body["feedback"]] == [("rating", True, "helpfulness")]


def test_same_id_different_payload_is_409_and_writes_nothing(client, keys, database_url):
    post(client, keys["app"], "/v1/interactions", interaction(1))
    changed = interaction(1, response="something else")
    r = post(client, keys["app"], "/v1/interactions", [interaction(2), changed])
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "conflict"
    assert count(database_url, t.Interaction) == 1  # int-2 was not stored either


def test_feedback_before_interaction_is_linked_when_it_arrives(client, keys, database_url):
    assert post(client, keys["app"], "/v1/feedback", [feedback(1, "int-5"), feedback(2, "int-5", "edit")]).json()["stored"] == 2
    engine = create_engine(database_url)
    with engine.connect() as conn:
        assert conn.execute(select(t.Feedback.interaction_id)).scalars().all() == [None, None]
    post(client, keys["app"], "/v1/interactions", interaction(5))
    with engine.connect() as conn:
        iid = conn.execute(select(t.Interaction.id).where(t.Interaction.event_id == "int-5")).scalar_one()
        assert conn.execute(select(t.Feedback.interaction_id)).scalars().all() == [iid, iid]
    engine.dispose()
    r = client.get("/v1/interactions/int-5", headers={"Authorization": f"Bearer {keys['ops']}"})
    assert [f["kind"] for f in r.json()["feedback"]] == ["thumbs", "edit"]


@pytest.mark.parametrize("kind", ["thumbs", "rating", "ranking", "edit", "demonstration", "critique", "regenerate"])
def test_every_feedback_kind_is_accepted(client, keys, kind):
    r = post(client, keys["app"], "/v1/feedback", feedback(1, "int-1", kind))
    assert r.status_code == 200, r.text


BAD = [
    (b'{"event_id": "x", ', 400, "malformed_json"),
    (b"not json at all", 400, "malformed_json"),
    (json.dumps({**interaction(1), "turn": "three"}).encode(), 422, "validation_error"),
    (json.dumps({k: v for k, v in interaction(1).items() if k != "response"}).encode(), 422, "validation_error"),
    (json.dumps({k: v for k, v in interaction(1).items() if k not in ("messages", "prompt")}).encode(), 422, "validation_error"),
    (json.dumps([interaction(1), {**interaction(2), "latency_ms": -1}]).encode(), 422, "validation_error"),
    (json.dumps([interaction(i) for i in range(1001)]).encode(), 413, "payload_too_large"),
    (b"[]", 422, "validation_error"),
    # PostgreSQL text cannot hold NUL: refused up front (not a server error, nor a batch retried forever).
    (json.dumps([interaction(1), interaction(2, response="cut\x00here")]).encode(), 422, "validation_error"),
    (json.dumps(interaction(3, metadata={"note": ["ok", "\x00"]})).encode(), 422, "validation_error"),
    # Reward scores are finite and bounded (the fuzz test found 2.7e154 overflowing their spread: a 500).
    (json.dumps(interaction(4, reward_scores={"rm_a": 0.0, "rm_b": 2.6815615859885194e+154})).encode(), 422,
     "validation_error"),
    (json.dumps(interaction(5, reward_scores={"rm_a": 1.0})).replace('"rm_a": 1.0', '"rm_a": Infinity').encode(), 422,
     "validation_error"),
]


@pytest.mark.parametrize("body,status,code", BAD)
def test_bad_interactions_change_nothing(client, keys, database_url, body, status, code):
    r = post(client, keys["app"], "/v1/interactions", body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert r.json()["error"]["message"]
    assert count(database_url, t.Interaction) == 0


def test_unknown_feedback_kind_and_bad_rating(client, keys, database_url):
    for fb in (feedback(1, "int-1", "emoji"), feedback(2, "int-1", "rating", score=9)):
        r = post(client, keys["app"], "/v1/feedback", fb)
        assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
    assert count(database_url, t.Feedback) == 0


def test_oversize_body_is_413(client, keys, database_url):
    big = json.dumps(interaction(1, response="x" * 9_000_000)).encode()
    r = post(client, keys["app"], "/v1/interactions", big)
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    assert count(database_url, t.Interaction) == 0


def test_auth_401_and_403(client, keys):
    assert client.post("/v1/interactions", content=b"{}").status_code == 401
    r = client.post("/v1/interactions", content=b"{}", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    r = post(client, keys["reviewer"], "/v1/interactions", interaction(1))
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    r = client.get("/v1/interactions/int-1", headers={"Authorization": f"Bearer {keys['app']}"})
    assert r.status_code == 403
    assert post(client, keys["admin"], "/v1/interactions", interaction(1)).status_code == 200
    assert client.get("/v1/interactions/missing", headers={"Authorization": f"Bearer {keys['lead']}"}).status_code == 404


def test_health_ready_metrics_docs(client, keys):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    post(client, keys["app"], "/v1/interactions", interaction(1))
    m = client.get("/metrics").text
    assert 'ff_events_total{kind="interaction",outcome="stored"}' in m
    assert client.get("/docs").status_code == 200
    assert "/v1/interactions" in client.get("/openapi.json").json()["paths"]
