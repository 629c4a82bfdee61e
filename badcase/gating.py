"""Agreement gating: does a reviewed item resolve, and is a review batch reliable enough to use?

Pure decisions over plain values, no database. `decide` looks at the k blind submissions of one
item; `batch_agreement` looks at a whole batch (items x reviewers) and says whether the rubric or the
reviewers need attention before the batch may feed training data.
"""

from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from badcase import agreement

RESOLVED, DISMISSED, ADJUDICATION, AMBIGUOUS = "resolved", "dismissed", "adjudication", "ambiguous"
POLICIES = (ADJUDICATION, AMBIGUOUS)
NEEDS_REVISION, BELOW_TARGET, OK, INSUFFICIENT_DATA = "needs_revision", "below_target", "ok", "insufficient_data"
# Float slack so that 2 of 3 meets a threshold of 2/3 however the threshold was written down.
_EPS = 1e-9


@dataclass(frozen=True)
class Submission:
    """One reviewer's blind verdict on one item."""

    reviewer_id: str
    verdict: bool
    category: str | None = None
    rewrite: str | None = None


@dataclass(frozen=True)
class Decision:
    """The gate's outcome for one item, with the side that carried it."""

    outcome: str
    verdict: bool | None
    category: str | None
    share: float
    supporters: tuple[str, ...]
    candidates: tuple[str, ...] = ()
    chosen: str | None = None
    needs_lead_pick: bool = False


@dataclass(frozen=True)
class BatchAgreement:
    """Agreement of one review batch and what it means for the batch."""

    alpha: float
    fleiss_kappa: float | None
    status: str
    items: int
    reviewers: int
    fleiss_items: int


def label_of(submission: Submission) -> tuple[bool, str | None]:
    """The nominal label a submission votes for: (verdict, category), category ignored when not a badcase."""
    # A "not a badcase" vote carries no failure category; a stray one must not split the vote.
    return (True, submission.category) if submission.verdict else (False, None)


def _candidates(side: Sequence[Submission]) -> tuple[str, ...]:
    """Distinct non-blank rewrites of one side, in submission order."""
    seen: dict[str, None] = {}
    for s in side:
        if s.rewrite is not None and s.rewrite.strip():
            seen.setdefault(s.rewrite.strip(), None)
    return tuple(seen)


def decide(submissions: Sequence[Submission], threshold: float = 2 / 3, policy: str = ADJUDICATION) -> Decision:
    """Gate one item: resolve or dismiss when a share >= threshold agrees on (verdict, category), else apply policy."""
    if not submissions:
        raise ValueError("decide needs at least one submission")
    if not 0.5 < threshold <= 1.0:
        raise ValueError("threshold must be in (0.5, 1] so that at most one side can reach it")
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    reviewers = [s.reviewer_id for s in submissions]
    if len(set(reviewers)) != len(reviewers):
        raise ValueError("each reviewer may submit once per item")
    votes = Counter(label_of(s) for s in submissions)
    (verdict, category), count = votes.most_common(1)[0]
    share = count / len(submissions)
    if share + _EPS < threshold:
        return Decision(outcome=policy, verdict=None, category=None, share=share, supporters=())
    side = [s for s in submissions if label_of(s) == (verdict, category)]
    supporters = tuple(s.reviewer_id for s in side)
    if not verdict:
        return Decision(outcome=DISMISSED, verdict=False, category=None, share=share, supporters=supporters)
    candidates = _candidates(side)
    return Decision(
        outcome=RESOLVED,
        verdict=True,
        category=category,
        share=share,
        supporters=supporters,
        candidates=candidates,
        chosen=candidates[0] if len(candidates) == 1 else None,
        needs_lead_pick=len(candidates) > 1,
    )


def label_matrix(
    submissions_by_item: Mapping[Hashable, Sequence[Submission]],
) -> tuple[np.ndarray, list[str], list[tuple[bool, str | None]]]:
    """Reviewers x items matrix of label codes (NaN = not reviewed), with the reviewer ids and labels the codes index."""
    reviewers = sorted({s.reviewer_id for subs in submissions_by_item.values() for s in subs})
    labels = sorted({label_of(s) for subs in submissions_by_item.values() for s in subs}, key=repr)
    row, code = {r: i for i, r in enumerate(reviewers)}, {lab: i for i, lab in enumerate(labels)}
    matrix = np.full((len(reviewers), len(submissions_by_item)), np.nan)
    for col, subs in enumerate(submissions_by_item.values()):
        for s in subs:
            matrix[row[s.reviewer_id], col] = code[label_of(s)]
    return matrix, reviewers, labels


def agreement_status(alpha: float, revise_below: float = 0.4, target: float = 0.6) -> str:
    """needs_revision below `revise_below`, ok at or above `target`, below_target in between; NaN is insufficient_data."""
    if not np.isfinite(alpha):
        return INSUFFICIENT_DATA
    if alpha < revise_below:
        return NEEDS_REVISION
    return OK if alpha >= target else BELOW_TARGET


def batch_agreement(
    submissions_by_item: Mapping[Hashable, Sequence[Submission]],
    revise_below: float = 0.4,
    target: float = 0.6,
) -> BatchAgreement:
    """Krippendorff's alpha (nominal) and Fleiss' kappa of a batch's (verdict, category) labels, with a status."""
    matrix, reviewers, _ = label_matrix(submissions_by_item)
    alpha = agreement.krippendorff_alpha(matrix, level="nominal") if matrix.size else float("nan")
    kappa, fleiss_items = None, 0
    if matrix.size:
        # Fleiss' kappa needs a constant number of raters per item: use the items with the full k.
        counts, _ = agreement.rating_counts(matrix)
        per_item = counts.sum(axis=1)
        full = per_item == per_item.max()
        if per_item.max() >= 2:
            kappa, fleiss_items = agreement.fleiss_kappa(counts[full]), int(full.sum())
    return BatchAgreement(
        alpha=alpha,
        fleiss_kappa=kappa,
        status=agreement_status(alpha, revise_below, target),
        items=len(submissions_by_item),
        reviewers=len(reviewers),
        fleiss_items=fleiss_items,
    )
