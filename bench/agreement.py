"""Benchmark: Krippendorff's alpha from badcase.agreement beside the `krippendorff` package it must not be slower than.

100,000 units x 5 raters, ratings 1-5 (a true label plus rater noise), about 30% missing, fixed seed.
Both implementations run alternately on the same matrix in the same process; each figure is the median of
5 timed runs after one untimed warm-up. Prints a table, then one JSON object.

Run: .venv/bin/python bench/agreement.py [--units N] [--raters R] [--runs K]
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import krippendorff
import numpy as np

# Run as a script from a checkout: the project is not necessarily installed into the interpreter.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from badcase import agreement  # noqa: E402

SEED = 20240601


def make_ratings(units: int, raters: int, missing: float, seed: int = SEED) -> np.ndarray:
    """Raters x units ratings 1-5: each rater agrees with a hidden label 70% of the time, NaN where missing."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(1, 6, size=units)
    noise = rng.integers(1, 6, size=(raters, units))
    ratings = np.where(rng.random((raters, units)) < 0.7, truth, noise).astype(float)
    ratings[rng.random((raters, units)) < missing] = np.nan
    return ratings


def timed_pair(ours, theirs, runs: int) -> tuple[float, float, float, float]:
    """Median seconds of each of two callables, timed alternately after one warm-up each, and their values."""
    values = (ours(), theirs())
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(runs):
        for fn, bucket in zip((ours, theirs), times):
            start = time.perf_counter()
            fn()
            bucket.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1]), float(values[0]), float(values[1])


def main() -> None:
    """Time both implementations per level and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=100_000)
    parser.add_argument("--raters", type=int, default=5)
    parser.add_argument("--missing", type=float, default=0.3)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    data = make_ratings(args.units, args.raters, args.missing)
    result = {
        "bench": "agreement.krippendorff_alpha",
        "units": args.units,
        "raters": args.raters,
        "missing_share": round(float(np.isnan(data).mean()), 4),
        "runs": args.runs,
        "seed": SEED,
        "numpy": np.__version__,
        "levels": {},
    }
    print(f"{'level':<9} {'ours (s)':>10} {'krippendorff (s)':>17} {'ratio':>7} {'alpha':>10} {'|diff|':>9}")
    for level in ("nominal", "interval"):
        ours_s, pkg_s, ours, pkg = timed_pair(
            lambda: agreement.krippendorff_alpha(data, level),
            lambda: krippendorff.alpha(data, level_of_measurement=level),
            args.runs,
        )
        ratio = ours_s / pkg_s
        diff = abs(ours - pkg)
        print(f"{level:<9} {ours_s:>10.4f} {pkg_s:>17.4f} {ratio:>7.2f} {ours:>10.6f} {diff:>9.1e}")
        result["levels"][level] = {
            "ours_s": round(ours_s, 5),
            "krippendorff_s": round(pkg_s, 5),
            "ratio": round(ratio, 3),
            "alpha": ours,
            "abs_diff": diff,
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
