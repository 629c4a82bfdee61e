"""Alert rules, alerts and the delivery outbox (DB): open with dedupe and cooldown, ack/resolve, deliver.

A rule matches a slice when its model version is `*` or equal, and its bucket equals the slice's bucket (`*`
being the slice of all buckets together). At most one alert per rule × slice is open: `open_key` is unique and
is cleared on resolve. Opening an alert adds one `AlertDelivery` row per configured channel in the same
transaction; `deliver_pending` sends them after the commit, retrying with backoff, once per channel.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from drift import alerting
from drift.evaluate import DEFAULT_SIGNALS
from drift.windows import ALL_BUCKETS, Slice, aware
from schemas import tables as t
from schemas.errors import FFError, NotFound

log = logging.getLogger("ff.drift.alerts")
PROBE_SIGNAL = "probe_sycophancy_rate"
AGREEMENT_SIGNAL = "review_agreement_alpha"
_SEVERITY = {"sycophancy_marker": "critical", "sycophancy_flip": "critical"}
DEFAULT_RULES: tuple[dict[str, Any], ...] = tuple(
    {"name": f"drift_{s.column}", "signal": s.column, "kind": "drift", "severity": _SEVERITY.get(s.column, "warning")}
    for s in DEFAULT_SIGNALS
) + ({"name": "probe_sycophancy_rate_high", "signal": PROBE_SIGNAL, "kind": "threshold", "threshold": 0.2,
      "severity": "critical"},
     # Reviewer agreement on a rubric version fell below 0.4 (raised by the review service, not by a drift run).
     {"name": "review_agreement_low", "signal": AGREEMENT_SIGNAL, "kind": "threshold", "threshold": 0.4,
      "severity": "warning"},)


class AlertStateError(FFError):
    """The alert is not in a state that allows this change."""

    code, status = "alert_state_conflict", 409


@dataclass(frozen=True)
class Verdict:
    """What a rule concluded about one signal on one slice (the fields `alerting` reads)."""

    signal: str
    drift_detected: bool
    score: float | None
    threshold: float | None
    test: str
    reference_mean: float | None = None
    current_mean: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-able evidence."""
        return dict(self.__dict__)


def seed_rules(session: Session) -> int:
    """Insert the default rules that are missing (by name); return how many were added."""
    have = set(session.scalars(select(t.AlertRule.name)))
    missing = [t.AlertRule(**spec) for spec in DEFAULT_RULES if spec["name"] not in have]
    session.add_all(missing)
    session.flush()
    return len(missing)


def rules_for(session: Session, slice_: Slice, signals: list[str] | None = None) -> list[t.AlertRule]:
    """Enabled rules that apply to a slice (and, if given, to one of these signals)."""
    r = t.AlertRule
    q = select(r).where(r.enabled.is_(True), r.model_version.in_([ALL_BUCKETS, slice_.model_version]),
                        r.bucket == slice_.bucket)
    if signals is not None:
        q = q.where(r.signal.in_(signals))
    return list(session.scalars(q.order_by(r.id)))


def verdict(rule: t.AlertRule, result: Any) -> Verdict:
    """Apply a rule to a signal result: a drift rule takes the drift test; a threshold rule the current mean."""
    raw = result.get if isinstance(result, Mapping) else lambda k, d=None: getattr(result, k, d)

    def get(key: str, default: Any = None) -> Any:  # NaN/inf never reach JSON evidence (PostgreSQL refuses them)
        value = raw(key, default)
        return None if isinstance(value, float) and not math.isfinite(value) else value

    current = get("current_mean")
    if rule.kind == "threshold":
        fired = current is not None and rule.threshold is not None and current > rule.threshold
        return Verdict(rule.signal, bool(fired), current, rule.threshold, "threshold", get("reference_mean"), current)
    return Verdict(rule.signal, bool(get("drift_detected", False)), get("score"), get("threshold"),
                   str(get("test", "drift")), get("reference_mean"), current)


