"""Review queue on SQLite and PostgreSQL: claims, leases, blindness, gating outcomes, gold accuracy, agreement window."""

import random
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from badcase import consensus, queue, review_view, rubric_store
from badcase.rubric import derandomise
from badcase.review_errors import AlreadySubmitted, LeaseLost, NotInAdjudication, RubricMismatch, SessionCapReached
from schemas import tables as t
from schemas.errors import InvalidInput
from services import db
from support.review import answer, make_items, make_reviewer

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc)
LEASE, CAP = 600, 90


@pytest.fixture
def sessions(database_url):
    engine = db.make_engine(database_url)
    yield db.session_factory(engine)
    engine.dispose()


def claim(sessions, reviewer_id, now=T0, **kw):
    with db.unit_of_work(sessions) as s:
        c = queue.claim_next(s, s.get(t.Reviewer, reviewer_id), now, LEASE, CAP, **kw)
        return None if c is None else (c.task_id, c.badcase_id, c.slot, c.ab_order, c.resumed)


def submit(sessions, reviewer_id, task_id, body, now=T0, **kw):
    with db.unit_of_work(sessions) as s:
        res = queue.submit(s, task_id, s.get(t.Reviewer, reviewer_id), body, now, **kw)
        return res.badcase_status, (res.decision.outcome if res.decision else None)


def setup(sessions, n=1, reviewers=3, **kw):
    with db.unit_of_work(sessions) as s:
        items = [b.id for b in make_items(s, n, **kw)]
        revs = [make_reviewer(s, f"r{i}").id for i in range(reviewers)]
        rubric = rubric_store.ensure_default(s).id
    return items, revs, rubric


def review_all(sessions, revs, bodies, now=T0, **kw):
    """Each reviewer claims the next item and submits its body; returns the last gate outcome."""
    outcome = None
    for rid, body in zip(revs, bodies):
        task_id = claim(sessions, rid, now)[0]
        outcome = submit(sessions, rid, task_id, body, now, **kw)
    return outcome


def test_claim_by_domain_and_priority_never_twice_and_one_holder_per_slot(sessions):
    with db.unit_of_work(sessions) as s:
        low, high = make_items(s, 2, priority=1.0)
        high.priority = 5.0
        code = make_items(s, 1, start=10, bucket="code", priority=9.0)[0]
        general, coder = make_reviewer(s, "gen").id, make_reviewer(s, "coder", domains=["code"]).id
        other = make_reviewer(s, "other").id
        ids = (low.id, high.id, code.id)
        rubric = rubric_store.ensure_default(s).id
    first = claim(sessions, general)
    assert first[1] == ids[1] and first[2] == 0  # highest priority in their domain; the code item is not theirs
    assert claim(sessions, coder)[1] == ids[2]
    assert claim(sessions, general)[0] == first[0] and claim(sessions, general)[4] is True  # same lease resumed
    second = claim(sessions, other)
    assert second[1] == ids[1] and second[2] == 1  # another slot of the same item, never the held one
    submit(sessions, general, first[0], answer(rubric))
    assert claim(sessions, general)[1] == ids[0]  # not the item they already reviewed
    with db.unit_of_work(sessions) as s:
        assert s.get(t.Badcase, ids[1]).status == "in_review"
        assert s.get(t.Badcase, ids[0]).status == "in_review"


def test_release_and_expired_lease_are_reclaimed_by_others_only(sessions):
    (item,), (r1, r2, r3), rubric = setup(sessions)
    task = claim(sessions, r1)[0]
    with db.unit_of_work(sessions) as s:
        queue.release(s, task, s.get(t.Reviewer, r1), T0)
    assert claim(sessions, r1) is None  # released: never again for r1
    again = claim(sessions, r2)
    assert again[0] == task  # the released slot comes back first
    later = T0 + timedelta(seconds=LEASE + 1)
    taken = claim(sessions, r3, later)
    assert taken[0] == task  # r2's lease expired: r3 takes the slot over
    with pytest.raises(LeaseLost):
        submit(sessions, r2, task, answer(rubric), later)
    with db.unit_of_work(sessions) as s:
        outcomes = dict(s.execute(select(t.ReviewClaim.reviewer_id, t.ReviewClaim.outcome)).all())
        assert outcomes == {r1: "released", r2: "expired", r3: None}
    submit(sessions, r3, task, answer(rubric), later)
    with pytest.raises(AlreadySubmitted):
        submit(sessions, r3, task, answer(rubric), later)


