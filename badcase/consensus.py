"""Agreement over time: sliding-window reports per rubric version and batch, per-reviewer kappa, gold accuracy.

Queries beside the pure metrics of `badcase.agreement` and `badcase.gating`. Functions take the caller's session
and only flush. `record` is meant to run in its own short transaction after a gated submission commits, so the
rubric row lock it takes never sits inside the submit's locks.
"""

import functools
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import bindparam, case, func, select, update
from sqlalchemy.orm import Session

from badcase import agreement, gating, queue
from schemas import tables as t

WINDOW, MIN_ITEMS = 50, 10
REVISE_BELOW, TARGET = 0.4, 0.6
BELOW_THRESHOLD_EVENT = "review.agreement.below_threshold"


@dataclass
class Recorded:
    """The report written for a window (None when too few items), and events for leads and ops."""

    report: t.AgreementReport | None
    events: list[dict[str, Any]] = field(default_factory=list)


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 6)


@functools.cache
def _window_stmt(scoped_rubric: bool, scoped_batch: bool):
    """Built once: the submissions of the latest gated items of a rubric version and batch, newest gate first."""
    bc, sub = t.Badcase, t.ReviewSubmission
    gated_at = func.max(sub.created_at).label("gated_at")
    items = (select(bc.id.label("item_id"), gated_at).join(sub, sub.badcase_id == bc.id)
             .where(bc.is_gold.is_(False), bc.status.in_(queue.DECIDED), bc.submissions_count >= bc.required_reviews,
                    bc.rubric_version_id == bindparam("rubric") if scoped_rubric else bc.rubric_version_id.is_(None),
                    bc.review_batch == bindparam("batch") if scoped_batch else bc.review_batch.is_(None))
             .group_by(bc.id).order_by(gated_at.desc(), bc.id.desc()).limit(bindparam("size")).subquery())
    return (select(items.c.item_id, sub.reviewer_id, sub.verdict, sub.category).join(sub, sub.badcase_id == items.c.item_id)
            .order_by(items.c.gated_at.desc(), items.c.item_id.desc(), sub.id))


def window(session: Session, rubric_version_id: int | None, batch: str | None,
           size: int = WINDOW) -> dict[int, list[gating.Submission]]:
    """The blind submissions of the latest `size` gated (non-gold) items of a rubric version and batch, by item,
    newest gate first: one query."""
    out: dict[int, list[gating.Submission]] = {}
    rows = session.execute(_window_stmt(rubric_version_id is not None, batch is not None),
                           {"rubric": rubric_version_id, "batch": batch, "size": size})
    for bid, rid, verdict, category in rows:
        out.setdefault(bid, []).append(gating.Submission(str(rid), verdict, category))
    return out


def per_reviewer(subs: dict[int, list[gating.Submission]]) -> dict[str, dict[str, Any]]:
    """Each reviewer's mean pairwise Cohen's kappa against the others, and how many window items they reviewed."""
    if not subs:
        return {}
    matrix, reviewers, _ = gating.label_matrix(subs)
    kappas = agreement.pairwise_kappa(matrix)
    items = (~np.isnan(matrix)).sum(axis=1)
    return {r: {"kappa": _finite(k), "items": int(n)} for r, k, n in zip(reviewers, kappas, items)}


def record(session: Session, rubric_version_id: int | None, batch: str | None, now: datetime, *,
           size: int = WINDOW, min_items: int = MIN_ITEMS) -> Recorded:
    """Write an agreement report over the window; below 0.4 flag the rubric version and pause its queue."""
    rubric = queue.locked(session, t.RubricVersion, rubric_version_id) if rubric_version_id is not None else None
    subs = window(session, rubric_version_id, batch, size)
    if len(subs) < min_items:
        return Recorded(None)
    ids = list(subs)
    ba = gating.batch_agreement(subs, revise_below=REVISE_BELOW, target=TARGET)
    report = t.AgreementReport(
        rubric_version_id=rubric_version_id, review_batch=batch, n_items=ba.items,
        krippendorff_alpha=_finite(ba.alpha), fleiss_kappa=_finite(ba.fleiss_kappa), status=ba.status,
        per_reviewer=per_reviewer(subs), created_at=now,
        details={"window": size, "reviewers": ba.reviewers, "fleiss_items": ba.fleiss_items,
                 "revise_below": REVISE_BELOW, "target": TARGET, "items": ids})
    session.add(report)
    events = []
    if ba.status == gating.NEEDS_REVISION and rubric is not None and rubric.status == "active":
        rubric.status = "needs_revision"
        # The window's items passed their own gate but not the batch gate: keep them out of training data.
        session.execute(update(t.Badcase).where(t.Badcase.id.in_(ids), t.Badcase.admitted.is_(True))
                        .values(admitted=False).execution_options(synchronize_session=False))
        events.append({"event": BELOW_THRESHOLD_EVENT, "rubric_version_id": rubric_version_id, "review_batch": batch,
                       "krippendorff_alpha": report.krippendorff_alpha, "fleiss_kappa": report.fleiss_kappa,
                       "n_items": ba.items, "threshold": REVISE_BELOW, "notify": ["lead", "ops"],
                       "message": f"agreement alpha={report.krippendorff_alpha} over the last {ba.items} items is "
                                  f"below {REVISE_BELOW}: rubric version {rubric_version_id} needs revision; "
                                  "its queue is paused"})
    session.flush()
    return Recorded(report, events)


