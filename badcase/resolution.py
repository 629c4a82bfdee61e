"""Resolution of reviewed items: the per-item gate applied under the badcase's row lock, and lead adjudication.

Functions take the caller's session, flush, and never commit.
"""

from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from badcase import gating, routing
from badcase import rubric as rubric_mod
from badcase.review_errors import NotALead, NotInAdjudication
from badcase.review_rows import ACTIVE, alternative_response, clean_text, locked
from schemas import tables as t
from schemas.errors import InvalidInput, NotFound


def gate(session: Session, badcase_id: int, now: datetime, threshold: float,
         policy: str) -> gating.Decision | None:
    """Count this submission under the item's row lock; gate the item exactly once, when the count reaches k.

    The increment is one UPDATE: it takes the row lock and, when another submitter committed first, counts on
    top of their row version, so two reviewers submitting at once can neither both miss nor both make the k-th.
    """
    bc = t.Badcase
    count, required, status = session.execute(
        update(bc).where(bc.id == badcase_id).values(submissions_count=bc.submissions_count + 1)
        .returning(bc.submissions_count, bc.required_reviews, bc.status)
        .execution_options(synchronize_session=False)).one()
    return settle(session, badcase_id, count, required, status, now, threshold, policy)[0]


def settle(session: Session, badcase_id: int, count: int, required: int, status: str, now: datetime,
           threshold: float, policy: str) -> tuple[gating.Decision | None, str]:
    """The gate after the count: when this submission was the k-th on an active item, decide it (still under the
    row lock the count took). The decision (None: not gated now) and the item's status after it."""
    if count < required or status not in ACTIVE:
        return None, status
    bc = t.Badcase
    badcase = session.scalars(select(bc).where(bc.id == badcase_id).execution_options(populate_existing=True)).one()
    subs = list(session.scalars(select(t.ReviewSubmission).where(t.ReviewSubmission.badcase_id == badcase_id)
                                .order_by(t.ReviewSubmission.id)))
    decision = gating.decide([gating.Submission(str(s.reviewer_id), s.verdict, s.category, s.rewrite) for s in subs],
                             threshold=threshold, policy=policy)
    _apply(session, badcase, decision, subs, now)
    session.flush()
    return decision, badcase.status


def admit(session: Session, badcase: t.Badcase) -> None:
    """Set `admitted` by admission control (resolved, consented, not gold, a chosen response, rubric not flagged)."""
    rubric = session.get(t.RubricVersion, badcase.rubric_version_id) if badcase.rubric_version_id else None
    interaction = session.get(t.Interaction, badcase.interaction_id)
    ok, why = routing.admission(status=badcase.status, consent_training=interaction.consent_training,
                                is_gold=badcase.is_gold, has_chosen=bool(badcase.chosen_response),
                                rubric_status=rubric.status if rubric else "active")
    badcase.admitted = ok
    badcase.resolution = {**(badcase.resolution or {}), "not_admitted": why}


def _apply(session: Session, badcase: t.Badcase, decision: gating.Decision, subs: list[t.ReviewSubmission],
           now: datetime) -> None:
    """Move a gated item to its outcome and record why."""
    resolution = {"outcome": decision.outcome, "verdict": decision.verdict, "category": decision.category,
                  "share": round(decision.share, 6), "supporters": [int(r) for r in decision.supporters],
                  "reviews": len(subs), "gated_at": now.isoformat()}
    chosen, status = None, decision.outcome
    if decision.outcome == gating.RESOLVED:
        if decision.needs_lead_pick:
            status = gating.ADJUDICATION
            resolution.update(reason="choose_rewrite", candidates=list(decision.candidates))
        elif decision.chosen is not None:
            chosen, resolution["chosen_from"] = decision.chosen, "reviewer_rewrite"
        else:
            # No rewrite on the agreeing side: the user's own edit wins if most of that side preferred it.
            prefs = Counter(s.preference for s in subs if str(s.reviewer_id) in decision.supporters)
            if prefs["rewrite"] * 2 > len(decision.supporters):
                interaction = session.get(t.Interaction, badcase.interaction_id)
                chosen = alternative_response(session, interaction.event_id)
                resolution["chosen_from"] = "user_edit" if chosen else None
    elif decision.outcome == gating.ADJUDICATION:
        resolution["reason"] = "disagreement"
    elif decision.outcome == gating.AMBIGUOUS:
        resolution["prompt_flagged_for_rewrite"] = True
    badcase.status, badcase.chosen_response, badcase.resolution = status, chosen, resolution
    if status in ("resolved", "dismissed", "ambiguous"):
        badcase.resolved_at = now
    admit(session, badcase)


def adjudicate(session: Session, badcase: t.Badcase | int, lead: t.Reviewer, decision: Mapping[str, Any],
               now: datetime) -> t.Badcase:
    """A lead's decision on an item in adjudication: resolved (category, chosen response), dismissed or ambiguous."""
    if lead.role != "lead":
        raise NotALead("only a lead reviewer may adjudicate")
    row = locked(session, t.Badcase, badcase if isinstance(badcase, int) else badcase.id)
    if row is None:
        raise NotFound(f"no badcase {badcase}")
    if row.status != "adjudication":
        raise NotInAdjudication(f"badcase {row.id} is {row.status}, not in adjudication")
    outcome = decision.get("outcome")
    if outcome not in ("resolved", "dismissed", "ambiguous"):
        raise InvalidInput("outcome must be resolved, dismissed or ambiguous",
                           [{"loc": ["outcome"], "msg": f"got {outcome!r}", "type": "value_error"}])
    category, chosen = decision.get("category"), clean_text(decision.get("chosen_response"))
    if outcome == "resolved":
        rubric = session.get(t.RubricVersion, row.rubric_version_id) if row.rubric_version_id else None
        allowed = rubric.categories if rubric else rubric_mod.DEFAULT_RUBRIC["categories"]
        if category not in allowed:
            raise InvalidInput("a resolved badcase needs a failure category of its rubric",
                               [{"loc": ["category"], "msg": f"one of {', '.join(allowed)}", "type": "value_error"}])
    resolution = dict(row.resolution or {})
    resolution["adjudication"] = {"lead_id": lead.id, "outcome": outcome, "category": category,
                                  "note": clean_text(decision.get("note")), "at": now.isoformat()}
    if outcome == "ambiguous":
        resolution["prompt_flagged_for_rewrite"] = True
    row.status, row.resolution, row.resolved_at = outcome, resolution, now
    row.chosen_response = chosen if outcome == "resolved" else None
    admit(session, row)
    session.flush()
    return row
