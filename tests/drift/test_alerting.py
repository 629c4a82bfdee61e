"""Alert payload shapes, signatures, delivery outcomes, backoff and the open/dedupe/cooldown rules."""

import json
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from drift import alerting

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
SECRET = "s3cret"


@pytest.fixture()
def alert():
    return {
        "id": "a1b2c3",
        "rule": "refusal_rate_drift",
        "signal": "is_refusal",
        "slice": {"model_version": "policy-7", "bucket": "medical"},
        "severity": "critical",
        "status": "open",
        "value": 1.2e-9,
        "threshold": 0.001,
        "message": "is_refusal drifted (0.02 -> 0.06)",
        "opened_at": NOW - timedelta(minutes=5),
    }


def test_generic_webhook_is_signed_over_the_body_and_verifies(alert):
    body, headers = alerting.generic_webhook_payload(alert, SECRET, now=NOW)
    document = json.loads(body)
    assert document["alert"]["id"] == "a1b2c3" and document["alert"]["opened_at"] == "2025-03-01T11:55:00Z"
    assert headers["X-FF-Signature"].startswith("sha256=") and len(headers["X-FF-Signature"]) == 7 + 64
    assert headers["X-FF-Timestamp"] == str(int(NOW.timestamp())) == str(document["sent_at"])
    assert headers["Idempotency-Key"] == "a1b2c3:webhook"
    assert alerting.verify_signature(body, headers["X-FF-Signature"], SECRET)
    assert not alerting.verify_signature(body + b" ", headers["X-FF-Signature"], SECRET)
    assert not alerting.verify_signature(body, headers["X-FF-Signature"], "other")
    assert not alerting.verify_signature(body, None, SECRET)
    stamp = headers["X-FF-Timestamp"]
    assert alerting.verify_signature(body, headers["X-FF-Signature"], SECRET, stamp, now=NOW + timedelta(minutes=1))
    assert not alerting.verify_signature(body, headers["X-FF-Signature"], SECRET, stamp, now=NOW + timedelta(hours=1))
    assert not alerting.verify_signature(body, headers["X-FF-Signature"], SECRET, str(int(stamp) + 1), now=NOW)


def test_idempotency_key_is_stable_across_retries_and_distinct_per_channel(alert):
    _, first = alerting.generic_webhook_payload(alert, SECRET, now=NOW)
    _, retry = alerting.generic_webhook_payload(alert, SECRET, now=NOW + timedelta(minutes=10))
    assert first["Idempotency-Key"] == retry["Idempotency-Key"]
    assert first["X-FF-Signature"] != retry["X-FF-Signature"]  # new timestamp, new signature
    keys = {alerting.build_request(c, alert, SECRET, NOW)[1]["Idempotency-Key"] for c in alerting.CHANNELS}
    assert keys == {"a1b2c3:webhook", "a1b2c3:slack", "a1b2c3:alertmanager"}


def test_slack_payload_has_text_and_blocks(alert):
    payload = alerting.slack_payload(alert)
    assert "is_refusal" in payload["text"] and "CRITICAL" in payload["text"]
    types = [block["type"] for block in payload["blocks"]]
    assert types[0] == "header" and "section" in types and "context" in types
    assert len(payload["blocks"][0]["text"]["text"]) <= 150
    fields = next(b for b in payload["blocks"] if "fields" in b)["fields"]
    assert any("policy-7" in f["text"] for f in fields) and all(f["type"] == "mrkdwn" for f in fields)
    json.dumps(payload)


def test_alertmanager_payload_matches_the_v2_alerts_api(alert):
    (firing,) = alerting.alertmanager_payload(alert, generator_url="http://ff/drift/1", now=NOW)
    assert firing["labels"] == {
        "alertname": "refusal_rate_drift", "severity": "critical", "model_version": "policy-7",
        "bucket": "medical", "signal": "is_refusal",
    }
    assert {"summary", "description"} <= set(firing["annotations"])
    assert firing["startsAt"] == "2025-03-01T11:55:00Z"
    assert firing["endsAt"] == "2025-03-01T14:00:00Z"  # now + TTL while firing
    assert firing["generatorURL"] == "http://ff/drift/1"
    resolved = dict(alert, status="resolved", resolved_at=NOW + timedelta(hours=1), slice={"model_version": "v"})
    (done,) = alerting.alertmanager_payload(resolved, now=NOW)
    assert done["endsAt"] == "2025-03-01T13:00:00Z" and done["labels"]["bucket"] == "all"
    assert all(isinstance(v, str) for v in done["labels"].values())


