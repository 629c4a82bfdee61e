"""Drift windows and alerts against real databases (SQLite and PostgreSQL): slices, references, dedupe, outbox."""

import math
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from drift import alerts, windows
from drift.windows import EmptyWindow, Slice
from schemas import tables as t
from services import db

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
CHANNELS = {"webhook": "http://hooks.invalid/ff", "slack": "http://slack.invalid/x"}


@pytest.fixture
def factory(database_url):
    engine = db.make_engine(database_url)
    yield db.session_factory(engine)
    engine.dispose()


def add_interactions(session, start, n, *, model_version="v1", bucket="general", length=100, refusal=False,
                     descriptors=True):
    """Insert n interactions with descriptors, one second apart from `start` (event ids e-<i>)."""
    for i in range(start, start + n):
        session.add(t.Interaction(
            event_id=f"e-{i}", payload_hash="h", occurred_at=T0 + timedelta(seconds=i), app="a",
            conversation_id=f"c{i}", prompt="p", response="r", model_name="m", model_version=model_version,
            domain_bucket=bucket, length_chars=length + i % 7 if descriptors else None,
            is_refusal=refusal if descriptors else None, sycophancy_marker=False if descriptors else None,
            sycophancy_flip=False if descriptors else None))
    session.flush()


def add_feedback(session, event_id, negative, n):
    session.add(t.Feedback(event_id=f"fb-{event_id}-{n}", payload_hash="h", interaction_event_id=event_id,
                           kind="thumbs", source="end_user", is_negative=negative, occurred_at=T0, body={}))


def test_slices_references_and_windows(factory):
    with db.unit_of_work(factory) as s:
        add_interactions(s, 0, 30, bucket="general")
        add_interactions(s, 30, 10, bucket="code")
        add_interactions(s, 100, 12, model_version="v2", bucket="general")
        add_feedback(s, "e-35", True, 1)
        add_feedback(s, "e-35", True, 2)   # two negative feedbacks still count once
        add_feedback(s, "e-36", False, 1)  # positive feedback does not count
    with db.unit_of_work(factory) as s:
        counts = windows.slice_counts(s)
        assert counts == {Slice("v1"): 40, Slice("v1", "general"): 30, Slice("v1", "code"): 10, Slice("v2"): 12,
                          Slice("v2", "general"): 12}
        # v2/general holds exactly v2's rows: left to the `*` slice; v1/code is under the minimum
        assert windows.slices(s, 12) == [Slice("v1"), Slice("v1", "general"), Slice("v2")]

        assert windows.pin_first_rows(s, Slice("v1", "code"), 11) is None
        ref = windows.pin_first_rows(s, Slice("v1"), 20, now=T0)
        assert (windows.aware(ref.window_start), windows.aware(ref.window_end)) == (T0, T0 + timedelta(seconds=19))
        assert windows.active_reference(s, Slice("v1")).id == ref.id
        reference = windows.reference_window(s, ref)
        assert reference.n == 20 and reference.frame["length_chars"].iloc[0] == 100
        current = windows.current_window(s, Slice("v1"), after=windows.aware(ref.window_end), n=15)
        assert current.n == 15 and current.ids == list(range(26, 41))  # ids are 1-based: e-25 .. e-39
        assert current.start == T0 + timedelta(seconds=25) and current.end == T0 + timedelta(seconds=39)
        assert current.frame["negative_feedback"].tolist() == [0] * 10 + [1] + [0] * 4  # e-35 only
        assert str(current.frame["is_refusal"].dtype) == "int64"
        assert current.signature()["negative"] == 1


def test_null_descriptors_become_nan_and_pinning_replaces_the_reference(factory):
    with db.unit_of_work(factory) as s:
        add_interactions(s, 0, 5)
        add_interactions(s, 5, 5, descriptors=False)
    with db.unit_of_work(factory) as s:
        first = windows.pin_reference(s, Slice("v1"), start=T0, end=T0 + timedelta(seconds=3), now=T0)
        assert first.n_rows == 4
        window = windows.current_window(s, Slice("v1"), after=T0 + timedelta(seconds=3), n=100)
        assert window.n == 6 and math.isnan(window.frame["is_refusal"].iloc[-1])
        assert window.frame["is_refusal"].dtype == "float64"
        second = windows.pin_reference(s, Slice("v1"), last_n=3)
        assert (second.n_rows, windows.aware(second.window_start)) == (3, T0 + timedelta(seconds=7))
        assert [r.id for r in windows.list_references(s, active_only=True)] == [second.id]
        assert len(windows.list_references(s)) == 2
        with pytest.raises(EmptyWindow):
            windows.pin_reference(s, Slice("v9"), last_n=10)
        with pytest.raises(EmptyWindow):
            windows.pin_reference(s, Slice("v1"), start=T0 + timedelta(days=1), end=T0 + timedelta(days=2))


def drift(detected, score=0.5):
    return {"signal": "length_chars", "drift_detected": detected, "score": score, "threshold": 0.1,
            "test": "wasserstein", "reference_mean": 100.0, "current_mean": 150.0}


def open_alerts(s):
    return list(s.scalars(select(t.Alert).where(t.Alert.open_key.is_not(None))))


