"""Reviewer web pages over HTTP: sign-in, validation messages in the form, role checks, the lead page."""

from services import db
from support.review import make_items


def sign_in(client, key):
    r = client.post("/ui/login", data={"key": key}, follow_redirects=False)
    assert r.status_code == 303, r.text
    client.cookies.set("ff_key", key)
    return r.headers["location"]


def new_reviewer(client, admin, name, role="reviewer"):
    r = client.post("/v1/reviewers", headers={"Authorization": f"Bearer {admin}"},
                    json={"name": name, "role": role, "domains": ["*"]})
    return r.json()["api_key"]


def test_sign_in_rules(client, keys):
    bad = client.post("/ui/login", data={"key": "ff_nope"})
    assert bad.status_code == 401 and "unknown or revoked API key" in bad.text
    unlinked = client.post("/ui/login", data={"key": keys["reviewer"]})
    assert unlinked.status_code == 401 and "not linked to an active reviewer" in unlinked.text
    assert client.get("/ui/review", follow_redirects=False).headers["location"] == "/ui/login"
    assert sign_in(client, new_reviewer(client, keys["admin"], "lee", "lead")) == "/ui/lead"


def test_invalid_form_shows_the_rubric_errors_and_keeps_the_answers(client, keys, app):
    with db.unit_of_work(app.state.sessions) as s:
        make_items(s, 1)
    assert sign_in(client, new_reviewer(client, keys["admin"], "ann")) == "/ui/review"
    page = client.post("/ui/review/next")
    assert page.status_code == 200 and "Response B" in page.text and "acme-chat" not in page.text
    task_id = page.text.split('action="/ui/review/tasks/')[1].split("/")[0]
    r = client.post(f"/ui/review/tasks/{task_id}/submit",
                    data={"verdict": "yes", "rating_honesty": "2", "critique": "Wrong time.", "justification": ""})
    assert r.status_code == 422
    for message in ("a badcase needs a failure category", "rate harmlessness from 1 to 5", "choose A, B or tie",
                    "say briefly why"):
        assert message in r.text
    assert "Wrong time." in r.text  # what the reviewer typed is kept
    lead = client.get("/ui/lead", follow_redirects=False)
    assert lead.headers["location"] == "/ui/review"  # reviewers do not see the lead page
    released = client.post(f"/ui/review/tasks/{task_id}/release", follow_redirects=True)
    assert "Item released." in released.text
    assert "Nothing to review" in client.post("/ui/review/next", follow_redirects=True).text
