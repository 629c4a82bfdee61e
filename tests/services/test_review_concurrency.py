"""20 reviewers claiming and submitting at once: no slot held twice, no reviewer twice on an item, exactly k each."""

import random
import threading
import time
from collections import Counter

import pytest
from sqlalchemy import func, select

from schemas import tables as t
from services import auth, db, review
from services.settings import Settings
from support.review import ALL_GOOD, make_items

REVIEWERS, ITEMS, K = 20, 30, 3
CATEGORIES = ["factual_error", "sycophancy", "verbosity", "formatting"]


def _setup(sessions):
    with db.unit_of_work(sessions) as s:
        ids = [b.id for b in make_items(s, ITEMS, k=K)]
        keys = []
        for i in range(REVIEWERS):
            key, _ = auth.create_key(s, role="reviewer", name=f"r{i}")
            s.add(t.Reviewer(name=f"r{i}", domains=["*"], api_key_id=key.id))
            keys.append(key)
    return ids, keys


def _leased(sessions) -> int:
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(t.ReviewTask).where(t.ReviewTask.status == "leased"))


def _reviewer_loop(sessions, settings, key, seed, held, guard, gated, failures):
    """Claim and submit (sometimes release) until nothing is left for this reviewer."""
    rng = random.Random(seed)
    try:
        while True:
            task = review.claim(sessions, settings, key)
            if task is None:
                if _leased(sessions):  # a slot someone holds may still be released: look again shortly
                    time.sleep(0.02)
                    continue
                return
            tid = task["task_id"]
            with guard:
                if tid in held:
                    failures.append(f"task {tid} leased to {key.name} while {held[tid]} holds it")
                held[tid] = key.name
            if rng.random() < 0.1:
                with guard:
                    held.pop(tid)
                review.release(sessions, key, tid)
                continue
            # Mostly agree on the item's "true" category, so the window stays above 0.4 and nothing pauses.
            truth = CATEGORIES[task["badcase_id"] % len(CATEGORIES)]
            category = truth if rng.random() < 0.95 else rng.choice(CATEGORIES)
            answer = {"rubric_version_id": task["rubric"]["id"], "verdict": True, "category": category,
                      "ratings": ALL_GOOD, "preference": rng.choice(["A", "B", "tie"]), "rewrite": f"Fixed {truth}.",
                      "critique": None, "justification": "Per rubric."}
            with guard:
                held.pop(tid)
            out = review.submit(sessions, settings, key, tid, answer)
            if out.outcome is not None:
                with guard:
                    gated[out.badcase_id] += 1
    except Exception as exc:  # surfaced by the assertion below, with the thread's name
        failures.append(f"{key.name}: {exc!r}")


@pytest.mark.timeout(120)
def test_twenty_concurrent_reviewers(database_url):
    settings = Settings(database_url=database_url, gold_share=0.0)
    engine = db.make_engine(database_url)
    sessions = db.session_factory(engine)
    ids, keys = _setup(sessions)
    held, guard, gated, failures = {}, threading.Lock(), Counter(), []
    threads = [threading.Thread(target=_reviewer_loop, args=(sessions, settings, k, i, held, guard, gated, failures))
               for i, k in enumerate(keys)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert failures == []
    with sessions() as s:
        per_item = dict(s.execute(select(t.ReviewSubmission.badcase_id, func.count())
                                  .group_by(t.ReviewSubmission.badcase_id)).all())
        assert per_item == {i: K for i in ids}  # every item ends with exactly k submissions
        pairs = s.execute(select(t.ReviewSubmission.badcase_id, t.ReviewSubmission.reviewer_id)).all()
        assert len(pairs) == len(set(pairs))  # no reviewer twice on an item
        claims = s.execute(select(t.ReviewClaim.badcase_id, t.ReviewClaim.reviewer_id)).all()
        assert len(claims) == len(set(claims))
        statuses = Counter(s.scalars(select(t.Badcase.status)))
        assert sum(statuses.values()) == ITEMS and set(statuses) <= {"resolved", "adjudication"}
        counts = set(s.scalars(select(t.Badcase.submissions_count)))
        assert counts == {K}
        assert s.scalar(select(func.count()).select_from(t.ReviewTask).where(t.ReviewTask.status != "submitted")) == 0
        assert s.get(t.RubricVersion, s.scalar(select(t.Badcase.rubric_version_id).limit(1))).status == "active"
        assert s.scalar(select(func.count()).select_from(t.AgreementReport)) > 0
    assert gated == Counter({i: 1 for i in ids})  # the k-th submission gated each item exactly once
    engine.dispose()
