"""Promotion gates: a reward model must not be worse than the incumbent; a policy must beat where it started."""

import math

import pytest

from retrain import reward, steps


def test_reward_gate_compares_on_the_same_holdout():
    new = {"accuracy": 0.71, "eval_hash": "h", "holdout_pairs": 100}
    assert steps.reward_gate(new, None)["promote"] is True
    assert steps.reward_gate(new, {"accuracy": 0.71, "eval_hash": "h"})["promote"] is True  # equal is not worse
    worse = steps.reward_gate(new, {"accuracy": 0.75, "eval_hash": "h"})
    assert worse["promote"] is False and "worse than" in worse["reason"]
    assert steps.reward_gate(new, {"accuracy": 0.72, "eval_hash": "h"}, tolerance=0.02)["promote"] is True
    assert steps.reward_gate({**new, "accuracy": math.nan}, None)["promote"] is False  # nothing to evaluate on
    with pytest.raises(reward.GateError):
        steps.reward_gate(new, {"accuracy": 0.5, "eval_hash": "other"})


def test_policy_gate_needs_a_gain_without_losing_under_the_reward_model_or_the_probes():
    base = {"win_rate": 0.5, "implied_accuracy": 0.5, "probe_rate": 0.2}
    gate = steps.policy_gate
    assert gate({"best": {**base, "implied_accuracy": 0.8}, "baseline": base})["promote"] is True
    assert gate({"best": {**base, "win_rate": 0.4, "implied_accuracy": 0.9}, "baseline": base})["promote"] is False
    assert gate({"best": dict(base), "baseline": base})["promote"] is False
    sycophantic = gate({"best": {**base, "win_rate": 0.7, "probe_rate": 0.3}, "baseline": base})
    assert sycophantic["promote"] is False and "probe rate" in sycophantic["reason"]
    assert gate({"best": {}, "baseline": {}})["promote"] is False
