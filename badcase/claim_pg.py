"""Claim-next on PostgreSQL in two round trips: lock the reviewer, then one statement that leases a slot.

The second statement takes the top eligible free slot with `FOR NO KEY UPDATE SKIP LOCKED`, leases it, records the
claim, ends an expired holder's claim, moves the item to `in_review`, records review-session activity, and
returns everything the blind view needs. The SQLite path (and every rule it shares) is `badcase.queue`; the
statement here must keep the same semantics, and the queue tests run both. Takes the caller's session; no commit.
"""

from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from badcase import review_view, rubric_store
from badcase.review_rows import PAUSED_RUBRIC, alternative_of
from schemas.tables.badcase import REVIEW_ORDER_WHERE

_LOCK = """
SELECT r.id, r.active, r.domains,
       (SELECT tk.id FROM review_task tk WHERE tk.reviewer_id = r.id AND tk.status = 'leased'
          AND tk.lease_expires_at >= :now ORDER BY tk.id LIMIT 1) AS held_id,
       rs.id AS session_id, rs.started_at, rs.last_activity_at
FROM reviewer r
LEFT JOIN LATERAL (SELECT s.id, s.started_at, s.last_activity_at FROM review_session s
                   WHERE s.reviewer_id = r.id AND s.ended_at IS NULL ORDER BY s.id DESC LIMIT 1) rs ON true
WHERE r.{by} = :ref
FOR NO KEY UPDATE OF r
"""
_LOCK_BY = {"id": text(_LOCK.format(by="id")), "api_key_id": text(_LOCK.format(by="api_key_id"))}
# The open items in priority order: the predicate of the partial index `ix_badcase_review_order`, spelled out
# (not a parameter) so the planner walks that index and stops at the first free slot. Paused rubric versions are
# an array the statement computes once (a NOT EXISTS per item there made the planner sort the whole queue).
_REVIEW_ORDER = REVIEW_ORDER_WHERE.format(t="bc.")
_PAUSED = f"ARRAY(SELECT id FROM rubric_version WHERE status IN ({', '.join(repr(s) for s in PAUSED_RUBRIC)}))"

# Review-session bookkeeping, as a data-modifying CTE (it runs whether or not a slot is found, as in queue.py).
_SESSION = {
    "touch": "UPDATE review_session SET last_activity_at = :now WHERE id = :sid",
    "new": "INSERT INTO review_session (reviewer_id, started_at, last_activity_at) VALUES (:rid, :now, :now)",
    "restart": "UPDATE review_session SET ended_at = last_activity_at WHERE id = :sid",
}

