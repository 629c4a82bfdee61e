"""Review wiring: reviewers behind API keys, the queue run with the service's settings, agreement after the commit.

Shared by the JSON API (`services.api.review`) and the reviewer web pages (`services.api.ui`). Each function
that changes state takes a session factory and owns its units of work, because a gated submission must commit
before the agreement window that includes it is recomputed in a second, short transaction.
"""

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, sessionmaker

from badcase import claim_pg, consensus, queue, review_view, rubric_store
from schemas import tables as t
from schemas.errors import Conflict, FFError, Forbidden, InvalidInput, NotFound
from services import auth, db
from services.settings import Settings

log = logging.getLogger("ff.review")


class NotAReviewer(FFError):
    """The API key belongs to no (active) reviewer."""

    code, status = "not_a_reviewer", 403


@dataclass
class Submitted:
    """A stored submission, its item's status after the gate, and the agreement report written (if any)."""

    submission_id: int
    task_id: int
    badcase_id: int
    preference: str | None
    badcase_status: str
    outcome: str | None
    report: t.AgreementReport | None


def now() -> datetime:
    """The service clock (UTC)."""
    return datetime.now(timezone.utc)


_REVIEWER_OF_KEY = select(t.Reviewer).where(t.Reviewer.api_key_id == bindparam("key_id"))  # built once


def reviewer_for_key(session: Session, key: t.ApiKey) -> t.Reviewer:
    """The active reviewer an API key belongs to."""
    row = session.scalar(_REVIEWER_OF_KEY, {"key_id": key.id})
    if row is None or not row.active:
        raise NotAReviewer(f"API key {key.prefix}… is not linked to an active reviewer; create one with POST /v1/reviewers")
    return row


def create_reviewer(session: Session, actor: t.ApiKey, *, name: str, role: str, domains: list[str],
                    api_key_id: int | None) -> tuple[t.Reviewer, str | None]:
    """Create a reviewer linked to an existing reviewer/lead key, or to a new key returned once in plain text."""
    if actor.role != "admin" and role != "reviewer":
        raise Forbidden("only an admin may create leads")
    if session.scalar(select(t.Reviewer.id).where(t.Reviewer.name == name)) is not None:
        raise Conflict(f"a reviewer named {name!r} exists already")
    plain = None
    if api_key_id is None:
        key, plain = auth.create_key(session, role=role, name=f"reviewer:{name}")
    else:
        key = session.get(t.ApiKey, api_key_id)
        if key is None or key.revoked_at is not None:
            raise NotFound(f"no live API key {api_key_id}")
        if key.role != role:
            raise InvalidInput(f"key {api_key_id} has role {key.role!r}; a {role} needs a {role} key",
                               [{"loc": ["api_key_id"], "msg": "role mismatch", "type": "value_error"}])
        if session.scalar(select(t.Reviewer.id).where(t.Reviewer.api_key_id == key.id)) is not None:
            raise Conflict(f"key {api_key_id} belongs to another reviewer")
    row = t.Reviewer(name=name, role=role, domains=list(domains), api_key_id=key.id)
    session.add(row)
    session.flush()
    log.info("review.reviewer.created", extra={"reviewer_id": row.id, "role": role, "domains": domains})
    return row, plain


def claim(sessions: sessionmaker[Session], settings: Settings, key: t.ApiKey) -> dict[str, Any] | None:
    """Claim the next task for the key's reviewer; its blind view, or None when nothing waits."""
    with db.unit_of_work(sessions) as session:
        at, locked_row = now(), None
        if queue.is_postgres(session):  # find and lock the reviewer in one round trip
            locked_row = claim_pg.lock_reviewer(session, key.id, at, by="api_key_id")
            if locked_row is None or not locked_row.active:
                reviewer_for_key(session, key)  # raises the error that says why
            reviewer = SimpleNamespace(id=locked_row.id, domains=locked_row.domains)
        else:
            reviewer = reviewer_for_key(session, key)
        got = queue.claim_next(session, reviewer, at, settings.lease_seconds, settings.session_cap_minutes,
                               gold_share=settings.gold_share, locked_row=locked_row)
        if got is None:
            return None
        if not got.resumed:
            log.info("review.task.claimed", extra={"task_id": got.task_id, "reviewer_id": reviewer.id})
        return got.view if got.view is not None else review_view.task_view(session, got.task)


