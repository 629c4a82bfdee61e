"""Drift alerts without a database: when to open one, payloads per channel, signed delivery, retry backoff.

An alert is a plain dict (or a dataclass with the same fields): `id`, `rule`, `signal`, `slice`
(`{"model_version", "bucket"}`), `severity`, `status` (`open` | `acked` | `resolved`), `value`, `threshold`,
`message`, `opened_at`, optionally `resolved_at` and `url`. Delivery is at-least-once from an outbox, so every
request carries an `Idempotency-Key` (alert id + channel) that stays the same across retries; generic webhooks
are signed with HMAC-SHA256 over the exact body bytes (`X-FF-Signature: sha256=<hex>`), and the body repeats
the `X-FF-Timestamp` value so receivers can reject stale replays without trusting an unsigned header.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Mapping

import httpx

CHANNELS = ("webhook", "slack", "alertmanager")
SIGNATURE_HEADER = "X-FF-Signature"
TIMESTAMP_HEADER = "X-FF-Timestamp"
# An open alert pushed to Alertmanager expires after this unless re-sent, so a dead drift job cannot leave
# an alert firing forever.
ALERTMANAGER_TTL = timedelta(hours=2)


@dataclass(frozen=True)
class DeliveryResult:
    """The outcome of one delivery attempt."""

    channel: str
    delivered: bool
    retry: bool
    status_code: int | None
    idempotency_key: str
    error: str | None = None


def _as_dict(obj: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, Mapping):
        return dict(obj)
    return dict(vars(obj))


def _get(obj: Any, key: str, default: Any = None) -> Any:
    return obj.get(key, default) if isinstance(obj, Mapping) else getattr(obj, key, default)


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _parse_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _slice(alert: Mapping[str, Any]) -> dict[str, str]:
    slice_ = alert.get("slice") or {}
    return {key: "all" if slice_.get(key) is None else str(slice_.get(key)) for key in ("model_version", "bucket")}


def idempotency_key(alert: Any, channel: str) -> str:
    """The key a receiver uses to drop duplicate deliveries: alert id and channel."""
    return f"{_get(alert, 'id')}:{channel}"


def summary_line(alert: Any) -> str:
    """One human line: what drifted, where, and by how much."""
    a = _as_dict(alert)
    s = _slice(a)
    return (
        f"[{str(a.get('severity', 'warning')).upper()}] {a.get('signal')} drift on model {s['model_version']} "
        f"/ bucket {s['bucket']}: score {a.get('value')} vs threshold {a.get('threshold')} ({a.get('status')})"
    )


def alert_document(alert: Any) -> dict[str, Any]:
    """The alert as a JSON-able dict with ISO-8601 UTC times."""
    a = _as_dict(alert)
    a["slice"] = _slice(a)
    for key in ("opened_at", "resolved_at"):
        a[key] = _iso(a.get(key))
    return a


def sign(body: bytes, secret: str | bytes) -> str:
    """`sha256=<hex>` HMAC-SHA256 of the body under the shared secret."""
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def verify_signature(
    body: bytes,
    header: str | None,
    secret: str | bytes,
    timestamp: str | None = None,
    now: datetime | None = None,
    tolerance: timedelta = timedelta(minutes=5),
) -> bool:
    """Check an `X-FF-Signature` header (constant time); with `timestamp`, also reject ones outside `tolerance`."""
    if not header or not hmac.compare_digest(sign(body, secret), header.strip()):
        return False
    if timestamp is None:
        return True
    try:
        sent = datetime.fromtimestamp(int(timestamp), tz=timezone.utc)
        signed_sent_at = json.loads(body).get("sent_at")
    except (ValueError, TypeError, AttributeError):
        return False
    if signed_sent_at is not None and int(signed_sent_at) != int(timestamp):
        return False
    return abs((now or datetime.now(timezone.utc)) - sent) <= tolerance


def generic_webhook_payload(
    alert: Any, secret: str | bytes, now: datetime | None = None, channel: str = "webhook"
) -> tuple[bytes, dict[str, str]]:
    """Body bytes and headers for a generic signed JSON webhook."""
    sent_at = int((now or datetime.now(timezone.utc)).timestamp())
    document = {
        "type": "drift_alert",
        "sent_at": sent_at,
        "summary": summary_line(alert),
        "alert": alert_document(alert),
    }
    body = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(body, secret),
        TIMESTAMP_HEADER: str(sent_at),
        "Idempotency-Key": idempotency_key(alert, channel),
    }
    return body, headers


def slack_payload(alert: Any) -> dict[str, Any]:
    """A Slack incoming-webhook message: fallback `text` plus Block Kit `blocks`."""
    a = alert_document(alert)
    s = a["slice"]
    resolved = a.get("status") == "resolved"
    title = f"{'Resolved' if resolved else 'Drift'}: {a.get('signal')} ({s['model_version']} / {s['bucket']})"
    fields = [
        ("Severity", a.get("severity")), ("Status", a.get("status")), ("Rule", a.get("rule")),
        ("Signal", a.get("signal")), ("Score", a.get("value")), ("Threshold", a.get("threshold")),
        ("Model version", s["model_version"]), ("Bucket", s["bucket"]),
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": str(a.get("message") or summary_line(a))[:3000]}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in fields]},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"alert `{a.get('id')}` opened {a['opened_at']}"}]},
    ]
    if a.get("url"):
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"<{a['url']}|Open the drift report>"}})
    return {"text": summary_line(a), "blocks": blocks}


def alertmanager_payload(
    alert: Any, generator_url: str | None = None, now: datetime | None = None, ttl: timedelta = ALERTMANAGER_TTL
) -> list[dict[str, Any]]:
    """The JSON list for Alertmanager's `POST /api/v2/alerts` (resolved alerts end at `resolved_at`)."""
    a = _as_dict(alert)
    s = _slice(a)
    opened = _parse_time(a["opened_at"])
    if a.get("status") == "resolved":
        ends = _parse_time(a.get("resolved_at") or now or datetime.now(timezone.utc))
    else:
        ends = (now or datetime.now(timezone.utc)) + ttl
    return [
        {
            "labels": {
                "alertname": str(a.get("rule")),
                "severity": str(a.get("severity", "warning")),
                "model_version": s["model_version"],
                "bucket": s["bucket"],
                "signal": str(a.get("signal")),
            },
            "annotations": {
                "summary": summary_line(a),
                "description": str(a.get("message") or summary_line(a)),
                "alert_id": str(a.get("id")),
            },
            "startsAt": _iso(opened),
            "endsAt": _iso(ends),
            "generatorURL": generator_url or str(a.get("url") or ""),
        }
    ]


