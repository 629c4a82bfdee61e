"""Review HTTP API on SQLite and PostgreSQL: reviewers, rubrics, blind claim/submit/release, adjudication, agreement."""

from services import auth, db
from support.review import ALL_GOOD, make_items


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def reviewer(client, keys, name, role="reviewer", domains=("*",)):
    r = client.post("/v1/reviewers", headers=bearer(keys["admin"]), json={"name": name, "role": role, "domains": list(domains)})
    assert r.status_code == 201, r.text
    return r.json()["api_key"]


def items(app, n=1, **kw):
    with db.unit_of_work(app.state.sessions) as s:
        return [b.id for b in make_items(s, n, **kw)]


def body(task, verdict=True, category="factual_error", rewrite=None, preference="A"):
    return {"rubric_version_id": task["rubric"]["id"], "verdict": verdict, "category": category if verdict else None,
            "ratings": ALL_GOOD, "preference": preference if task["pairwise"] else None, "rewrite": rewrite,
            "justification": "Honesty first."}


def test_three_blind_reviews_resolve_an_item(client, keys, app):
    (item,) = items(app)
    revs = [reviewer(client, keys, f"r{i}") for i in range(3)]
    for i, key in enumerate(revs):
        task = client.post("/v1/review/claim", headers=bearer(key)).json()["task"]
        assert task["badcase_id"] == item and task["pairwise"] is True and task["resolution"] is None
        assert "acme-chat" not in str(task) and "negative_feedback" not in str(task)  # no model, no reasons
        assert client.get(f"/v1/review/tasks/{task['task_id']}", headers=bearer(key)).json() == task
        r = client.post(f"/v1/review/tasks/{task['task_id']}/submit", headers=bearer(key),
                        json=body(task, rewrite="The link expires after 24 hours."))
        assert r.status_code == 200, r.text
        assert r.json()["badcase_status"] == ("resolved" if i == 2 else "in_review")
    done = client.get(f"/v1/review/tasks/{task['task_id']}", headers=bearer(revs[0]))
    assert done.status_code == 404  # not r0's task
    done = client.get(f"/v1/review/tasks/{task['task_id']}", headers=bearer(revs[2])).json()
    assert done["resolution"]["chosen_response"] == "The link expires after 24 hours."
    assert done["resolution"]["model"]["name"] == "acme-chat" and len(done["resolution"]["reviews"]) == 3
    stats = client.get("/v1/review/me/stats", headers=bearer(revs[0])).json()
    assert (stats["submitted"], stats["decided"], stats["agreement_rate"]) == (1, 1, 1.0)


def test_errors_have_the_one_shape(client, keys, app):
    items(app, 2)
    key = reviewer(client, keys, "ann")
    assert client.post("/v1/review/claim", headers=bearer(keys["reviewer"])).json()["error"]["code"] == "not_a_reviewer"
    assert client.post("/v1/review/claim", headers=bearer(keys["app"])).status_code == 403
    task = client.post("/v1/review/claim", headers=bearer(key)).json()["task"]
    r = client.post(f"/v1/review/tasks/{task['task_id']}/submit", headers=bearer(key),
                    json={**body(task), "category": "typo", "ratings": {"honesty": 7}})
    assert r.status_code == 422 and r.json()["error"]["code"] == "validation_error"
    assert {tuple(d["loc"]) for d in r.json()["error"]["details"]} >= {("category",), ("ratings", "honesty")}
    r = client.post(f"/v1/review/tasks/{task['task_id']}/submit", headers=bearer(key), json={"verdict": "yes"})
    assert r.status_code == 422
    assert client.post(f"/v1/review/tasks/{task['task_id']}/release", headers=bearer(key)).json()["status"] == "open"
    r = client.post(f"/v1/review/tasks/{task['task_id']}/submit", headers=bearer(key), json=body(task))
    assert r.status_code == 409 and r.json()["error"]["code"] == "lease_lost"
    assert client.post("/v1/review/tasks/999999/release", headers=bearer(key)).status_code == 404


