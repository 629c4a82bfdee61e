"""Agreement gate: per-item decisions on constructed submissions, and batch agreement status."""

import krippendorff
import numpy as np
import pytest
from statsmodels.stats import inter_rater

from badcase import gating
from badcase.gating import Submission


def sub(reviewer: str, verdict: bool, category: str | None = None, rewrite: str | None = None) -> Submission:
    """A submission, positionally."""
    return Submission(reviewer_id=reviewer, verdict=verdict, category=category, rewrite=rewrite)


def test_three_agree_with_one_rewrite_resolves_with_it():
    """3 of 3 on (badcase, category), the same rewrite typed twice: resolved, chosen without a lead."""
    decision = gating.decide(
        [sub("r1", True, "factual", "Paris."), sub("r2", True, "factual", " Paris. "), sub("r3", True, "factual")]
    )
    assert decision.outcome == "resolved"
    assert (decision.verdict, decision.category, decision.share) == (True, "factual", 1.0)
    assert decision.supporters == ("r1", "r2", "r3")
    assert decision.candidates == ("Paris.",)
    assert decision.chosen == "Paris."
    assert decision.needs_lead_pick is False


def test_two_of_three_resolves_with_the_majority_rewrite_only():
    """2 of 3 meets 2/3; the dissenter's rewrite is not a candidate."""
    decision = gating.decide(
        [sub("r1", True, "unsafe", "I can't help with that."), sub("r2", True, "unsafe"), sub("r3", True, "tone", "Sure!")]
    )
    assert decision.outcome == "resolved"
    assert decision.category == "unsafe"
    assert decision.share == pytest.approx(2 / 3)
    assert decision.supporters == ("r1", "r2")
    assert decision.candidates == ("I can't help with that.",)
    assert decision.chosen == "I can't help with that."


def test_one_one_one_split_goes_to_policy():
    """Three different labels: below threshold, outcome is the policy, no side chosen."""
    split = [sub("r1", True, "factual", "A"), sub("r2", True, "unsafe", "B"), sub("r3", False)]
    adjudication = gating.decide(split)
    assert adjudication.outcome == "adjudication"
    assert (adjudication.verdict, adjudication.supporters, adjudication.chosen) == (None, (), None)
    assert adjudication.share == pytest.approx(1 / 3)
    assert gating.decide(split, policy="ambiguous").outcome == "ambiguous"


def test_same_verdict_different_category_does_not_resolve():
    """Agreeing it is a badcase but not on why is not agreement."""
    decision = gating.decide([sub("r1", True, "factual"), sub("r2", True, "unsafe"), sub("r3", True, "tone")])
    assert decision.outcome == "adjudication"


def test_not_a_badcase_majority_dismisses():
    """2 of 3 say not a badcase (a stray category does not split them): dismissed, no candidates."""
    decision = gating.decide([sub("r1", False), sub("r2", False, "tone", "x"), sub("r3", True, "unsafe", "y")])
    assert decision.outcome == "dismissed"
    assert (decision.verdict, decision.category) == (False, None)
    assert decision.supporters == ("r1", "r2")
    assert (decision.candidates, decision.chosen, decision.needs_lead_pick) == ((), None, False)


def test_several_rewrites_need_a_lead_pick():
    """The agreeing side wrote two different rewrites: resolved, nothing chosen, lead must pick."""
    decision = gating.decide(
        [sub("r1", True, "factual", "Paris."), sub("r2", True, "factual", "It is Paris."), sub("r3", True, "factual", "Paris.")]
    )
    assert decision.outcome == "resolved"
    assert decision.candidates == ("Paris.", "It is Paris.")
    assert decision.chosen is None
    assert decision.needs_lead_pick is True


def test_agreed_badcase_without_rewrite_has_no_candidate():
    """Resolved with no rewrite: nothing to choose and nothing for a lead to pick."""
    decision = gating.decide([sub("r1", True, "tone"), sub("r2", True, "tone", "   ")])
    assert (decision.outcome, decision.candidates, decision.chosen, decision.needs_lead_pick) == ("resolved", (), None, False)