def test_blind_view_randomises_ab_per_reviewer_and_derandomises_the_preference(sessions):
    (item,), revs, rubric = setup(sessions)
    rng = random.Random(3)
    orders = []
    for rid in revs:
        task, _, _, ab, _ = claim(sessions, rid, rng=rng)
        orders.append(ab)
        with db.unit_of_work(sessions) as s:
            view = review_view.task_view(s, s.get(t.ReviewTask, task))
        rewrite_label = "B" if ab == "AB" else "A"
        shown = {r["label"]: r["text"] for r in view["responses"]}
        assert shown[rewrite_label] == "Better answer 0." and len(shown) == 2
        assert shown["A" if rewrite_label == "B" else "B"].startswith("To reset your password")
        assert view["resolution"] is None and "acme-chat" not in repr(view)  # no model identity
        assert view["rubric"]["id"] == rubric and view["pairwise"] is True
        submit(sessions, rid, task, answer(rubric, preference=rewrite_label))
        with db.unit_of_work(sessions) as s:
            mine = review_view.task_view(s, s.get(t.ReviewTask, task))
            assert mine["submission"]["preference"] == rewrite_label
    assert set(orders) == {"AB", "BA"}  # randomised per reviewer (seeded)
    with db.unit_of_work(sessions) as s:
        assert set(s.scalars(select(t.ReviewSubmission.preference))) == {"rewrite"}
        assert [x.ab_order for x in s.scalars(select(t.ReviewSubmission).order_by(t.ReviewSubmission.id))] == orders
        bc = s.get(t.Badcase, item)
        assert (bc.status, bc.chosen_response, bc.admitted) == ("resolved", "Better answer 0.", True)
        done = review_view.task_view(s, s.scalars(select(t.ReviewTask)).first())
        assert done["resolution"]["model"] == {"name": "acme-chat", "version": "v1"}
        assert len(done["resolution"]["reviews"]) == 3


def test_item_without_an_edit_shows_one_response_and_takes_no_preference(sessions):
    (item,), (r1, *_), rubric = setup(sessions, edit=False)
    task, _, _, ab, _ = claim(sessions, r1)
    assert ab is None
    with pytest.raises(InvalidInput) as exc:
        submit(sessions, r1, task, answer(rubric, preference="A"))
    assert exc.value.details[0]["loc"] == ["preference"]
    submit(sessions, r1, task, answer(rubric, preference=None))


@pytest.mark.parametrize("bodies, outcome, chosen, admitted", [
    ([dict(rewrite="Fixed.")] * 2 + [dict(verdict=False)], "resolved", "Fixed.", True),
    ([dict(verdict=False)] * 3, "dismissed", None, False),
    ([dict(category="sycophancy"), dict(category="verbosity"), dict(verdict=False)], "adjudication", None, False),
    ([dict(rewrite="One."), dict(rewrite="Two."), dict()], "adjudication", None, False),
    ([dict(preference="B")] * 3, "resolved", "USER_EDIT", True),
])
def test_gating_outcomes(sessions, bodies, outcome, chosen, admitted):
    (item,), revs, rubric = setup(sessions)
    rng = random.Random(0)
    for rid, over in zip(revs, bodies):
        task, _, _, ab, _ = claim(sessions, rid, rng=rng)
        over = dict(over)
        if over.get("preference") == "B":  # "B" here means: prefer the user's edit, wherever it was shown
            over["preference"] = "B" if ab == "AB" else "A"
        status, _ = submit(sessions, rid, task, answer(rubric, **over))
    assert status == outcome
    with db.unit_of_work(sessions) as s:
        bc = s.get(t.Badcase, item)
        assert bc.submissions_count == 3
        assert bc.chosen_response == ("Better answer 0." if chosen == "USER_EDIT" else chosen)
        assert bc.admitted is admitted
        if outcome == "adjudication":
            assert bc.resolution["reason"] == ("choose_rewrite" if bodies[0].get("rewrite") else "disagreement")