def current(session: Session, key: t.ApiKey) -> dict[str, Any] | None:
    """The blind view of the task the key's reviewer holds under a live lease, if any."""
    reviewer = reviewer_for_key(session, key)
    task = queue.held(session, reviewer.id, now())
    return review_view.task_view(session, task) if task else None


def view(session: Session, key: t.ApiKey, task_id: int) -> dict[str, Any]:
    """A task's blind view, for the reviewer it belongs to or for a lead."""
    reviewer = reviewer_for_key(session, key) if key.role != "admin" else None
    task = session.get(t.ReviewTask, task_id)
    if task is None or (reviewer is not None and reviewer.role != "lead" and task.reviewer_id != reviewer.id):
        raise NotFound(f"no review task {task_id} of yours")
    return review_view.task_view(session, task)


def submit(sessions: sessionmaker[Session], settings: Settings, key: t.ApiKey, task_id: int,
           answer: dict[str, Any]) -> Submitted:
    """Submit an answer; when it completes the item, commit the gate first, then refresh the agreement window."""
    with db.unit_of_work(sessions) as session:
        reviewer = reviewer_for_key(session, key)
        res = queue.submit(session, task_id, reviewer, answer, now(),
                           threshold=settings.agreement_threshold, policy=settings.disagreement_policy)
        out = Submitted(res.submission_id, task_id, res.badcase_id, res.preference, res.badcase_status,
                        res.decision.outcome if res.decision else None, None)
        scope = res.scope
    log.info("review.submission.created", extra={"task_id": task_id, "badcase_id": out.badcase_id,
                                                 "reviewer_id": reviewer.id, "gate": out.outcome})
    if out.outcome is not None:
        log.info("review.badcase.gated", extra={"badcase_id": out.badcase_id, "status": out.badcase_status})
        out.report = refresh_agreement_coalesced(sessions, *scope)
    return out


_REFRESH: dict[tuple, dict[str, bool]] = {}
_REFRESH_LOCK = threading.Lock()


def refresh_agreement_coalesced(sessions: sessionmaker[Session], rubric_version_id: int | None,
                                batch: str | None) -> t.AgreementReport | None:
    """`refresh_agreement`, at most one at a time per scope in this process: a gate committed while a refresh runs
    marks the scope dirty and returns (None); the running refresher makes one more pass that includes it. Each
    window recomputation waits for the rubric row lock, so under load one pass per burst replaces one per gate.
    A request makes at most two passes; if gates keep coming, a background thread carries on for it."""
    scope = (id(sessions), rubric_version_id, batch)
    with _REFRESH_LOCK:
        state = _REFRESH.setdefault(scope, {"running": False, "dirty": False})
        state["dirty"] = True
        if state["running"]:
            return None
        state["running"] = True
    return _refresh_while_dirty(sessions, rubric_version_id, batch, state, passes=2)


def refreshes_running() -> int:
    """How many agreement refreshes are running in this process."""
    with _REFRESH_LOCK:
        return sum(st["running"] for st in _REFRESH.values())


def _refresh_while_dirty(sessions, rubric_version_id, batch, state: dict[str, bool],
                         passes: int | None) -> t.AgreementReport | None:
    report = None
    try:
        while True:
            with _REFRESH_LOCK:
                if not state["dirty"]:
                    state["running"] = False
                    return report
                if passes == 0:  # still dirty: hand the scope to a background thread (it stays "running")
                    threading.Thread(target=_refresh_while_dirty, daemon=True, name="ff-agreement-refresh",
                                     args=(sessions, rubric_version_id, batch, state, None)).start()
                    return report
                state["dirty"] = False
            report = refresh_agreement(sessions, rubric_version_id, batch)
            passes = None if passes is None else passes - 1
    except BaseException:
        with _REFRESH_LOCK:
            state["running"] = False
        if passes is None:  # in the background thread: nobody to raise to
            log.exception("review.agreement.refresh_failed")
            return None
        raise


