"""Submit on PostgreSQL in two round trips (plus the gate on the k-th): lock the task with all the checks need,
then one statement that stores the submission.

The first statement locks the task (`FOR NO KEY UPDATE`) and reads the reviewer's claim on it, its badcase, the
reviewer's open review session and the item's rubric. The second inserts the submission, closes the task and the
claim, records review-session activity, marks the rubric version used and counts the submission on the badcase
(one `UPDATE … RETURNING` under its row lock, as `resolution.gate` does). The SQLite path, and every rule it shares,
is `badcase.queue.submit`; the statements here keep its semantics and the queue tests run both. Takes the
caller's session; no commit.
"""

from typing import Any

from sqlalchemy import JSON, bindparam, text
from sqlalchemy.orm import Session

from badcase.claim_pg import session_ctes

_OWNED = text("""
SELECT tk.id, tk.status, tk.reviewer_id, tk.ab_order,
       rc.id AS claim_id, rc.claimed_at,
       bc.id AS badcase_id, bc.status AS badcase_status, bc.is_gold, bc.gold_answer, bc.rubric_version_id,
       bc.review_batch,
       rs.id AS session_id, rs.started_at, rs.last_activity_at,
       rv.id AS rubric_id, rv.name, rv.version, rv.status AS rubric_status, rv.used, rv.dimensions,
       rv.disqualifiers, rv.categories, rv.tie_break, rv.scope
FROM review_task tk
JOIN badcase bc ON bc.id = tk.badcase_id
LEFT JOIN review_claim rc ON rc.task_id = tk.id AND rc.reviewer_id = :rid
LEFT JOIN LATERAL (SELECT s.id, s.started_at, s.last_activity_at FROM review_session s
                   WHERE s.reviewer_id = :rid AND s.ended_at IS NULL ORDER BY s.id DESC LIMIT 1) rs ON true
LEFT JOIN rubric_version rv ON rv.id = bc.rubric_version_id
WHERE tk.id = :task_id
FOR NO KEY UPDATE OF tk
""")

_STORE = """
WITH {session_ctes}
sub AS (
  INSERT INTO review_submission (task_id, badcase_id, reviewer_id, rubric_version_id, verdict, category, ratings,
    preference, ab_order, rewrite, critique, justification, is_gold, gold_correct, duration_s, created_at)
  VALUES (:task_id, :badcase_id, :reviewer_id, :rubric_version_id, :verdict, :category, :ratings, :preference,
    :ab_order, :rewrite, :critique, :justification, :is_gold, :gold_correct, :duration_s, :created_at)
  RETURNING id
),
done AS (UPDATE review_task SET status = 'submitted', lease_expires_at = NULL, updated_at = :now WHERE id = :task_id),
closed AS (UPDATE review_claim SET outcome = 'submitted', ended_at = :now WHERE id = :claim_id),
used AS (UPDATE rubric_version SET used = true WHERE id = :rubric_version_id AND NOT used),
counted AS (
  UPDATE badcase SET submissions_count = submissions_count + 1, updated_at = :now
  WHERE id = :badcase_id AND NOT :is_gold
  RETURNING submissions_count, required_reviews, status
)
SELECT sub.id, counted.submissions_count, counted.required_reviews, counted.status
FROM sub LEFT JOIN counted ON true
"""
_STATEMENTS: dict[tuple[str, ...], Any] = {}


def owned(session: Session, task_id: int, reviewer_id: int):
    """The task row locked, with the reviewer's claim, badcase, open session and rubric (None: no such task)."""
    return session.execute(_OWNED, {"task_id": task_id, "rid": reviewer_id}).first()


def _statement(steps: tuple[str, ...]):
    if steps not in _STATEMENTS:
        _STATEMENTS[steps] = text(_STORE.format(session_ctes=session_ctes(steps))).bindparams(
            bindparam("ratings", type_=JSON))
    return _STATEMENTS[steps]


def store(session: Session, values: dict[str, Any], *, claim_id: int, session_steps: tuple[str, ...],
          session_id: int | None):
    """Store the submission (`values`: its columns) and do the bookkeeping; the submission id and, unless the item
    is gold, its submission count, required reviews and status after the increment."""
    params = {**values, "now": values["created_at"], "rid": values["reviewer_id"], "claim_id": claim_id,
              "sid": session_id}
    return session.execute(_statement(session_steps), params).one()
