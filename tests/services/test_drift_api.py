"""Drift HTTP API: pinning reference windows, validation, roles, not-found answers."""

from datetime import datetime, timedelta, timezone

from services import db
from schemas import tables as t

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


def test_pin_and_list_reference_windows(app, client, keys):
    with db.unit_of_work(app.state.sessions) as s:
        s.add_all([t.Interaction(event_id=f"e{i}", payload_hash="h", occurred_at=T0 + timedelta(minutes=i), app="a",
                                 conversation_id="c", prompt="p", response="r", model_name="m", model_version="v1",
                                 domain_bucket="code") for i in range(10)])
    hdr = bearer(keys["ops"])
    r = client.post("/v1/drift/references", json={"model_version": "v1", "last_n": 4}, headers=hdr)
    assert r.status_code == 201 and r.json()["n_rows"] == 4 and r.json()["bucket"] == "*"
    assert r.json()["window_start"].startswith("2026-11-01T00:06:00")
    body = {"model_version": "v1", "bucket": "code", "window_start": "2026-11-01T02:00:00+02:00",
            "window_end": "2026-11-01T00:02:00Z"}
    r = client.post("/v1/drift/references", json=body, headers=bearer(keys["admin"]))
    assert r.status_code == 201 and r.json()["n_rows"] == 3  # +02:00 is read as UTC midnight
    second = client.post("/v1/drift/references", json={"model_version": "v1", "last_n": 2}, headers=hdr).json()
    active = client.get("/v1/drift/references?active=true&model_version=v1", headers=hdr).json()
    assert sorted((x["bucket"], x["n_rows"]) for x in active) == [("*", 2), ("code", 3)]
    assert second["id"] in [x["id"] for x in active]
    assert len(client.get("/v1/drift/references", headers=hdr).json()) == 3

    for bad in ({"model_version": "v1"}, {"model_version": "v1", "last_n": 3, "window_start": "2026-11-01T00:00:00Z",
                                           "window_end": "2026-11-01T01:00:00Z"},
                {"model_version": "v1", "window_start": "2026-11-01T00:00:00Z"},
                {"model_version": "v1", "window_start": "2026-11-01T00:00:00", "window_end": "2026-11-01T01:00:00"},
                {"model_version": "v1", "last_n": 0}):
        r = client.post("/v1/drift/references", json=bad, headers=hdr)
        assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error", bad
    r = client.post("/v1/drift/references", json={"model_version": "v9", "last_n": 5}, headers=hdr)
    assert r.status_code == 422 and r.json()["error"]["code"] == "drift_window_empty"


def test_roles_pages_and_not_found(client, keys):
    hdr = bearer(keys["ops"])
    for path in ("/v1/drift/reports", "/v1/alerts?status=open&severity=critical", "/v1/probes/runs"):
        assert client.get(path, headers=hdr).json() == {"total": 0, "limit": 50, "offset": 0, "items": []}
        assert client.get(path, headers=bearer(keys["reviewer"])).status_code == 403
        assert client.get(path).status_code == 401
    assert client.get("/v1/alerts?status=closed", headers=hdr).status_code == 422
    for path in ("/v1/drift/reports/7", "/v1/drift/reports/7/html"):
        r = client.get(path, headers=hdr)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert client.post("/v1/alerts/7/resolve", headers=hdr).status_code == 404
    assert client.get("/ui/ops", headers=bearer(keys["reviewer"])).status_code == 403
    page = client.get("/ui/ops", headers=hdr)
    assert page.status_code == 200 and "No open alerts." in page.text