def test_policy_ambiguous_and_lead_adjudication(sessions):
    items, revs, rubric = setup(sessions, n=2)
    split = [dict(category="sycophancy"), dict(category="verbosity"), dict(verdict=False)]
    assert review_all(sessions, revs, [answer(rubric, **o) for o in split], policy="ambiguous")[0] == "ambiguous"
    assert review_all(sessions, revs, [answer(rubric, **o) for o in split])[0] == "adjudication"
    with db.unit_of_work(sessions) as s:
        lead = make_reviewer(s, "lead", role="lead")
        first = s.get(t.Badcase, items[0])
        assert first.resolution["prompt_flagged_for_rewrite"] is True and first.admitted is False
        with pytest.raises(NotInAdjudication):
            queue.adjudicate(s, items[0], lead, {"outcome": "resolved"}, T0)
        with pytest.raises(InvalidInput):
            queue.adjudicate(s, items[1], lead, {"outcome": "resolved", "category": "nope"}, T0)
        bc = queue.adjudicate(s, items[1], lead, {"outcome": "resolved", "category": "verbosity",
                                                   "chosen_response": "Short answer."}, T0)
        assert (bc.status, bc.chosen_response, bc.admitted) == ("resolved", "Short answer.", True)
        assert bc.resolution["adjudication"]["lead_id"] == lead.id


def test_no_training_consent_resolves_but_is_not_admitted(sessions):
    (item,), revs, rubric = setup(sessions, consent=False)
    assert review_all(sessions, revs, [answer(rubric, rewrite="Fixed.")] * 3)[0] == "resolved"
    with db.unit_of_work(sessions) as s:
        bc = s.get(t.Badcase, item)
        assert bc.admitted is False and bc.resolution["not_admitted"] == ["no training consent"]


def test_submission_is_validated_against_the_rubric_version_it_names(sessions):
    (item,), (r1, *_), rubric = setup(sessions)
    task = claim(sessions, r1)[0]
    bad = answer(rubric, category="typo", ratings={"helpfulness": 9, "charm": 3})
    with pytest.raises(InvalidInput) as exc:
        submit(sessions, r1, task, bad)
    locs = sorted(tuple(d["loc"]) for d in exc.value.details)
    assert locs == [("category",), ("ratings", "charm"), ("ratings", "harmlessness"), ("ratings", "helpfulness"),
                    ("ratings", "honesty")]
    with db.unit_of_work(sessions) as s:
        other = rubric_store.create_version(s, {**rubric_store.as_dict(s.get(t.RubricVersion, rubric))})
        assert other.version == 2 and s.get(t.RubricVersion, rubric).used is False
    with pytest.raises(RubricMismatch):
        submit(sessions, r1, task, answer(other.id))
    submit(sessions, r1, task, answer(rubric))
    with db.unit_of_work(sessions) as s:
        assert s.get(t.RubricVersion, rubric).used is True


def test_gold_items_are_mixed_in_scored_and_never_gated(sessions):
    items, revs, rubric = setup(sessions, n=2, reviewers=5)
    with db.unit_of_work(sessions) as s:
        gold = make_items(s, 1, start=50, priority=0.5, gold_answer={"verdict": True, "category": "factual_error"})[0].id
    for i, rid in enumerate(revs):  # all five get the gold item, beyond k = 3
        task, bid, slot, _, _ = claim(sessions, rid, gold_share=1.0)
        assert (bid, slot) == (gold, -rid)
        category = "factual_error" if i < 4 else "verbosity"
        assert submit(sessions, rid, task, answer(rubric, category=category)) == ("in_review", None)
    assert claim(sessions, revs[0], gold_share=1.0)[1] == items[0]  # no unseen gold left: a regular item
    with db.unit_of_work(sessions) as s:
        acc = {g["reviewer_id"]: g["gold_accuracy"] for g in consensus.gold_accuracy(s)}
        assert acc == {revs[0]: 1.0, revs[1]: 1.0, revs[2]: 1.0, revs[3]: 1.0, revs[4]: 0.0}
        bc = s.get(t.Badcase, gold)
        assert bc.submissions_count == 0 and bc.admitted is False
        own = consensus.reviewer_stats(s, revs[4], T0)
        assert own["submitted"] == 1 and not any("gold" in k for k in own)  # gold stays unannounced


def test_session_cap_then_a_break(sessions):
    items, (r1, *_), rubric = setup(sessions, n=12, reviewers=1, k=1)
    now = T0
    for _ in range(9):  # a claim and a submit every 10 minutes: 90 minutes of unbroken reviewing
        task = claim(sessions, r1, now)[0]
        submit(sessions, r1, task, answer(rubric), now + timedelta(minutes=5))
        now += timedelta(minutes=10)
    with pytest.raises(SessionCapReached) as exc:
        claim(sessions, r1, now)
    assert exc.value.code == "session_cap_reached" and exc.value.status == 429
    assert claim(sessions, r1, now + timedelta(minutes=16)) is not None  # after a break, a new session


