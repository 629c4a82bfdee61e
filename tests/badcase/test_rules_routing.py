"""Detection rules and routing, as pure functions."""

import math

from badcase import routing, rules


def row(**kw):
    base = {"prompt": "How do I kill a Python process?", "response": "Use `kill PID`.", "is_refusal": False,
            "sycophancy_marker": False, "sycophancy_flip": False, "length_chars": 100, "verifier_passed": None}
    base.update(kw)
    return base


def names(firings):
    return [f.rule for f in firings]


def test_over_refusal_only_for_benign_requests():
    assert names(rules.evaluate(row(is_refusal=True, refusal_class="full_refusal"))) == ["over_refusal"]
    harmful = row(prompt="How can I poison my neighbour's dog without anyone noticing?", is_refusal=True)
    assert names(rules.evaluate(harmful)) == []
    assert rules.unsafe_request("Give me steps to make a pipe bomb at home")
    assert not rules.unsafe_request("What's the best way to kill weeds in my garden?")


def test_negative_feedback_sycophancy_verifier_reward():
    f = rules.evaluate(row(sycophancy_flip=True, sycophancy_marker=True, verifier_passed=False, rm_score=-2.0,
                           rm_disagreement=0.9), negative_feedback=[{"kind": "thumbs", "value": "down"}])
    assert names(f) == ["negative_feedback", "sycophancy_flip", "low_reward", "reward_disagreement", "verifier_failure"]
    assert rules.severity_of(f) == "high"
    assert names(rules.evaluate(row(sycophancy_marker=True))) == ["sycophancy_marker"]
    disabled = {**rules.DEFAULT_RULES, "sycophancy_marker": rules.Rule(enabled=False)}
    assert names(rules.evaluate(row(sycophancy_marker=True), rules=disabled)) == []


def test_length_anomaly_against_robust_baseline():
    base = rules.LengthBaseline(median=math.log1p(500), mad=0.2, n=200)
    assert names(rules.evaluate(row(length_chars=520), baseline=base)) == []
    fired = rules.evaluate(row(length_chars=5000), baseline=base)
    assert names(fired) == ["length_anomaly"] and fired[0].evidence["direction"] == "long"
    assert fired[0].evidence["robust_z"] > 3.5
    few = rules.LengthBaseline(median=math.log1p(500), mad=0.2, n=10)
    assert rules.evaluate(row(length_chars=5000), baseline=few) == []


def test_reward_summary():
    assert rules.reward_summary({"a": 1.0, "b": 3.0}) == (2.0, 1.0)
    assert rules.reward_summary(None) == (None, None)


def test_cluster_key_collapses_near_duplicates():
    a = routing.cluster_key(["over_refusal"], "v1", "I'm sorry, I can't help with order 1234.")
    b = routing.cluster_key(["over_refusal"], "v1", "I'm sorry, I can't help with order 99.")
    c = routing.cluster_key(["over_refusal"], "v1", "As an AI I cannot give medical advice.")
    assert a == b != c


def test_queue_order_puts_one_per_cluster_first():
    cands = [{"id": i, "cluster_key": "dup", "priority": 10.0} for i in range(500)]
    cands += [{"id": 1000 + i, "cluster_key": f"k{i}", "priority": 1.0} for i in range(50)]
    first = routing.order_for_queue(cands)[:51]
    assert {c["cluster_key"] for c in first} == {"dup"} | {f"k{i}" for i in range(50)}


def test_exploration_share_and_priority():
    share = sum(routing.explore(f"evt-{i}", 0.05) for i in range(20_000)) / 20_000
    assert abs(share - 0.05) < 0.02
    assert routing.priority("high") > routing.priority("low")
    assert routing.priority("high", cluster_size=50) > routing.priority("high")
    assert routing.priority("medium", uncertainty=0.9) > routing.priority("medium", uncertainty=0.1)
    assert routing.reviewers_for("critical") == 5 and routing.reviewers_for("high") == 3


def test_admission_gates():
    ok, why = routing.admission(status="resolved", consent_training=True, is_gold=False, has_chosen=True)
    assert ok and why == []
    ok, why = routing.admission(status="ambiguous", consent_training=False, is_gold=False, has_chosen=True)
    assert not ok and why == ["status is ambiguous", "no training consent"]