def test_threshold_is_a_share_of_all_submissions():
    """3 of 5 is 0.6: resolves at 0.6, goes to policy at 2/3 and at 0.75."""
    five = [sub("a", True, "c"), sub("b", True, "c"), sub("c", True, "c"), sub("d", False), sub("e", True, "z")]
    assert gating.decide(five, threshold=0.6).outcome == "resolved"
    assert gating.decide(five).outcome == "adjudication"
    assert gating.decide(five, threshold=0.75, policy="ambiguous").outcome == "ambiguous"
    four = [sub("a", True, "c"), sub("b", True, "c"), sub("c", True, "c"), sub("d", False)]
    assert gating.decide(four, threshold=0.75).outcome == "resolved"


@pytest.mark.parametrize(
    ("submissions", "kwargs"),
    [
        ([], {}),
        ([sub("r1", True, "c"), sub("r1", True, "c")], {}),
        ([sub("r1", True, "c")], {"threshold": 0.5}),
        ([sub("r1", True, "c")], {"policy": "discard"}),
    ],
)
def test_invalid_input_is_rejected(submissions, kwargs):
    """No submissions, a reviewer twice, a threshold two sides could both reach, or an unknown policy."""
    with pytest.raises(ValueError):
        gating.decide(submissions, **kwargs)


# --- Batch agreement -------------------------------------------------------------------------------


def batch(labels_by_item: list[list[str | None]]) -> dict[str, list[Submission]]:
    """Items of submissions from per-reviewer labels ("ok" = not a badcase, None = reviewer skipped the item)."""
    return {
        f"item{i}": [
            sub(f"r{j}", label != "ok", None if label == "ok" else label)
            for j, label in enumerate(labels)
            if label is not None
        ]
        for i, labels in enumerate(labels_by_item)
    }


def test_batch_agreement_equals_reference_libraries():
    """Alpha and Fleiss' kappa of a batch equal krippendorff / statsmodels on the same label codes."""
    rng = np.random.default_rng(3)
    cats = np.array(["ok", "factual", "unsafe", "tone"])
    truth = rng.integers(0, 4, size=60)
    labels = np.where(rng.random((60, 3)) < 0.75, truth[:, None], rng.integers(0, 4, size=(60, 3)))
    rows = [list(cats[row]) for row in labels]
    rows[5][1] = None  # one reviewer skipped one item: alpha keeps it, Fleiss leaves it out
    result = gating.batch_agreement(batch(rows))
    matrix, reviewers, _ = gating.label_matrix(batch(rows))
    assert (result.items, result.reviewers, result.fleiss_items) == (60, 3, 59)
    assert result.alpha == pytest.approx(krippendorff.alpha(matrix, level_of_measurement="nominal"), abs=1e-9)
    full = ~np.isnan(matrix).any(axis=0)
    table, _ = inter_rater.aggregate_raters(matrix[:, full].T)
    assert result.fleiss_kappa == pytest.approx(inter_rater.fleiss_kappa(table), abs=1e-9)


@pytest.mark.parametrize(
    ("alpha", "status"),
    [(0.2, "needs_revision"), (0.3999, "needs_revision"), (0.4, "below_target"), (0.59, "below_target"),
     (0.6, "ok"), (0.95, "ok"), (float("nan"), "insufficient_data")],
)
def test_agreement_status_bands(alpha, status):
    """< 0.4 needs revision, >= 0.6 meets the target, in between is below target."""
    assert gating.agreement_status(alpha) == status


def test_batch_status_follows_agreement():
    """A batch where reviewers agree is ok; one where they label at random needs revision."""
    agreeing = [["factual", "factual", "factual"], ["ok", "ok", "ok"], ["unsafe", "unsafe", "tone"], ["ok", "ok", "ok"]] * 5
    assert gating.batch_agreement(batch(agreeing)).status == "ok"
    rng = np.random.default_rng(11)
    noise = [list(row) for row in rng.choice(["ok", "factual", "unsafe"], size=(40, 3))]
    assert gating.batch_agreement(batch(noise)).status == "needs_revision"
    unanimous = gating.batch_agreement(batch([["ok", "ok"]] * 4))
    assert (unanimous.status, np.isnan(unanimous.alpha)) == ("insufficient_data", True)