def build_request(
    channel: str, alert: Any, secret: str | bytes | None, now: datetime | None = None
) -> tuple[bytes, dict[str, str]]:
    """Body and headers for one channel; every channel carries the Idempotency-Key, signed when a secret is set."""
    if channel == "webhook":
        if not secret:
            raise ValueError("the generic webhook channel needs a signing secret")
        return generic_webhook_payload(alert, secret, now, channel)
    if channel == "slack":
        document: Any = slack_payload(alert)
    elif channel == "alertmanager":
        document = alertmanager_payload(alert, now=now)
    else:
        raise ValueError(f"unknown alert channel {channel!r}; expected one of {CHANNELS}")
    body = json.dumps(document, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "Idempotency-Key": idempotency_key(alert, channel)}
    if secret:
        headers[SIGNATURE_HEADER] = sign(body, secret)
    return body, headers


def deliver(
    channel: str, url: str, alert: Any, secret: str | bytes | None, client: httpx.Client, now: datetime | None = None
) -> DeliveryResult:
    """POST the alert to one channel: 2xx is delivered; any other status or a transport error means retry."""
    key = idempotency_key(alert, channel)
    body, headers = build_request(channel, alert, secret, now)
    try:
        response = client.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return DeliveryResult(channel, False, True, None, key, f"{type(exc).__name__}: {exc}")
    if 200 <= response.status_code < 300:
        return DeliveryResult(channel, True, False, response.status_code, key)
    return DeliveryResult(channel, False, True, response.status_code, key, response.text[:500])


def next_backoff(
    attempts: int, base: float = 5.0, cap: float = 900.0, jitter: float = 0.2, rand: Callable[[], float] = random.random
) -> float:
    """Seconds before the next attempt: base * 2**(attempts-1), capped, minus up to `jitter` of it at random."""
    exponent = max(attempts, 1) - 1
    delay = cap if exponent >= 64 else min(cap, base * 2.0**exponent)
    return delay * (1.0 - jitter * rand())


def should_open(
    rule: Any,
    result: Any,
    open_alert: Any | None,
    last_closed_at: datetime | None,
    now: datetime,
    cooldown: timedelta,
) -> bool:
    """Open a new alert only if the rule is enabled, its signal drifted, none is open for this rule and slice,
    and the last one for it was closed at least `cooldown` ago."""
    if not _get(rule, "enabled", True):
        return False
    if not _get(result, "drift_detected", False):
        return False
    if open_alert is not None and _get(open_alert, "status", "open") != "resolved":
        return False
    return last_closed_at is None or now - last_closed_at >= cooldown


def should_resolve(result: Any, open_alert: Any | None) -> bool:
    """Resolve the open alert of a rule and slice once its signal no longer drifts."""
    if open_alert is None or _get(open_alert, "status", "open") == "resolved":
        return False
    return not _get(result, "drift_detected", False)


def new_alert(rule: Any, slice_: Mapping[str, Any], result: Any, now: datetime) -> dict[str, Any]:
    """A new open alert for a rule, a slice and the drifting signal's result (id stable for the same inputs)."""
    signal = _get(result, "signal") or _get(rule, "signal")
    name = _get(rule, "name") or _get(rule, "id") or f"drift_{signal}"
    s = {"model_version": slice_.get("model_version"), "bucket": slice_.get("bucket")}
    seed = json.dumps([name, s, _iso(now)], sort_keys=True, default=str)
    before, after = _get(result, "reference_mean"), _get(result, "current_mean")
    change = f" ({before:.4g} -> {after:.4g})" if before is not None and after is not None else ""
    return {
        "id": hashlib.sha256(seed.encode()).hexdigest()[:32],
        "rule": name,
        "signal": signal,
        "slice": s,
        "severity": _get(rule, "severity", "warning"),
        "status": "open",
        "value": _get(result, "score"),
        "threshold": _get(result, "threshold"),
        "message": (
            f"{signal} drifted on model {s['model_version']} / bucket {s['bucket']}{change}: "
            f"{_get(result, 'test')} score {_get(result, 'score')} vs threshold {_get(result, 'threshold')}"
        ),
        "opened_at": now,
    }
