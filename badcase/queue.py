"""The review queue: k blind review slots per badcase, leased claims, submissions, the per-item gate, adjudication.

Functions take the caller's session and plain values, flush, and never commit. Concurrency: on PostgreSQL a
claim takes the first free slot with `SELECT … FOR NO KEY UPDATE SKIP LOCKED` (claims of one reviewer are serialised
on the reviewer row), and the count-based status change of a badcase runs under its row lock; on SQLite every
mutating function starts with a write, which takes SQLite's one write lock at once (BEGIN IMMEDIATE semantics).
"""

import functools
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import and_, bindparam, false, func, or_, select, true, update
from sqlalchemy.orm import Session, aliased
from sqlalchemy.orm.attributes import set_committed_value

from badcase import claim_pg, gating, resolution, rubric_store, submit_pg
from badcase import rubric as rubric_mod
from badcase.resolution import adjudicate  # noqa: F401  (part of the queue's interface)
from badcase.review_errors import AlreadySubmitted, LeaseLost, RubricMismatch, SessionCapReached
from badcase.review_rows import (ACTIVE, DECIDED, PAUSED_RUBRIC, alternative_body, alternative_of,  # noqa: F401
                                 alternative_response, aware, clean_text, is_postgres, locked,
                                 sqlite_write_lock)
from schemas import tables as t
from schemas.errors import InvalidInput, NotFound

# Idle this long and the next claim starts a new review session: the session cap counts unbroken reviewing.
SESSION_BREAK = timedelta(minutes=15)
_RNG = random.SystemRandom()
_UNLOADED = object()


@dataclass
class Claim:
    """A leased review slot; `resumed` when the reviewer already held it; `view` when the claim built it."""

    task_id: int
    badcase_id: int
    slot: int
    ab_order: str | None
    resumed: bool = False
    task: t.ReviewTask | None = None
    view: dict[str, Any] | None = None
    # Rows loaded with the slot, kept so the caller's view finds them in the session (the identity map holds weakly).
    rows: tuple = ()


def _claim_of(task: t.ReviewTask, resumed: bool = False, rows: tuple = ()) -> Claim:
    return Claim(task.id, task.badcase_id, task.slot, task.ab_order, resumed=resumed, task=task, rows=rows)


@dataclass
class SubmitResult:
    """A stored submission and, when it was the k-th, the gate's decision on the item."""

    submission_id: int
    preference: str | None  # de-randomised: original | rewrite | tie
    badcase_id: int
    badcase_status: str  # after the gate
    scope: tuple[int | None, str | None]  # the item's rubric version and review batch (its agreement window)
    decision: gating.Decision | None = None


def enqueue(session: Session, badcase: t.Badcase, k: int, rubric_version_id: int | None) -> list[t.ReviewTask]:
    """Open k review slots for a flagged badcase and mark it queued (gold items get a slot per reviewer on claim)."""
    if k < 1:
        raise InvalidInput("an item needs at least one reviewer", [{"loc": ["k"], "msg": "must be >= 1"}])
    if badcase.status not in ("flagged", "queued"):
        return []
    if badcase.id is None:
        session.add(badcase)
        session.flush()
    have = session.scalar(select(func.count()).select_from(t.ReviewTask)
                          .where(t.ReviewTask.badcase_id == badcase.id, t.ReviewTask.slot >= 0)) or 0
    tasks = [] if badcase.is_gold else [t.ReviewTask(badcase_id=badcase.id, slot=s) for s in range(have, k)]
    session.add_all(tasks)
    badcase.status, badcase.required_reviews, badcase.rubric_version_id = "queued", k, rubric_version_id
    session.flush()
    return tasks


def _domain_filter(domains: list[str]):
    if "*" in domains:
        return true()
    return t.Badcase.bucket.in_(domains) if domains else false()


def _eligible(reviewer: t.Reviewer):
    """Items this reviewer may get: active, in their domains, never claimed by them, rubric not paused."""
    bc, rv, rc = t.Badcase, aliased(t.RubricVersion), t.ReviewClaim  # alias: the slot query joins the rubric too
    claimed = select(rc.id).where(rc.badcase_id == bc.id, rc.reviewer_id == reviewer.id).exists()
    paused = select(rv.id).where(rv.id == bc.rubric_version_id, rv.status.in_(PAUSED_RUBRIC)).exists()
    return and_(bc.status.in_(ACTIVE), _domain_filter(list(reviewer.domains or [])), ~claimed, ~paused)


