"""Windowed drift evaluation of stored descriptors with Evidently (pure: frames in, results out).

One Evidently `Report` with one `ValueDrift` per signal, each with a stattest chosen for the signal's kind:

- binary rates (refusal, sycophancy markers/flips, negative feedback): two-proportion z-test, p < 0.001.
  Evidently's default for a reference over 1,000 rows is Jensen-Shannon distance at 0.1, which misses
  2 % -> 6 % jumps at 2,000-row windows; the z-test catches them in every trial (see bench/drift_sensitivity.py).
  0.001 per signal (not 0.05) because a window is six tests and runs every hour per slice: the false-alarm
  rate of a whole window stays near 1 %, while 2 -> 6 % still sits at z ~ 6 against a critical z of 3.3.
- numeric (length, reward-model score): normalised Wasserstein distance >= 0.1 (an effect size in reference
  standard deviations). Unlike K-S it does not flag trivial shifts once windows hold 100k rows, and at 2,000
  rows it caught a +25 % length shift in every trial with ~0.3 % false alarms. It is pinned explicitly because
  Evidently switches to K-S when the reference has 1,000 rows or fewer. Its null noise shrinks as 1/sqrt(rows):
  the 0.1 threshold is calibrated for windows of 2,000 rows or more (at 500 rows it would alarm too often).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, Sequence

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.metrics import ValueDrift
from evidently.presets import DataDriftPreset

SignalKind = Literal["numeric", "binary"]

# Evidently stattests whose score is a p-value (drift when below the threshold); the others are distances.
_PVALUE_TESTS = frozenset(
    {"anderson", "chisquare", "cramer_von_mises", "es", "fisher_exact", "g_test", "ks", "mannw",
     "empirical_mmd", "t_test", "TVD", "z"}
)


class DriftInputError(ValueError):
    """The frames given to a drift evaluation cannot be evaluated."""

    code = "drift_input_invalid"


@dataclass(frozen=True)
class Signal:
    """One descriptor column to watch and the stattest used on it."""

    column: str
    kind: SignalKind
    method: str
    threshold: float
    optional: bool = False


DEFAULT_SIGNALS: tuple[Signal, ...] = (
    Signal("length_chars", "numeric", "wasserstein", 0.1),
    Signal("is_refusal", "binary", "z", 0.001),
    Signal("sycophancy_marker", "binary", "z", 0.001),
    Signal("sycophancy_flip", "binary", "z", 0.001),
    Signal("negative_feedback", "binary", "z", 0.001),
    Signal("rm_score", "numeric", "wasserstein", 0.1, optional=True),
)


@dataclass(frozen=True)
class SignalResult:
    """The drift verdict for one signal."""

    signal: str
    kind: SignalKind
    test: str
    score: float
    score_kind: Literal["p_value", "distance"]
    threshold: float
    drift_detected: bool
    reference_mean: float
    current_mean: float
    n_reference: int
    n_current: int

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict."""
        return {
            "signal": self.signal,
            "kind": self.kind,
            "test": self.test,
            "score": _finite(self.score),
            "score_kind": self.score_kind,
            "threshold": self.threshold,
            "drift_detected": self.drift_detected,
            "reference_mean": _finite(self.reference_mean),
            "current_mean": _finite(self.current_mean),
            "n_reference": self.n_reference,
            "n_current": self.n_current,
        }


@dataclass
class DriftResult:
    """Per-signal verdicts of one window plus the Evidently snapshot they came from."""

    signals: dict[str, SignalResult]
    snapshot: Any = field(repr=False)
    skipped: list[str] = field(default_factory=list)
    config: str = "feedback_factory"

    @property
    def drift_detected(self) -> bool:
        """Whether any signal drifted."""
        return any(s.drift_detected for s in self.signals.values())

    @property
    def drifted(self) -> list[str]:
        """Names of the signals that drifted."""
        return [name for name, s in self.signals.items() if s.drift_detected]

    def summary(self) -> dict[str, Any]:
        """Return a compact JSON-able summary (the full Evidently dict is `snapshot.dict()`)."""
        return {
            "config": self.config,
            "drift_detected": self.drift_detected,
            "drifted": self.drifted,
            "skipped": list(self.skipped),
            "signals": {name: s.to_dict() for name, s in self.signals.items()},
        }

    def save_html(self, path: str) -> None:
        """Save Evidently's HTML report of this window."""
        self.snapshot.save_html(path)


def _finite(value: float) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _score_kind(test: str) -> Literal["p_value", "distance"]:
    return "p_value" if test in _PVALUE_TESTS or "p_value" in test else "distance"