def test_alert_dedupe_cooldown_ack_and_resolve(factory):
    sl = Slice("v1")
    with db.unit_of_work(factory) as s:
        assert alerts.seed_rules(s) == len(alerts.DEFAULT_RULES)
        assert alerts.seed_rules(s) == 0
        rule = next(r for r in alerts.rules_for(s, sl, ["length_chars"]))
        assert rule.name == "drift_length_chars" and alerts.rules_for(s, Slice("v1", "code"), ["length_chars"]) == []
        cooldown = timedelta(seconds=rule.cooldown_s)
        assert alerts.apply_rule(s, rule=rule, slice_=sl, result=drift(True), now=T0, channels=CHANNELS) == "opened"
    with db.unit_of_work(factory) as s:
        rule = s.get(t.AlertRule, rule.id)
        # still drifting: deduped, still one open alert; its outbox rows were written with it
        assert alerts.apply_rule(s, rule=rule, slice_=sl, result=drift(True), now=T0 + timedelta(minutes=5),
                                 channels=CHANNELS) is None
        [alert] = open_alerts(s)
        deliveries = s.scalars(select(t.AlertDelivery).where(t.AlertDelivery.alert_id == alert.id)).all()
        assert sorted(d.channel for d in deliveries) == ["slack", "webhook"]
        assert {d.idempotency_key for d in deliveries} == {f"{alert.evidence['uid']}:slack",
                                                           f"{alert.evidence['uid']}:webhook"}
        assert alerts.acknowledge(s, alert_id=alert.id, now=T0).status == "acknowledged"
        assert alerts.acknowledge(s, alert_id=alert.id).status == "acknowledged"  # idempotent
        assert alerts.apply_rule(s, rule=rule, slice_=sl, result=drift(True), now=T0 + timedelta(minutes=10),
                                 channels=CHANNELS) is None
        # drift is gone: resolved, its open key released
        assert alerts.apply_rule(s, rule=rule, slice_=sl, result=drift(False, 0.01), now=T0 + timedelta(minutes=15),
                                 channels=CHANNELS) == "resolved"
        assert open_alerts(s) == [] and alert.open_key is None and alert.status == "resolved"
        with pytest.raises(alerts.AlertStateError):
            alerts.acknowledge(s, alert_id=alert.id)
        # drifting again inside the cooldown: nothing; after it: a new alert with new deliveries
        again = T0 + timedelta(minutes=15) + cooldown
        assert alerts.apply_rule(s, rule=rule, slice_=sl, result=drift(True), now=again - timedelta(seconds=1),
                                 channels=CHANNELS) is None
        assert alerts.apply_rule(s, rule=rule, slice_=sl, result=drift(True), now=again, channels={}) == "opened"
        [second] = open_alerts(s)
        assert second.id != alert.id and second.evidence["uid"] != alert.evidence["uid"]
        assert alerts.resolve(s, alert_id=second.id, now=again).status == "resolved"
        assert alerts.resolve(s, alert_id=second.id).status == "resolved"
        total, rows = alerts.list_alerts(s, status="resolved")
        assert total == 2 and [r.id for r in rows] == [second.id, alert.id]
        assert s.scalar(select(func.count()).select_from(t.AlertDelivery)) == 2


def test_open_key_is_unique_in_the_database(factory):
    with db.unit_of_work(factory) as s:
        alerts.seed_rules(s)
        rule = s.scalar(select(t.AlertRule).where(t.AlertRule.name == "drift_is_refusal"))
        alerts.apply_rule(s, rule=rule, slice_=Slice("v1"), result={**drift(True), "signal": "is_refusal"}, now=T0,
                          channels={})
        key = alerts.open_key(rule, Slice("v1"))
    with pytest.raises(IntegrityError):
        with db.unit_of_work(factory) as s:
            s.add(t.Alert(rule_id=rule.id, open_key=key, model_version="v1", bucket="*", signal="is_refusal",
                          severity="warning", message="racing duplicate"))
            s.flush()


def test_threshold_rule_and_outbox_retries_until_delivered_once(factory):
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.headers["Idempotency-Key"])
        return httpx.Response(503 if len(calls) < 3 else 200)

    client = httpx.Client(transport=httpx.MockTransport(handler))
    with db.unit_of_work(factory) as s:
        alerts.seed_rules(s)
        [rule] = alerts.rules_for(s, Slice("v7"), [alerts.PROBE_SIGNAL])
        assert rule.kind == "threshold" and rule.severity == "critical"
        result = {"signal": alerts.PROBE_SIGNAL, "current_mean": 0.1}
        assert alerts.apply_rule(s, rule=rule, slice_=Slice("v7"), result=result, now=T0, channels=CHANNELS) is None
        result["current_mean"] = 0.4
        assert alerts.apply_rule(s, rule=rule, slice_=Slice("v7"), result=result, now=T0,
                                 channels={"webhook": "http://hooks.invalid/ff"}) == "opened"
    now = T0
    with factory() as s:
        assert alerts.deliver_pending(s, now, "secret", client) == {"attempted": 1, "delivered": 0, "retry": 1}
        # not due again before its backoff
        assert alerts.deliver_pending(s, now + timedelta(seconds=1), "secret", client)["attempted"] == 0
        for _ in range(5):
            now += timedelta(hours=1)
            alerts.deliver_pending(s, now, "secret", client)
        row = s.scalar(select(t.AlertDelivery))
        assert (row.status, row.attempts, row.last_error) == ("delivered", 3, None)
    assert len(calls) == 3 and len(set(calls)) == 1
