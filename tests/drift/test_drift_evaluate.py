"""Drift evaluation on synthetic descriptor windows with fixed seeds."""

import json
import warnings

import numpy as np
import pytest

warnings.filterwarnings("ignore", category=DeprecationWarning)

from drift.evaluate import DEFAULT_SIGNALS, DriftInputError, default_evidently, evaluate  # noqa: E402
from drift.simulate import SHIFTS, make_window  # noqa: E402

ROWS = 2000


def windows(seed, spec_name=None, with_rm_score=True):
    rng = np.random.default_rng(seed)
    reference = make_window(ROWS, rng)
    spec = SHIFTS[spec_name] if spec_name else None
    current = make_window(ROWS, rng, spec) if spec else make_window(ROWS, rng)
    if not with_rm_score:
        reference, current = reference.drop(columns="rm_score"), current.drop(columns="rm_score")
    return reference, current


@pytest.mark.parametrize(
    "shift, signal, test",
    [
        ("refusal_2_to_6%", "is_refusal", "z"),
        ("sycophancy_marker_3_to_9%", "sycophancy_marker", "z"),
        ("length_+25%", "length_chars", "wasserstein"),
    ],
)
def test_shifted_window_is_detected_on_its_signal_only(shift, signal, test):
    result = evaluate(*windows(101, shift))
    assert result.drifted == [signal]
    drifted = result.signals[signal]
    assert drifted.test == test
    if drifted.score_kind == "p_value":
        assert drifted.score < drifted.threshold == 0.001
    else:
        assert drifted.score >= drifted.threshold == 0.1


def test_null_window_is_not_detected_and_reports_every_signal():
    result = evaluate(*windows(202))
    assert not result.drift_detected
    assert set(result.signals) == {s.column for s in DEFAULT_SIGNALS}
    for name, signal in result.signals.items():
        assert signal.test in ("z", "wasserstein"), name
        assert signal.threshold > 0
        assert 0.0 <= signal.score <= 1.0
        assert signal.n_reference == signal.n_current == ROWS
    refusal = result.signals["is_refusal"]
    assert refusal.score_kind == "p_value" and refusal.score > 0.001
    assert abs(refusal.reference_mean - 0.02) < 0.01


def test_refusal_rate_jump_missed_by_evidently_defaults_is_caught_by_ours():
    reference, current = windows(303, "refusal_2_to_6%")
    ours, default = evaluate(reference, current), default_evidently(reference, current)
    assert ours.signals["is_refusal"].drift_detected
    assert default.signals["is_refusal"].test == "Jensen-Shannon distance"
    assert not default.signals["is_refusal"].drift_detected
    assert default.config == "evidently_default"


def test_optional_rm_score_is_skipped_when_absent_or_all_nan():
    reference, current = windows(404, with_rm_score=False)
    result = evaluate(reference, current)
    assert result.skipped == ["rm_score"] and "rm_score" not in result.signals
    reference, current = windows(404)
    current["rm_score"] = np.nan
    assert evaluate(reference, current).skipped == ["rm_score"]


def test_required_signal_missing_or_empty_window_is_an_input_error():
    reference, current = windows(505)
    with pytest.raises(DriftInputError):
        evaluate(reference, current.drop(columns="is_refusal"))
    with pytest.raises(DriftInputError):
        evaluate(reference, current.iloc[:0])


def test_boolean_columns_and_missing_values_are_accepted():
    reference, current = windows(606, "refusal_2_to_6%")
    current["is_refusal"] = current["is_refusal"].astype(bool)
    current.loc[current.index[:100], "negative_feedback"] = np.nan
    result = evaluate(reference, current)
    assert result.drifted == ["is_refusal"]
    assert result.signals["negative_feedback"].n_current == ROWS - 100


def test_summary_is_json_and_snapshot_renders_html(tmp_path):
    result = evaluate(*windows(708, "refusal_2_to_6%"))
    summary = json.loads(json.dumps(result.summary()))
    assert summary["drifted"] == ["is_refusal"]
    assert {"test", "score", "threshold", "drift_detected"} <= set(summary["signals"]["is_refusal"])
    evidently_dict = result.snapshot.dict()
    assert len(evidently_dict["metrics"]) == len(DEFAULT_SIGNALS)
    path = tmp_path / "drift.html"
    result.save_html(str(path))
    assert path.stat().st_size > 10_000
