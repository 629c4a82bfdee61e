"""Three reviewers review through the web page in Chromium: one item resolves and a lead sees it; a split goes to adjudication."""

from pathlib import Path

import httpx
from playwright.sync_api import expect

from schemas import tables as t
from services import auth, db, review
from support.review import ALL_GOOD, make_items

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
FIX = "The reset link expires after 24 hours, not 30 minutes. Open Settings → Security → Reset password."
USER_EDIT = "Open Settings → Security → Reset password. The link we e-mail you is valid for 24 hours."
CATS = ["factual_error", "verbosity", "sycophancy", "formatting"]


def _reviewers(base: str, admin: str) -> dict[str, str]:
    out = {}
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {admin}"}) as c:
        for name, role in (("ana", "reviewer"), ("ben", "reviewer"), ("chen", "reviewer"), ("lea", "lead")):
            r = c.post("/v1/reviewers", json={"name": name, "role": role, "domains": ["general"]})
            assert r.status_code == 201, r.text
            out[name] = r.json()["api_key"]
    return out


def _history(app, plain_keys: list[str], n: int = 16) -> None:
    """Earlier review work through the service functions, so the dashboard has agreement over time to show."""
    with db.unit_of_work(app.state.sessions) as s:
        make_items(s, n, start=100, edit=False)
        keys = [auth.authenticate(s, k) for k in plain_keys]
    settings = app.state.settings
    for j in range(n):
        for r, key in enumerate(keys):
            task = review.claim(app.state.sessions, settings, key)
            cat = CATS[j % 4] if not (r == 2 and j % 5 == 1) else "other"  # chen strays now and then
            review.submit(app.state.sessions, settings, key, task["task_id"],
                          {"rubric_version_id": task["rubric"]["id"], "verdict": True, "category": cat,
                           "ratings": ALL_GOOD, "rewrite": f"Fixed {j}.", "justification": "Per rubric."})


def _sign_in(browser, base: str, key: str):
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{base}/ui/login")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    return page


def _review(page, verdict: bool, category: str | None, rewrite: str | None, shot: Path | None = None) -> int:
    page.get_by_role("button", name="Review next item").click()
    heading = page.get_by_role("heading", name="Item").first.inner_text()
    expect(page.get_by_role("heading", name="Response B")).to_be_visible()  # side by side: original and user edit
    assert "acme-chat" not in page.content()  # blind to the model
    page.get_by_role("radio", name="Yes, a badcase" if verdict else "No, the response is fine").check()
    if category:
        page.get_by_label("Failure category").select_option(category)
    for dim, value in (("Harmlessness", "5"), ("Honesty", "2"), ("Helpfulness", "3")):
        page.get_by_label(f"{dim} rating").select_option(value)
    page.get_by_role("radio", name="Tie").check()
    if rewrite:
        page.get_by_label("Rewrite of the correct response").fill(rewrite)
    page.get_by_label("Critique").fill("Gives the wrong expiry time for the reset link.")
    page.get_by_label("Justification (cite the rubric)").fill("Honesty ranks above helpfulness; the fact is wrong.")
    if shot:
        page.screenshot(path=str(shot), full_page=True)
    page.get_by_role("button", name="Submit review").click()
    expect(page.get_by_role("status")).to_contain_text("Review submitted")
    return int(heading.split()[1])


def test_three_reviewers_resolve_an_item_and_a_split_goes_to_the_lead(live_server, browser):
    base, app = live_server
    with db.unit_of_work(app.state.sessions) as s:
        admin = auth.create_key(s, role="admin", name="admin")[1]
    keys = _reviewers(base, admin)
    _history(app, [keys["ana"], keys["ben"], keys["chen"]])
    with db.unit_of_work(app.state.sessions) as s:
        agreed, split = (b.id for b in make_items(s, 2, edit_text=USER_EDIT))
    SHOTS.mkdir(parents=True, exist_ok=True)
    votes = {"ana": (True, "factual_error"), "ben": (True, "verbosity"), "chen": (False, None)}
    for name in ("ana", "ben", "chen"):
        page = _sign_in(browser, base, keys[name])
        expect(page.get_by_role("heading", name="Review", exact=True)).to_be_visible()
        _review(page, True, "factual_error", FIX, SHOTS / "review_page.png" if name == "ana" else None)
        _review(page, *votes[name], None)
        page.context.close()
    with db.unit_of_work(app.state.sessions) as s:
        first, second = s.get(t.Badcase, agreed), s.get(t.Badcase, split)
        assert (first.status, first.chosen_response, first.admitted) == ("resolved", FIX, True)
        assert (second.status, second.resolution["reason"]) == ("adjudication", "disagreement")

    lead = _sign_in(browser, base, keys["lea"])
    expect(lead.get_by_role("heading", name="Lead dashboard")).to_be_visible()
    recent = lead.get_by_role("region", name="Recently decided")
    expect(recent.get_by_role("row").filter(has_text=f"Item {agreed}")).to_contain_text("resolved")
    expect(lead.get_by_role("heading", name=f"Item {split} · reviewers disagree")).to_be_visible()
    expect(lead.get_by_role("img", name="Agreement (Krippendorff's alpha) over time")).to_be_visible()
    assert lead.locator("svg polyline").count() >= 1
    lead.screenshot(path=str(SHOTS / "lead_dashboard.png"), full_page=True)

    lead.get_by_label(f"Outcome for item {split}").select_option("resolved")
    lead.get_by_label(f"Category for item {split}").select_option("verbosity")
    lead.get_by_label(f"Chosen response for item {split}").fill(FIX)
    lead.get_by_role("button", name=f"Adjudicate item {split}").click()
    expect(lead.get_by_role("status")).to_contain_text("Decision recorded")
    expect(lead.get_by_text("Nothing waits for a lead.")).to_be_visible()
    with db.unit_of_work(app.state.sessions) as s:
        second = s.get(t.Badcase, split)
        assert (second.status, second.chosen_response) == ("resolved", FIX)
    assert (SHOTS / "review_page.png").stat().st_size > 10_000 and (SHOTS / "lead_dashboard.png").stat().st_size > 10_000