def _open_slot(session: Session, reviewer: t.Reviewer, now: datetime) -> tuple | None:
    """The free slot of the top eligible item, locked (skipping slots others take), with its badcase and context."""
    # The badcase, interaction, user edit and rubric are returned, not just loaded: the identity map holds weakly.
    tk, bc = t.ReviewTask, t.Badcase
    free = or_(tk.status == "open", and_(tk.status == "leased", tk.lease_expires_at < now))
    alt = alternative_body(t.Interaction.event_id).scalar_subquery()
    stmt = (select(tk, bc, t.Interaction, alt, t.RubricVersion).join(bc, bc.id == tk.badcase_id)
            .join(t.Interaction, t.Interaction.id == bc.interaction_id)
            .outerjoin(t.RubricVersion, t.RubricVersion.id == bc.rubric_version_id)
            .where(free, bc.is_gold.is_(False), _eligible(reviewer))
            .order_by(bc.priority.desc(), bc.id, tk.slot).limit(1))
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=True, of=tk, key_share=True)
    return session.execute(stmt.execution_options(populate_existing=True)).first()


def _gold_slot(session: Session, reviewer: t.Reviewer) -> t.ReviewTask | None:
    """A new slot of a gold item this reviewer has not seen; slot = -reviewer id, so slots never collide."""
    bc = t.Badcase
    gold = session.scalars(select(bc).where(bc.is_gold.is_(True), _eligible(reviewer))
                           .order_by(bc.priority.desc(), bc.id).limit(1)).first()
    if gold is None:
        return None
    task = t.ReviewTask(badcase_id=gold.id, slot=-reviewer.id)
    session.add(task)
    session.flush()
    return task


def _open_session(reviewer_id):
    """The id of the reviewer's open review session (a subquery; `reviewer_id` may be a column)."""
    rs = aliased(t.ReviewSession)  # an alias, so it never correlates with a review_session of the outer query
    return (select(rs.id).where(rs.reviewer_id == reviewer_id, rs.ended_at.is_(None))
            .order_by(rs.id.desc()).limit(1).scalar_subquery())


