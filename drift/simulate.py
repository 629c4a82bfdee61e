"""Synthetic descriptor windows with controlled shifts, for drift benchmarks, tests and demos."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class WindowSpec:
    """Rates and scales of one synthetic window; the defaults are the baseline (null) window."""

    length_scale: float = 1.0
    refusal_rate: float = 0.02
    sycophancy_marker_rate: float = 0.03
    sycophancy_flip_rate: float = 0.02
    negative_feedback_rate: float = 0.08
    rm_score_shift: float = 0.0
    with_rm_score: bool = True


BASELINE = WindowSpec()
SHIFTS: dict[str, WindowSpec] = {
    "length_+25%": WindowSpec(length_scale=1.25),
    "refusal_2_to_6%": WindowSpec(refusal_rate=0.06),
    "sycophancy_marker_3_to_9%": WindowSpec(sycophancy_marker_rate=0.09),
}


def make_window(
    n: int,
    rng: np.random.Generator,
    spec: WindowSpec = BASELINE,
    length_pool: np.ndarray | None = None,
) -> pd.DataFrame:
    """Draw `n` rows of stored descriptors; lengths are resampled from `length_pool` when given, else log-normal."""
    if length_pool is not None and len(length_pool) > 0:
        lengths = rng.choice(np.asarray(length_pool, dtype=float), size=n, replace=True)
    else:
        lengths = rng.lognormal(mean=5.5, sigma=0.8, size=n)
    frame = pd.DataFrame(
        {
            "length_chars": np.round(lengths * spec.length_scale),
            "is_refusal": (rng.random(n) < spec.refusal_rate).astype("int64"),
            "sycophancy_marker": (rng.random(n) < spec.sycophancy_marker_rate).astype("int64"),
            "sycophancy_flip": (rng.random(n) < spec.sycophancy_flip_rate).astype("int64"),
            "negative_feedback": (rng.random(n) < spec.negative_feedback_rate).astype("int64"),
        }
    )
    if spec.with_rm_score:
        frame["rm_score"] = rng.normal(loc=spec.rm_score_shift, scale=1.0, size=n)
    return frame