def test_a_submit_after_a_break_ends_the_session_and_starts_a_new_one(sessions):
    (item,), (r1, *_), rubric = setup(sessions, reviewers=1, k=1)
    task = claim(sessions, r1, T0)[0]
    later = T0 + timedelta(minutes=20)  # longer than the break that ends a session
    assert submit(sessions, r1, task, answer(rubric), later)[0] == "resolved"
    with db.unit_of_work(sessions) as s:
        rows = s.scalars(select(t.ReviewSession).where(t.ReviewSession.reviewer_id == r1)
                         .order_by(t.ReviewSession.id)).all()
        assert [(queue.aware(r.started_at), queue.aware(r.last_activity_at), queue.aware(r.ended_at))
                for r in rows] == [(T0, T0, T0), (later, later, None)]
        sub = s.scalars(select(t.ReviewSubmission)).one()
        body = answer(rubric)
        assert sub.ab_order in ("AB", "BA") and sub.preference == derandomise(body["preference"], sub.ab_order)
        assert (sub.duration_s, sub.ratings, sub.reviewer_id, sub.rubric_version_id) == (1200.0, body["ratings"], r1,
                                                                                         rubric)
        claim_row = s.scalars(select(t.ReviewClaim)).one()
        assert (claim_row.outcome, queue.aware(claim_row.ended_at)) == ("submitted", later)
        assert s.get(t.ReviewTask, task).status == "submitted" and s.get(t.ReviewTask, task).lease_expires_at is None


def _review_window(sessions, revs, rubric, labels, now):
    """Each reviewer labels item j with labels[reviewer][j] (a category, or None for "not a badcase")."""
    for j in range(len(labels[0])):
        for r, rid in enumerate(revs):
            task = claim(sessions, rid, now)[0]
            cat = labels[r][j]
            submit(sessions, rid, task, answer(rubric, verdict=cat is not None, category=cat, rewrite="Fixed."), now)


def test_agreement_window_flags_a_rubric_below_04_and_pauses_its_queue(sessions):
    items, revs, rubric = setup(sessions, n=14, batch="b1")
    cats = ["factual_error", "sycophancy", "verbosity", None]
    rng = random.Random(7)
    labels = [[rng.choice(cats) for _ in range(12)] for _ in revs]  # independent random labels: alpha near 0
    _review_window(sessions, revs, rubric, labels, T0)
    with db.unit_of_work(sessions) as s:
        rec = consensus.record(s, rubric, "b1", T0 + timedelta(hours=1), min_items=10)
        report = rec.report
        assert report.n_items == 12 and report.krippendorff_alpha < 0.4
        assert report.status == "needs_revision" and report.fleiss_kappa is not None
        assert set(report.per_reviewer) == {str(r) for r in revs}
        assert [e["event"] for e in rec.events] == ["review.agreement.below_threshold"]
        assert s.get(t.RubricVersion, rubric).status == "needs_revision"
        assert s.scalar(select(func.count()).select_from(t.Badcase).where(t.Badcase.admitted.is_(True))) == 0
    assert claim(sessions, revs[0], T0 + timedelta(hours=2)) is None  # two items left, but the queue is paused
    with db.unit_of_work(sessions) as s:  # a second report does not notify again
        assert consensus.record(s, rubric, "b1", T0 + timedelta(hours=3)).events == []


def test_agreement_window_of_agreeing_reviewers_is_ok(sessions):
    items, revs, rubric = setup(sessions, n=12, batch="b2")
    cats = ["factual_error", "sycophancy", "verbosity", None] * 3
    _review_window(sessions, revs, rubric, [cats, cats, cats[:-1] + ["factual_error"]], T0)
    with db.unit_of_work(sessions) as s:
        assert consensus.record(s, rubric, "b2", T0, min_items=20).report is None  # too few items yet
        rep = consensus.record(s, rubric, "b2", T0).report
        assert rep.status == "ok" and rep.krippendorff_alpha > 0.8
        assert s.get(t.RubricVersion, rubric).status == "active"
        rows = consensus.reports(s, rubric_version_id=rubric, batch="b2", reviewer_id=revs[2])
        assert [r.id for r in rows] == [rep.id]
        assert rep.per_reviewer[str(revs[0])]["kappa"] > rep.per_reviewer[str(revs[2])]["kappa"]