def _usable(frame: pd.DataFrame, column: str) -> bool:
    return column in frame.columns and frame[column].notna().any()


def _select(
    reference: pd.DataFrame, current: pd.DataFrame, signals: Sequence[Signal]
) -> tuple[list[Signal], list[str]]:
    """Split signals into those to evaluate and the optional ones skipped for lack of data."""
    if len(reference) == 0 or len(current) == 0:
        raise DriftInputError(f"empty window: {len(reference)} reference rows, {len(current)} current rows")
    active: list[Signal] = []
    skipped: list[str] = []
    for signal in signals:
        if _usable(reference, signal.column) and _usable(current, signal.column):
            active.append(signal)
        elif signal.optional:
            skipped.append(signal.column)
        else:
            raise DriftInputError(f"signal column {signal.column!r} is missing or all-NaN in a window")
    return active, skipped


def _frame(source: pd.DataFrame, signals: Sequence[Signal]) -> pd.DataFrame:
    """Keep only the signal columns, binary ones as integers 0/1 (NaN kept; Evidently drops it)."""
    out = source[[s.column for s in signals]].copy()
    for signal in signals:
        column = out[signal.column]
        if signal.kind == "binary" and not pd.api.types.is_float_dtype(column):
            out[signal.column] = column.astype("int64")
        elif signal.kind == "numeric" and not pd.api.types.is_float_dtype(column):
            out[signal.column] = column.astype("float64")
    return out


def _datasets(
    reference: pd.DataFrame, current: pd.DataFrame, signals: Sequence[Signal]
) -> tuple[Dataset, Dataset]:
    definition = DataDefinition(
        numerical_columns=[s.column for s in signals if s.kind == "numeric"],
        categorical_columns=[s.column for s in signals if s.kind == "binary"],
    )
    return (
        Dataset.from_pandas(_frame(reference, signals), data_definition=definition),
        Dataset.from_pandas(_frame(current, signals), data_definition=definition),
    )


def _results(
    snapshot: Any, reference: pd.DataFrame, current: pd.DataFrame, signals: Sequence[Signal]
) -> dict[str, SignalResult]:
    """Read per-column score, method, threshold and test status back out of the snapshot."""
    data = snapshot.dict()
    failed = {
        t["metric_config"]["metric_id"]: t["status"] == "FAIL"
        for t in data.get("tests", [])
        if t.get("id") == "drift"
    }
    by_column = {s.column: s for s in signals}
    results: dict[str, SignalResult] = {}
    for metric in data["metrics"]:
        config = metric["config"]
        column = config.get("column")
        if not config.get("type", "").endswith("ValueDrift") or column not in by_column:
            continue
        signal = by_column[column]
        test = str(config.get("method"))
        score = float(metric["value"])
        threshold = float(config.get("threshold"))
        kind = _score_kind(test)
        detected = failed.get(metric["id"])
        if detected is None:  # no test result (tests disabled): apply the stattest's own rule
            detected = score < threshold if kind == "p_value" else score >= threshold
        results[column] = SignalResult(
            signal=column,
            kind=signal.kind,
            test=test,
            score=score,
            score_kind=kind,
            threshold=threshold,
            drift_detected=bool(detected),
            reference_mean=float(reference[column].mean()),
            current_mean=float(current[column].mean()),
            n_reference=int(reference[column].notna().sum()),
            n_current=int(current[column].notna().sum()),
        )
    return results


def evaluate(
    reference: pd.DataFrame, current: pd.DataFrame, signals: Sequence[Signal] = DEFAULT_SIGNALS
) -> DriftResult:
    """Compare a current window of descriptors with a reference window, one Evidently report for all signals."""
    active, skipped = _select(reference, current, signals)
    ref_ds, cur_ds = _datasets(reference, current, active)
    metrics = [ValueDrift(column=s.column, method=s.method, threshold=s.threshold) for s in active]
    snapshot = Report(metrics, include_tests=True).run(cur_ds, ref_ds)
    return DriftResult(_results(snapshot, reference, current, active), snapshot, skipped)


def default_evidently(
    reference: pd.DataFrame, current: pd.DataFrame, signals: Sequence[Signal] = DEFAULT_SIGNALS
) -> DriftResult:
    """Run Evidently's DataDriftPreset with its default stattests and thresholds on the same columns."""
    active, skipped = _select(reference, current, signals)
    ref_ds, cur_ds = _datasets(reference, current, active)
    preset = DataDriftPreset(columns=[s.column for s in active])
    snapshot = Report([preset], include_tests=True).run(cur_ds, ref_ds)
    return DriftResult(_results(snapshot, reference, current, active), snapshot, skipped, "evidently_default")