def open_key(rule: t.AlertRule, slice_: Slice) -> str:
    """The dedupe key of a rule × slice while an alert is open."""
    return f"{rule.id}:{slice_.model_version}:{slice_.bucket}"


def open_alert_for(session: Session, rule: t.AlertRule, slice_: Slice) -> t.Alert | None:
    """The open (or acknowledged) alert of a rule × slice, if any."""
    return session.scalar(select(t.Alert).where(t.Alert.open_key == open_key(rule, slice_)))


def _last_closed_at(session: Session, rule: t.AlertRule, slice_: Slice) -> datetime | None:
    a = t.Alert
    q = select(func.max(a.resolved_at)).where(a.rule_id == rule.id, a.model_version == slice_.model_version,
                                              a.bucket == slice_.bucket)
    return aware(session.scalar(q))


def apply_rule(session: Session, *, rule: t.AlertRule, slice_: Slice, result: Any, now: datetime,
               channels: Mapping[str, str], report_id: int | None = None) -> str | None:
    """Open, keep or resolve the alert of a rule × slice for a new result; return "opened", "resolved" or None."""
    v = verdict(rule, result)
    current = open_alert_for(session, rule, slice_)
    cooldown = timedelta(seconds=rule.cooldown_s)
    if alerting.should_open(rule, v, current, _last_closed_at(session, rule, slice_), now, cooldown):
        return "opened" if open_alert(session, rule=rule, slice_=slice_, verdict=v, now=now, channels=channels,
                                      report_id=report_id) else None
    if alerting.should_resolve(v, current):
        _close(current, now)
        return "resolved"
    return None


def open_alert(session: Session, *, rule: t.AlertRule, slice_: Slice, verdict: Verdict, now: datetime,
               channels: Mapping[str, str], report_id: int | None = None) -> t.Alert | None:
    """Insert an open alert and its outbox rows; None when one is already open for the rule × slice.

    Two runs racing past the check both insert; the unique `open_key` fails the second one's flush with an
    IntegrityError, and its caller rolls back (the next run finds the open alert).
    """
    doc = alerting.new_alert({"name": rule.name, "signal": rule.signal, "severity": rule.severity},
                             slice_.as_dict(), verdict, now)
    alert = t.Alert(rule_id=rule.id, open_key=open_key(rule, slice_), model_version=slice_.model_version,
                    bucket=slice_.bucket, signal=rule.signal, severity=rule.severity, status="open",
                    value=verdict.score, threshold=verdict.threshold, message=doc["message"],
                    evidence={"uid": doc["id"], "rule": rule.name, "result": verdict.as_dict()},
                    report_id=report_id, opened_at=now)
    if open_alert_for(session, rule, slice_) is not None:
        return None
    session.add(alert)
    session.flush()
    enqueue(session, alert, channels, now)
    log.info("drift.alert.opened rule=%s slice=%s/%s", rule.name, slice_.model_version, slice_.bucket)
    return alert


def enqueue(session: Session, alert: t.Alert, channels: Mapping[str, str], now: datetime) -> list[t.AlertDelivery]:
    """One outbox row per configured channel (empty URL = not configured) for an alert."""
    doc = {"id": alert.evidence["uid"]}
    rows = [t.AlertDelivery(alert_id=alert.id, channel=channel, url=url, status="pending",
                            idempotency_key=alerting.idempotency_key(doc, channel), next_attempt_at=now, created_at=now)
            for channel, url in channels.items() if url]
    session.add_all(rows)
    session.flush()
    return rows


def _close(alert: t.Alert, now: datetime) -> None:
    alert.status, alert.resolved_at, alert.open_key = "resolved", now, None


def _get_alert(session: Session, alert_id: int) -> t.Alert:
    alert = session.get(t.Alert, alert_id, with_for_update=True)
    if alert is None:
        raise NotFound(f"no alert {alert_id}")
    return alert