def test_rubrics_are_immutable_versions(client, keys, app):
    listed = client.get("/v1/rubrics", headers=bearer(keys["reviewer"])).json()
    assert [(r["name"], r["version"]) for r in listed] == [("default", 1)]
    new = {"name": "code", "dimensions": [{"name": "correctness"}, {"name": "style", "scale_max": 3}],
           "categories": ["bug", "other"], "scope": {"buckets": ["code"]}}
    assert client.post("/v1/rubrics", headers=bearer(keys["reviewer"]), json=new).status_code == 403
    first = client.post("/v1/rubrics", headers=bearer(keys["lead"]), json=new)
    second = client.post("/v1/rubrics", headers=bearer(keys["lead"]), json={**new, "categories": ["bug"]})
    assert (first.status_code, first.json()["version"], second.json()["version"]) == (201, 1, 2)
    bad = client.post("/v1/rubrics", headers=bearer(keys["lead"]), json={**new, "categories": ["bug", "bug"]})
    assert bad.status_code == 422
    rid = first.json()["id"]
    assert client.get(f"/v1/rubrics/{rid}", headers=bearer(keys["ops"])).json()["categories"] == ["bug", "other"]
    for method in ("put", "patch", "delete"):
        assert getattr(client, method)(f"/v1/rubrics/{rid}", headers=bearer(keys["lead"])).status_code == 405


def test_reviewer_creation_rules(client, keys, app):
    lead_made = client.post("/v1/reviewers", headers=bearer(keys["lead"]), json={"name": "x", "role": "lead", "domains": ["*"]})
    assert lead_made.status_code == 403
    with db.unit_of_work(app.state.sessions) as s:
        row, plain = auth.create_key(s, role="reviewer", name="existing")
    r = client.post("/v1/reviewers", headers=bearer(keys["lead"]), json={"name": "bo", "domains": ["code"], "api_key_id": row.id})
    assert r.status_code == 201 and r.json()["api_key"] is None and r.json()["api_key_id"] == row.id
    again = client.post("/v1/reviewers", headers=bearer(keys["lead"]), json={"name": "cy", "domains": ["code"], "api_key_id": row.id})
    assert again.status_code == 409
    assert client.post("/v1/review/claim", headers=bearer(plain)).json()["task"] is None


def test_disagreement_goes_to_the_lead_and_agreement_is_reported(client, keys, app):
    (item,) = items(app)
    revs = [reviewer(client, keys, f"r{i}") for i in range(3)]
    lead = reviewer(client, keys, "lead", role="lead")
    for key, verdict, cat in zip(revs, (True, True, False), ("sycophancy", "verbosity", None)):
        task = client.post("/v1/review/claim", headers=bearer(key)).json()["task"]
        client.post(f"/v1/review/tasks/{task['task_id']}/submit", headers=bearer(key), json=body(task, verdict, cat))
    assert client.get("/v1/review/adjudication", headers=bearer(revs[0])).status_code == 403
    queue = client.get("/v1/review/adjudication", headers=bearer(lead)).json()
    assert [(q["badcase_id"], q["reason"], len(q["reviews"])) for q in queue] == [(item, "disagreement", 3)]
    r = client.post(f"/v1/review/adjudication/{item}", headers=bearer(lead),
                    json={"outcome": "resolved", "category": "verbosity", "chosen_response": "Shorter."})
    assert r.json() == {"badcase_id": item, "status": "resolved", "chosen_response": "Shorter.", "admitted": True}
    assert client.post(f"/v1/review/adjudication/{item}", headers=bearer(lead), json={"outcome": "dismissed"}).status_code == 409
    got = client.get("/v1/agreement", headers=bearer(keys["ops"]), params={"since": "2000-01-01T00:00:00Z"}).json()
    assert got["reports"] == [] and got["revise_below"] == 0.4 and got["target"] == 0.6  # one item: too few for a window