def session_step(started_at: datetime | None, last_activity_at: datetime | None, now: datetime,
                 cap_minutes: float | None) -> str:
    """What a claim does to the reviewer's open review session: `touch` it, start a `new` one, or `restart`
    (end it after a break, then start anew); refuses once an unbroken session has run `cap_minutes`."""
    if last_activity_at is None:
        return "new"
    if now - aware(last_activity_at) > SESSION_BREAK:
        return "restart"
    if cap_minutes is not None and now - aware(started_at) >= timedelta(minutes=cap_minutes):
        rest = int(SESSION_BREAK.total_seconds() // 60)
        raise SessionCapReached(f"you have reviewed for {cap_minutes:g} minutes: take a break of {rest} minutes, "
                                "then claim again")
    return "touch"


_SESSION_STEPS = {"touch": ("touch",), "new": ("new",), "restart": ("restart", "new")}


def _touch_session(session: Session, reviewer_id: int, now: datetime, cap_minutes: float | None,
                   row: t.ReviewSession | None | object = _UNLOADED) -> t.ReviewSession:
    """Record activity in the reviewer's current session; with a cap, refuse once the session has run that long."""
    if row is _UNLOADED:
        row = session.scalars(select(t.ReviewSession).where(t.ReviewSession.id == _open_session(reviewer_id))).first()
    step = session_step(row and row.started_at, row and row.last_activity_at, now, cap_minutes)
    if step == "restart":
        row.ended_at, row = row.last_activity_at, None
    if row is None:
        row = t.ReviewSession(reviewer_id=reviewer_id, started_at=now, last_activity_at=now)
        session.add(row)
    row.last_activity_at = now
    return row


def held(session: Session, reviewer_id: int, now: datetime) -> t.ReviewTask | None:
    """The slot this reviewer holds under a live lease, if any."""
    tk = t.ReviewTask
    return session.scalars(select(tk).where(tk.reviewer_id == reviewer_id, tk.status == "leased",
                                            tk.lease_expires_at >= now).order_by(tk.id).limit(1)).first()


def _lock_reviewer(session: Session, reviewer_id: int, now: datetime) -> tuple[int | None, t.ReviewSession | None]:
    """Lock the reviewer and read, in the same round trip, the slot they hold and their open review session."""
    # The lock runs one reviewer's claims one at a time, so they never get the same item twice.
    rv, tk, rs = t.Reviewer, t.ReviewTask, t.ReviewSession
    if not is_postgres(session):
        locked_table = rv.__table__
        session.execute(update(locked_table).where(locked_table.c.id == reviewer_id)
                        .values(active=locked_table.c.active))
    held_id = (select(tk.id).where(tk.reviewer_id == rv.id, tk.status == "leased", tk.lease_expires_at >= now)
               .order_by(tk.id).limit(1).scalar_subquery())
    stmt = select(held_id, rs).select_from(rv).outerjoin(rs, rs.id == _open_session(rv.id)).where(rv.id == reviewer_id)
    if is_postgres(session):
        stmt = stmt.with_for_update(of=rv, key_share=True)
    held_task, current = session.execute(stmt).one()
    return held_task, current


def claim_next(session: Session, reviewer, now: datetime, lease_seconds: int, session_cap_minutes: float,
               *, gold_share: float = 0.0, rng: random.Random | None = None, locked_row=None) -> Claim | None:
    """Lease the reviewer the next item in their domains (by priority), or None when there is nothing for them.

    `reviewer`: a reviewer row (or anything with its `id` and `domains`); `locked_row`: on PostgreSQL, the row of
    `claim_pg.lock_reviewer` when the caller took the reviewer's lock already.
    """
    rng = rng or _RNG
    pg = is_postgres(session)
    if pg:  # the common case in two round trips: this lock, then one statement (badcase.claim_pg)
        lk = locked_row if locked_row is not None else claim_pg.lock_reviewer(session, reviewer.id, now)
        held_task = lk.held_id
    else:
        held_task, current = _lock_reviewer(session, reviewer.id, now)
    if held_task is not None:
        return _claim_of(session.get(t.ReviewTask, held_task), resumed=True)
    task = None
    if gold_share > 0 and rng.random() < gold_share:
        _touch_session(session, reviewer.id, now, session_cap_minutes, _UNLOADED if pg else current)
        task = _gold_slot(session, reviewer)
        steps, pg_fast = (), pg and task is None
    else:
        pg_fast = pg
        if pg:
            steps = _SESSION_STEPS[session_step(lk.started_at, lk.last_activity_at, now, session_cap_minutes)]
        else:
            _touch_session(session, reviewer.id, now, session_cap_minutes, current)
    if pg_fast:
        row = claim_pg.lease_slot(session, reviewer_id=reviewer.id, domains=list(reviewer.domains or []), now=now,
                                  lease_seconds=lease_seconds, ab=rng.choice(("AB", "BA")), session_steps=steps,
                                  session_id=lk.session_id)
        if row is None:  # nothing free; or this reviewer's concurrent claim, which the lock waited for, leased one
            again = held(session, reviewer.id, now)
            return None if again is None else _claim_of(again, resumed=True)
        return Claim(row.id, row.badcase_id, row.slot, row.ab_order, view=claim_pg.view_of(session, row))
    found = (task, None, None, None, None) if task is not None else _open_slot(session, reviewer, now)
    if found is None:
        return None
    task, badcase, interaction, alt_body, rubric = found
    if interaction is not None:  # the alternative came with the slot: no second look-up
        session.info.setdefault("ff_alternatives", {})[interaction.event_id] = alternative_of(alt_body)
    if task.status == "leased":  # an expired lease taken over
        session.execute(update(t.ReviewClaim).where(t.ReviewClaim.task_id == task.id, t.ReviewClaim.outcome.is_(None))
                        .values(outcome="expired", ended_at=now))
    badcase = badcase or session.get(t.Badcase, task.badcase_id)
    interaction = interaction or session.get(t.Interaction, badcase.interaction_id)
    pairwise = alternative_response(session, interaction.event_id) is not None
    task.status, task.reviewer_id = "leased", reviewer.id
    task.lease_expires_at = now + timedelta(seconds=lease_seconds)
    task.ab_order = rng.choice(("AB", "BA")) if pairwise else None
    session.add(t.ReviewClaim(badcase_id=badcase.id, task_id=task.id, reviewer_id=reviewer.id, claimed_at=now))
    # Conditional, not an ORM write: the badcase row is not locked here and may be gated concurrently.
    if badcase.status == "queued":
        started = session.execute(update(t.Badcase).where(t.Badcase.id == badcase.id, t.Badcase.status == "queued")
                                  .values(status="in_review", updated_at=now).execution_options(synchronize_session=False))
        if started.rowcount:
            set_committed_value(badcase, "status", "in_review")
    session.flush()
    return _claim_of(task, rows=(badcase, interaction, rubric))


@functools.cache
def _owned_task_stmt(pg: bool):
    """Built once (statement construction costs more than the round trip): task, claim, badcase, session, rubric."""
    tk, rc, bc, rs, rv = t.ReviewTask, t.ReviewClaim, t.Badcase, t.ReviewSession, t.RubricVersion
    rid = bindparam("reviewer_id")
    # The item's rubric comes along: a submission names the version it followed, nearly always this one.
    stmt = (select(tk, rc, bc, rs, rv).join(bc, bc.id == tk.badcase_id)
            .outerjoin(rc, and_(rc.task_id == tk.id, rc.reviewer_id == rid))
            .outerjoin(rs, rs.id == _open_session(rid)).outerjoin(rv, rv.id == bc.rubric_version_id)
            .where(tk.id == bindparam("task_id")).execution_options(populate_existing=True))
    return stmt.with_for_update(of=tk, key_share=True) if pg else stmt  # NO KEY UPDATE: see review_rows.locked


def _owned_task(session: Session, task_id: int, reviewer: t.Reviewer) -> tuple:
    """The task locked and checked to be leased to this reviewer, with the reviewer's claim on it, its badcase and
    the reviewer's open review session: one round trip."""
    sqlite_write_lock(session, t.ReviewTask, task_id)
    found = session.execute(_owned_task_stmt(is_postgres(session)),
                            {"task_id": task_id, "reviewer_id": reviewer.id}).first()
    if found is None:
        raise NotFound(f"no review task {task_id}")
    task, claim, badcase, current, rubric = found
    _check_owned(task_id, reviewer.id, task.status, task.reviewer_id, claim is not None)
    return task, claim, badcase, current, rubric


def release(session: Session, task_id: int, reviewer: t.Reviewer, now: datetime) -> t.ReviewTask:
    """Give a leased slot back to the queue; the reviewer will not get this item again."""
    task, claim, _, current, _ = _owned_task(session, task_id, reviewer)
    claim.outcome, claim.ended_at = "released", now
    task.status, task.reviewer_id, task.lease_expires_at, task.ab_order = "open", None, None, None
    _touch_session(session, reviewer.id, now, None, current)
    session.flush()
    return task


def _rubric_for(session: Session, badcase: t.Badcase, answer: Mapping[str, Any],
                loaded: t.RubricVersion | None = None) -> t.RubricVersion:
    rid = answer.get("rubric_version_id")
    row = None if not isinstance(rid, int) or isinstance(rid, bool) else (
        loaded if loaded is not None and loaded.id == rid else session.get(t.RubricVersion, rid))
    if row is None:
        raise InvalidInput("name the rubric version you followed",
                           [{"loc": ["rubric_version_id"], "msg": f"unknown rubric version {rid!r}", "type": "missing"}])
    if badcase.rubric_version_id is not None and row.id != badcase.rubric_version_id:
        raise RubricMismatch(f"this item is reviewed under rubric version {badcase.rubric_version_id}, not {row.id}")
    return row


def _check_owned(task_id: int, reviewer_id: int, status: str, holder_id: int | None, claimed: bool) -> None:
    if holder_id == reviewer_id and status == "submitted":
        raise AlreadySubmitted(f"task {task_id} was submitted already")
    if holder_id != reviewer_id or status != "leased" or not claimed:
        raise LeaseLost(f"task {task_id} is not leased to you (released, or expired and taken over): claim again")


def _submission(session: Session, badcase, answer: Mapping[str, Any], loaded, *, task_id: int, ab_order: str | None,
                reviewer_id: int, claimed_at: datetime, now: datetime) -> tuple[dict[str, Any], Any]:
    """The submission's columns, validated against the rubric version it names, and that version."""
    rubric = _rubric_for(session, badcase, answer, loaded)
    errors = rubric_mod.validate_submission(rubric_store.as_dict(rubric), answer, pairwise=ab_order is not None)
    if errors:
        raise InvalidInput("the submission does not follow the rubric", errors)
    preference = rubric_mod.derandomise(answer.get("preference"), ab_order)
    gold = badcase.is_gold and isinstance(badcase.gold_answer, dict)
    return dict(
        task_id=task_id, badcase_id=badcase.id, reviewer_id=reviewer_id, rubric_version_id=rubric.id,
        verdict=answer["verdict"], category=answer.get("category") if answer["verdict"] else None,
        ratings=dict(answer.get("ratings") or {}), preference=preference, ab_order=ab_order,
        rewrite=clean_text(answer.get("rewrite")), critique=clean_text(answer.get("critique")),
        justification=clean_text(answer.get("justification")), is_gold=badcase.is_gold,
        gold_correct=rubric_mod.gold_correct(badcase.gold_answer, {**answer, "preference": preference}) if gold else None,
        duration_s=(now - aware(claimed_at)).total_seconds(), created_at=now), rubric


def submit(session: Session, task_id: int, reviewer: t.Reviewer, answer: Mapping[str, Any], now: datetime, *,
           threshold: float = 2 / 3, policy: str = gating.ADJUDICATION) -> SubmitResult:
    """Store a reviewer's answer on a leased task and, when it is the k-th, gate the item under its row lock."""
    if is_postgres(session):
        return _submit_pg(session, task_id, reviewer, answer, now, threshold=threshold, policy=policy)
    task, claim, badcase, current, loaded = _owned_task(session, task_id, reviewer)
    values, rubric = _submission(session, badcase, answer, loaded, task_id=task.id, ab_order=task.ab_order,
                                 reviewer_id=reviewer.id, claimed_at=claim.claimed_at, now=now)
    if not rubric.used:  # the version is now immutable in use; conditional so it is written once
        session.execute(update(t.RubricVersion).where(t.RubricVersion.id == rubric.id, t.RubricVersion.used.is_(False))
                        .values(used=True).execution_options(synchronize_session=False))
    row = t.ReviewSubmission(**values)
    session.add(row)
    task.status, task.lease_expires_at = "submitted", None
    claim.outcome, claim.ended_at = "submitted", now
    _touch_session(session, reviewer.id, now, None, current)
    session.flush()
    decision = None if badcase.is_gold else resolution.gate(session, badcase.id, now, threshold, policy)
    return SubmitResult(row.id, row.preference, badcase.id, badcase.status,
                        (badcase.rubric_version_id, badcase.review_batch), decision)


def _submit_pg(session: Session, task_id: int, reviewer, answer: Mapping[str, Any], now: datetime, *,
               threshold: float, policy: str) -> SubmitResult:
    """`submit` on PostgreSQL: the same checks on plain rows, the writes in one statement (badcase.submit_pg)."""
    row = submit_pg.owned(session, task_id, reviewer.id)
    if row is None:
        raise NotFound(f"no review task {task_id}")
    _check_owned(task_id, reviewer.id, row.status, row.reviewer_id, row.claim_id is not None)
    badcase = SimpleNamespace(id=row.badcase_id, is_gold=row.is_gold, gold_answer=row.gold_answer,
                              rubric_version_id=row.rubric_version_id)
    loaded = None if row.rubric_id is None else SimpleNamespace(
        id=row.rubric_id, used=row.used, **{f: getattr(row, f) for f in rubric_store.FIELDS})
    values, _ = _submission(session, badcase, answer, loaded, task_id=task_id, ab_order=row.ab_order,
                            reviewer_id=reviewer.id, claimed_at=row.claimed_at, now=now)
    steps = _SESSION_STEPS[session_step(row.started_at, row.last_activity_at, now, None)]
    sub_id, count, required, status = submit_pg.store(session, values, claim_id=row.claim_id, session_steps=steps,
                                                      session_id=row.session_id)
    decision, status = None, status or row.badcase_status
    if not row.is_gold:
        decision, status = resolution.settle(session, row.badcase_id, count, required, status, now, threshold,
                                             policy)
    return SubmitResult(sub_id, values["preference"], row.badcase_id, status,
                        (row.rubric_version_id, row.review_batch), decision)