def acknowledge(session: Session, *, alert_id: int, now: datetime | None = None) -> t.Alert:
    """Acknowledge an open alert (it stays open, so the rule × slice does not alert again); idempotent."""
    alert = _get_alert(session, alert_id)
    if alert.status == "resolved":
        raise AlertStateError(f"alert {alert_id} is already resolved")
    if alert.status == "open":
        alert.status, alert.acknowledged_at = "acknowledged", now or datetime.now(timezone.utc)
        session.flush()
    return alert


def resolve(session: Session, *, alert_id: int, now: datetime | None = None) -> t.Alert:
    """Resolve an alert by hand (the cooldown then starts); idempotent."""
    alert = _get_alert(session, alert_id)
    if alert.status != "resolved":
        _close(alert, now or datetime.now(timezone.utc))
        session.flush()
    return alert


def list_alerts(session: Session, *, status: str | None = None, severity: str | None = None,
                model_version: str | None = None, limit: int = 100, offset: int = 0) -> tuple[int, list[t.Alert]]:
    """Alerts, newest first, with the total matching count."""
    a = t.Alert
    q = select(a)
    for column, value in ((a.status, status), (a.severity, severity), (a.model_version, model_version)):
        if value is not None:
            q = q.where(column == value)
    total = session.scalar(select(func.count()).select_from(q.subquery())) or 0
    return total, list(session.scalars(q.order_by(a.id.desc()).limit(limit).offset(offset)))


def document(alert: t.Alert, rule_name: str | None = None) -> dict[str, Any]:
    """The alert as `alerting` payload builders expect it (its id is the alert's global uid)."""
    return {
        "id": alert.evidence.get("uid", str(alert.id)), "alert_id": alert.id,
        "rule": rule_name or alert.evidence.get("rule"), "signal": alert.signal,
        "slice": {"model_version": alert.model_version, "bucket": alert.bucket}, "severity": alert.severity,
        "status": alert.status, "value": alert.value, "threshold": alert.threshold, "message": alert.message,
        "opened_at": aware(alert.opened_at), "resolved_at": aware(alert.resolved_at), "report_id": alert.report_id,
    }


def _claim_due(session: Session, now: datetime, skip: set[int]) -> t.AlertDelivery | None:
    d = t.AlertDelivery
    q = select(d).where(d.status == "pending", d.next_attempt_at <= now)
    if skip:
        q = q.where(d.id.not_in(skip))
    q = (q.order_by(d.next_attempt_at, d.id).limit(1).with_for_update(skip_locked=True))
    return session.scalar(q)


def deliver_pending(session: Session, now: datetime, secret: str | bytes | None, client: httpx.Client,
                    limit: int = 100) -> dict[str, int]:
    """Send due outbox rows: delivered ones are marked, failed ones rescheduled with backoff.

    The one place in the domain that commits: each attempt is committed before the next request, so a crash
    never forgets that a delivery left the process (receivers drop repeats by Idempotency-Key anyway).
    """
    counts = {"attempted": 0, "delivered": 0, "retry": 0}
    tried: set[int] = set()
    while counts["attempted"] < limit:
        row = _claim_due(session, now, tried)
        if row is None:
            break
        tried.add(row.id)
        alert = session.get(t.Alert, row.alert_id)
        try:
            outcome = alerting.deliver(row.channel, row.url, document(alert), secret, client, now=now)
            delivered, error = outcome.delivered, outcome.error
        except ValueError as exc:  # e.g. the webhook channel without a signing secret: keep it until configured
            delivered, error = False, str(exc)
        row.attempts += 1
        counts["attempted"] += 1
        if delivered:
            row.status, row.delivered_at, row.last_error = "delivered", now, None
            counts["delivered"] += 1
        else:
            row.next_attempt_at = now + timedelta(seconds=alerting.next_backoff(row.attempts))
            row.last_error = (error or "")[:2000]
            counts["retry"] += 1
            log.warning("drift.delivery.retry channel=%s attempts=%d error=%s", row.channel, row.attempts, error)
        session.commit()
    return counts