def test_deliver_outcomes_and_receiver_verification(alert):
    seen = []

    def handler(request):
        seen.append(request)
        if request.url.path == "/down":
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(204 if request.url.path == "/ok" else 503)

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        ok = alerting.deliver("webhook", "http://hook/ok", alert, SECRET, client, now=NOW)
        busy = alerting.deliver("slack", "http://hook/busy", alert, None, client, now=NOW)
        down = alerting.deliver("alertmanager", "http://hook/down", alert, None, client, now=NOW)
    assert (ok.delivered, ok.retry, ok.status_code) == (True, False, 204)
    assert (busy.delivered, busy.retry, busy.status_code) == (False, True, 503)
    assert (down.delivered, down.retry, down.status_code) == (False, True, None) and "ConnectError" in down.error
    request = seen[0]
    assert alerting.verify_signature(request.content, request.headers["X-FF-Signature"], SECRET)
    assert request.headers["Idempotency-Key"] == ok.idempotency_key == "a1b2c3:webhook"
    assert isinstance(json.loads(seen[2].content), list)
    with pytest.raises(ValueError):
        alerting.build_request("pager", alert, SECRET)


def test_backoff_grows_exponentially_then_caps():
    low = [alerting.next_backoff(n, base=5, cap=300, jitter=0.2, rand=lambda: 1.0) for n in range(1, 12)]
    high = [alerting.next_backoff(n, base=5, cap=300, jitter=0.2, rand=lambda: 0.0) for n in range(1, 12)]
    assert high[:4] == [5, 10, 20, 40] and high[-1] == 300
    assert all(b > a for a, b in zip(high[:6], high[1:7]))  # doubles until the cap
    assert all(lo < next_lo or next_lo >= 0.8 * 300 for lo, next_lo in zip(low, low[1:]))  # grows even with jitter
    assert all(0.8 * h <= lo <= h <= 300 for lo, h in zip(low, high))
    assert alerting.next_backoff(10_000, cap=300, rand=lambda: 0.0) == 300
    draws = {alerting.next_backoff(3) for _ in range(20)}
    assert len(draws) > 1 and all(16 <= d <= 20 for d in draws)


def test_should_open_dedupes_per_rule_and_slice_and_honours_cooldown(alert):
    rule = {"name": "refusal_rate_drift", "signal": "is_refusal", "severity": "critical"}
    drifted, calm = {"drift_detected": True}, {"drift_detected": False}
    hour = timedelta(hours=1)
    assert alerting.should_open(rule, drifted, None, None, NOW, hour)
    assert not alerting.should_open(rule, calm, None, None, NOW, hour)
    assert not alerting.should_open(rule, drifted, alert, None, NOW, hour)  # one open alert per rule x slice
    assert not alerting.should_open(rule, drifted, dict(alert, status="acked"), None, NOW, hour)
    assert not alerting.should_open(rule, drifted, None, NOW - timedelta(minutes=30), NOW, hour)  # cooling down
    assert alerting.should_open(rule, drifted, None, NOW - hour, NOW, hour)
    assert not alerting.should_open(dict(rule, enabled=False), drifted, None, None, NOW, hour)
    assert alerting.should_resolve(calm, alert) and not alerting.should_resolve(drifted, alert)
    assert not alerting.should_resolve(calm, None)


def test_new_alert_from_a_signal_result_has_a_stable_id():
    from drift.evaluate import SignalResult

    result = SignalResult("is_refusal", "binary", "z", 1e-9, "p_value", 0.001, True, 0.02, 0.06, 2000, 2000)
    rule = {"name": "refusal_rate_drift", "severity": "critical"}
    first = alerting.new_alert(rule, {"model_version": "p7", "bucket": "medical"}, result, NOW)
    again = alerting.new_alert(rule, {"model_version": "p7", "bucket": "medical"}, result, NOW)
    assert first["id"] == again["id"] and first["status"] == "open" and first["signal"] == "is_refusal"
    assert "0.02 -> 0.06" in first["message"] and first["threshold"] == 0.001
    body, headers = alerting.generic_webhook_payload(first, SECRET, now=NOW)
    assert alerting.verify_signature(body, headers["X-FF-Signature"], SECRET)