def refresh_agreement(sessions: sessionmaker[Session], rubric_version_id: int | None,
                      batch: str | None) -> t.AgreementReport | None:
    """Recompute the agreement window of a rubric version and batch; tell leads and ops when it drops below 0.4."""
    with db.unit_of_work(sessions) as session:
        rec = consensus.record(session, rubric_version_id, batch, now())
    for event in rec.events:
        # Leads read these on the dashboard; ops get an alert through the same outbox as drift alerts.
        log.warning(event["event"], extra={k: v for k, v in event.items() if k not in ("event", "message")})
        _alert_ops(sessions, event)
    return rec.report


def _alert_ops(sessions: sessionmaker[Session], event: dict[str, Any]) -> None:
    """Open a `review_agreement_low` alert for a rubric version whose agreement fell below the threshold."""
    from drift import alerts
    from drift.windows import Slice
    from services.drift_worker import channels
    from services.settings import get_settings

    with db.unit_of_work(sessions) as session:
        alerts.seed_rules(session)
        rule = session.scalar(select(t.AlertRule).where(t.AlertRule.name == "review_agreement_low"))
        verdict = alerts.Verdict(alerts.AGREEMENT_SIGNAL, True, event.get("krippendorff_alpha"), event["threshold"],
                                 "krippendorff_alpha_below", None, event.get("krippendorff_alpha"))
        alerts.open_alert(session, rule=rule, slice_=Slice(f"rubric-{event['rubric_version_id']}", "*"),
                          verdict=verdict, now=now(), channels=channels(get_settings()))


def release(sessions: sessionmaker[Session], key: t.ApiKey, task_id: int) -> t.ReviewTask:
    """Give a leased task back to the queue."""
    with db.unit_of_work(sessions) as session:
        task = queue.release(session, task_id, reviewer_for_key(session, key), now())
    log.info("review.task.released", extra={"task_id": task_id})
    return task


def adjudication_queue(session: Session, limit: int = 100) -> list[dict[str, Any]]:
    """Items waiting for a lead, oldest first."""
    rows = session.scalars(select(t.Badcase).where(t.Badcase.status == "adjudication")
                           .order_by(t.Badcase.id).limit(limit))
    return [review_view.adjudication_item(session, bc) for bc in rows]


def adjudicate(session: Session, key: t.ApiKey, badcase_id: int, decision: dict[str, Any]) -> t.Badcase:
    """A lead's decision on an item in adjudication."""
    row = queue.adjudicate(session, badcase_id, reviewer_for_key(session, key), decision, now())
    log.info("review.badcase.adjudicated", extra={"badcase_id": badcase_id, "status": row.status})
    return row


def recent_decided(session: Session, limit: int = 20) -> list[dict[str, Any]]:
    """The latest finally decided items, for the lead dashboard."""
    rows = session.scalars(select(t.Badcase).where(t.Badcase.status.in_(review_view.FINAL))
                           .order_by(t.Badcase.resolved_at.desc(), t.Badcase.id.desc()).limit(limit))
    return [{"badcase_id": b.id, "status": b.status, "category": (b.resolution or {}).get("category"),
             "share": (b.resolution or {}).get("share"), "chosen_response": b.chosen_response,
             "admitted": b.admitted, "resolved_at": queue.aware(b.resolved_at)} for b in rows]


def rubric_out(row: t.RubricVersion) -> dict[str, Any]:
    """A stored rubric version as the API returns it."""
    return {"id": row.id, "version": row.version, "status": row.status, "used": row.used,
            "created_at": queue.aware(row.created_at), **rubric_store.as_dict(row)}


def reviewers_overview(session: Session) -> list[dict[str, Any]]:
    """Every reviewer with domains, latest pairwise kappa and gold accuracy (for the lead dashboard)."""
    gold = {g["reviewer_id"]: g for g in consensus.gold_accuracy(session)}
    series = consensus.by_reviewer_series(consensus.reports(session, limit=500))
    out = []
    for r in session.scalars(select(t.Reviewer).order_by(t.Reviewer.name)):
        kappas = series.get(str(r.id), [])
        out.append({"id": r.id, "name": r.name, "role": r.role, "domains": r.domains,
                    "kappa": kappas[-1][1] if kappas else None, "gold": gold.get(r.id)})
    return out
