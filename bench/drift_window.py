"""Bench: one drift evaluation of 100k vs 100k rows, beside a bare Evidently DataDriftPreset on the same frames.

Both sides are timed from pandas frames to a finished snapshot (Dataset.from_pandas included); ours also
includes reading the per-signal verdicts back out. Median of `--repeats` interleaved runs after one warm-up each.
Prints a table, then one JSON object on the last line.

    .venv/bin/python bench/drift_window.py [--rows 100000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from drift.evaluate import evaluate  # noqa: E402
from drift.simulate import SHIFTS, make_window  # noqa: E402


def bare_preset(reference, current):
    """Evidently's DataDriftPreset with defaults on the frames as they are (types inferred)."""
    from evidently import Dataset, Report
    from evidently.presets import DataDriftPreset

    return Report([DataDriftPreset()]).run(Dataset.from_pandas(current), Dataset.from_pandas(reference))


def once(fn, reference, current) -> float:
    """Run `fn` once; return the wall time in seconds."""
    started = time.perf_counter()
    fn(reference, current)
    return time.perf_counter() - started


def main() -> None:
    """Time both sides and print the table and the JSON summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    rng = np.random.default_rng(args.seed)
    reference = make_window(args.rows, rng)
    current = make_window(args.rows, rng, SHIFTS["refusal_2_to_6%"])

    # One warm-up each, then interleave the two sides so background load on shared cores hits both alike.
    evaluate(reference, current)
    bare_preset(reference, current)
    ours, bare = [], []
    for _ in range(args.repeats):
        ours.append(once(evaluate, reference, current))
        bare.append(once(bare_preset, reference, current))
    verdict = evaluate(reference, current)
    ours_median, bare_median = statistics.median(ours), statistics.median(bare)
    ratio = ours_median / bare_median
    print(f"{args.rows} vs {args.rows} rows, {reference.shape[1]} columns, median of {args.repeats}")
    print(f"{'ours (evaluate)':<32}{ours_median:>8.3f} s   runs {[round(t, 3) for t in ours]}")
    print(f"{'bare DataDriftPreset':<32}{bare_median:>8.3f} s   runs {[round(t, 3) for t in bare]}")
    print(f"{'ratio ours / bare':<32}{ratio:>8.2f}   (budget 1.20)   drifted: {verdict.drifted}")
    print(
        json.dumps(
            {
                "bench": "drift_window",
                "rows": args.rows,
                "columns": int(reference.shape[1]),
                "repeats": args.repeats,
                "ours_seconds_median": round(ours_median, 4),
                "evidently_preset_seconds_median": round(bare_median, 4),
                "ratio": round(ratio, 3),
                "within_budget": ratio <= 1.2,
                "ours_runs": [round(t, 4) for t in ours],
                "evidently_runs": [round(t, 4) for t in bare],
                "drifted": verdict.drifted,
            }
        )
    )


if __name__ == "__main__":
    main()