def gold_accuracy(session: Session, reviewer_id: int | None = None, since: datetime | None = None,
                  until: datetime | None = None) -> list[dict[str, Any]]:
    """Per reviewer: gold items answered, how many correctly, and the accuracy."""
    sub = t.ReviewSubmission
    q = (select(sub.reviewer_id, func.count(), func.sum(case((sub.gold_correct.is_(True), 1), else_=0)))
         .where(sub.is_gold.is_(True), sub.gold_correct.is_not(None)).group_by(sub.reviewer_id).order_by(sub.reviewer_id))
    if reviewer_id is not None:
        q = q.where(sub.reviewer_id == reviewer_id)
    if since is not None:
        q = q.where(sub.created_at >= since)
    if until is not None:
        q = q.where(sub.created_at < until)
    return [{"reviewer_id": rid, "gold_n": int(n), "gold_correct": int(c or 0), "gold_accuracy": (c or 0) / n}
            for rid, n, c in session.execute(q)]


def reviewer_stats(session: Session, reviewer_id: int, now: datetime) -> dict[str, Any]:
    """A reviewer's own figures: submissions, agreement with the gate's outcome, latest kappa, session minutes.

    No gold figures: a reviewer watching them change would learn which items were gold.
    """
    sub, bc = t.ReviewSubmission, t.Badcase
    rows = session.execute(select(sub.verdict, sub.category, bc.resolution, bc.status).join(bc, bc.id == sub.badcase_id)
                           .where(sub.reviewer_id == reviewer_id)).all()  # gold included, or the count would tell
    decided = [(v, c, r) for v, c, r, s in rows if s in queue.DECIDED and r and r.get("verdict") is not None]
    agreed = sum(1 for v, c, r in decided if v == r["verdict"] and (not v or c == r.get("category")))
    kappa = None
    for rep in session.scalars(select(t.AgreementReport).order_by(t.AgreementReport.id.desc()).limit(200)):
        if str(reviewer_id) in (rep.per_reviewer or {}):
            kappa = rep.per_reviewer[str(reviewer_id)].get("kappa")
            break
    current = session.scalars(select(t.ReviewSession).where(t.ReviewSession.reviewer_id == reviewer_id,
                                                            t.ReviewSession.ended_at.is_(None))
                              .order_by(t.ReviewSession.id.desc()).limit(1)).first()
    minutes = 0.0
    if current is not None and now - queue.aware(current.last_activity_at) <= queue.SESSION_BREAK:
        minutes = (now - queue.aware(current.started_at)).total_seconds() / 60
    return {"reviewer_id": reviewer_id, "submitted": len(rows), "decided": len(decided),
            "agreed_with_outcome": agreed, "agreement_rate": agreed / len(decided) if decided else None,
            "pairwise_kappa": kappa, "session_minutes": round(minutes, 1)}


def reports(session: Session, *, rubric_version_id: int | None = None, batch: str | None = None,
            reviewer_id: int | None = None, since: datetime | None = None, until: datetime | None = None,
            limit: int = 500) -> list[t.AgreementReport]:
    """Stored agreement reports, oldest first, filtered by rubric version, batch, reviewer and time."""
    ar = t.AgreementReport
    q = select(ar).order_by(ar.id.desc()).limit(limit)
    if rubric_version_id is not None:
        q = q.where(ar.rubric_version_id == rubric_version_id)
    if batch is not None:
        q = q.where(ar.review_batch == batch)
    if since is not None:
        q = q.where(ar.created_at >= since)
    if until is not None:
        q = q.where(ar.created_at < until)
    rows = list(session.scalars(q))[::-1]
    if reviewer_id is not None:  # per_reviewer is JSON: filter here rather than with dialect-specific operators
        rows = [r for r in rows if str(reviewer_id) in (r.per_reviewer or {})]
    return rows


def latest_by_rubric(session: Session) -> dict[int | None, t.AgreementReport]:
    """The newest report of each rubric version."""
    ar = t.AgreementReport
    newest = select(func.max(ar.id)).group_by(ar.rubric_version_id)
    return {rep.rubric_version_id: rep for rep in session.scalars(select(ar).where(ar.id.in_(newest)))}


def by_reviewer_series(rows: list[t.AgreementReport]) -> dict[str, list[tuple[datetime, float | None]]]:
    """Per reviewer, their pairwise kappa in each report, in time order."""
    series: dict[str, list] = defaultdict(list)
    for rep in rows:
        for rid, vals in (rep.per_reviewer or {}).items():
            series[rid].append((rep.created_at, vals.get("kappa")))
    return dict(series)