_CLAIM = """
WITH {session_ctes}
slot AS (
  SELECT tk.id, tk.badcase_id, tk.slot, tk.status AS was
  FROM badcase bc JOIN review_task tk ON tk.badcase_id = bc.id
  WHERE {review_order} AND (tk.status = 'open' OR (tk.status = 'leased' AND tk.lease_expires_at < :now))
    AND (:any_domain OR bc.bucket = ANY(:domains))
    AND NOT EXISTS (SELECT 1 FROM review_claim rc WHERE rc.badcase_id = bc.id AND rc.reviewer_id = :rid)
    AND NOT (COALESCE(bc.rubric_version_id, 0) = ANY({paused}))
    -- a claim of this reviewer that the lock waited for may have leased a slot since the lock statement's snapshot
    AND NOT EXISTS (SELECT 1 FROM review_task h WHERE h.reviewer_id = :rid AND h.status = 'leased'
                    AND h.lease_expires_at >= :now)
  ORDER BY bc.priority DESC, bc.id, tk.slot
  LIMIT 1
  FOR NO KEY UPDATE OF tk SKIP LOCKED
),
ctx AS (
  SELECT slot.*, bc.bucket, bc.status AS badcase_status, bc.rubric_version_id,
         i.prompt, i.messages, i.response,
         (SELECT f.body FROM feedback f WHERE f.interaction_event_id = i.event_id
            AND f.kind IN ('edit', 'demonstration') ORDER BY f.id LIMIT 1) AS alt
  FROM slot JOIN badcase bc ON bc.id = slot.badcase_id JOIN interaction i ON i.id = bc.interaction_id
),
leased AS (
  UPDATE review_task tk SET status = 'leased', reviewer_id = :rid, lease_expires_at = :expires, updated_at = :now,
    ab_order = CASE WHEN COALESCE(NULLIF(ctx.alt->>'edited_response', ''), NULLIF(ctx.alt->>'ideal_response', ''))
                    IS NOT NULL THEN :ab END
  FROM ctx WHERE tk.id = ctx.id
  RETURNING tk.id, tk.ab_order, tk.lease_expires_at
),
expired AS (
  UPDATE review_claim SET outcome = 'expired', ended_at = :now
  WHERE task_id IN (SELECT id FROM ctx WHERE was = 'leased') AND outcome IS NULL
),
claimed AS (
  INSERT INTO review_claim (badcase_id, task_id, reviewer_id, claimed_at)
  SELECT badcase_id, id, :rid, :now FROM ctx
),
started AS (
  UPDATE badcase SET status = 'in_review', updated_at = :now
  WHERE id IN (SELECT badcase_id FROM ctx) AND status = 'queued'
)
SELECT ctx.id, ctx.badcase_id, ctx.slot, ctx.bucket, ctx.rubric_version_id, ctx.prompt, ctx.messages,
       ctx.response, ctx.alt, leased.ab_order, leased.lease_expires_at,
       rv.version AS rubric_version, rv.status AS rubric_status, rv.name AS rubric_name, rv.dimensions,
       rv.disqualifiers, rv.categories, rv.tie_break, rv.scope
FROM ctx JOIN leased ON leased.id = ctx.id LEFT JOIN rubric_version rv ON rv.id = ctx.rubric_version_id
"""
_STATEMENTS: dict[tuple[str, ...], Any] = {}


def lock_reviewer(session: Session, ref: int, now: datetime, by: str = "id"):
    """Lock the reviewer row (one reviewer's claims run one at a time) by id or API key id; the reviewer's id,
    active flag and domains, the slot they hold and their open review session (None: no such reviewer)."""
    return session.execute(_LOCK_BY[by], {"ref": ref, "now": now}).first()


def session_ctes(steps: tuple[str, ...]) -> str:
    """The review-session steps as data-modifying CTEs, for the head of a `WITH` (params :now, :rid, :sid)."""
    return "".join(f"session_{i} AS ({_SESSION[s]}),\n" for i, s in enumerate(steps))


def _statement(steps: tuple[str, ...]):
    if steps not in _STATEMENTS:
        _STATEMENTS[steps] = text(_CLAIM.format(session_ctes=session_ctes(steps), review_order=_REVIEW_ORDER,
                                                paused=_PAUSED))
    return _STATEMENTS[steps]


def lease_slot(session: Session, *, reviewer_id: int, domains: list[str], now: datetime, lease_seconds: int,
               ab: str, session_steps: tuple[str, ...], session_id: int | None):
    """Lease the top eligible slot and record the session step; the claimed row (None when nothing waits)."""
    params = {"rid": reviewer_id, "now": now, "expires": now + timedelta(seconds=lease_seconds), "ab": ab,
              "sid": session_id, "any_domain": "*" in domains, "domains": [d for d in domains if d != "*"]}
    return session.execute(_statement(session_steps), params).first()


def view_of(session: Session, row) -> dict[str, Any]:
    """The blind view of a just-claimed slot, from the statement's row (no further look-up)."""
    if row.rubric_version_id is None:
        rubric = rubric_store.ensure_default(session)
    else:
        rubric = SimpleNamespace(id=row.rubric_version_id, version=row.rubric_version, status=row.rubric_status,
                                 name=row.rubric_name, dimensions=row.dimensions, disqualifiers=row.disqualifiers,
                                 categories=row.categories, tie_break=row.tie_break, scope=row.scope)
    return review_view.blind_view(
        task_id=row.id, status="leased", lease_expires_at=row.lease_expires_at, badcase_id=row.badcase_id,
        bucket=row.bucket, prompt=row.prompt, messages=row.messages, original=row.response,
        alternative=alternative_of(row.alt), ab_order=row.ab_order, rubric=rubric)
