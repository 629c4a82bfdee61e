"""Bench: detection and false-alarm rates of our drift configuration beside Evidently's defaults.

Each trial draws a fresh 2,000-row reference and a 2,000-row current window (lengths resampled from the real
HH-RLHF assistant replies in shared/data when present) and runs both configurations on the same pair.
Cells: length +25 %, refusal 2 -> 6 %, sycophancy markers 3 -> 9 %, and null windows (no shift).
A shifted cell counts a detection when its target signal drifts; a null window counts a false alarm when any
signal drifts (the per-signal rate is printed too). Prints a table, then one JSON object on the last line.

    .venv/bin/python bench/drift_sensitivity.py [--trials 20] [--rows 2000] [--seed 7]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from drift.evaluate import DEFAULT_SIGNALS, default_evidently, evaluate  # noqa: E402
from drift.simulate import BASELINE, SHIFTS, make_window  # noqa: E402

TARGETS = {
    "length_+25%": "length_chars",
    "refusal_2_to_6%": "is_refusal",
    "sycophancy_marker_3_to_9%": "sycophancy_marker",
}
CONFIGS = {"ours": evaluate, "evidently_default": default_evidently}


def shared_data() -> Path:
    """Locate shared/data beside the repository (FF_SHARED_DATA overrides)."""
    env = os.environ.get("FF_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


def length_pool() -> tuple[np.ndarray | None, str]:
    """Character lengths of the final assistant turns of the HH-RLHF pairs, or None when absent."""
    path = shared_data() / "hh_rlhf_pairs" / "pairs_dev.jsonl.gz"
    if not path.exists():
        return None, "lognormal(5.5, 0.8)"
    lengths = []
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            for key in ("chosen", "rejected"):
                text = row[key]
                lengths.append(len(text[text.rfind("\n\nAssistant:") + len("\n\nAssistant:"):].strip()))
    return np.asarray(lengths, dtype=float), f"hh_rlhf_pairs final assistant turns (n={len(lengths)})"


def run_cell(name, spec, trials, rows, rng, pool) -> dict:
    """Run `trials` window pairs through both configurations and count verdicts."""
    signals = [s.column for s in DEFAULT_SIGNALS]
    counts = {c: {"any": 0, "target": 0, **{s: 0 for s in signals}} for c in CONFIGS}
    seconds = {c: 0.0 for c in CONFIGS}
    tests = {}
    for _ in range(trials):
        reference = make_window(rows, rng, BASELINE, pool)
        current = make_window(rows, rng, spec, pool)
        for config, fn in CONFIGS.items():
            started = time.perf_counter()
            result = fn(reference, current)
            seconds[config] += time.perf_counter() - started
            tests[config] = {n: r.test for n, r in result.signals.items()}
            drifted = set(result.drifted)
            counts[config]["any"] += bool(drifted)
            counts[config]["target"] += TARGETS.get(name) in drifted
            for signal in drifted:
                counts[config][signal] += 1
    cell = {"trials": trials, "target": TARGETS.get(name)}
    for config in CONFIGS:
        per_signal = {s: counts[config][s] / trials for s in signals}
        cell[config] = {
            "rate": (counts[config]["target"] if name in TARGETS else counts[config]["any"]) / trials,
            "any_signal_rate": counts[config]["any"] / trials,
            "per_signal_rate": per_signal,
            "tests": tests[config],
            "mean_seconds": round(seconds[config] / trials, 4),
        }
    return cell


def main() -> None:
    """Run all cells and print the table and the JSON summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    rng = np.random.default_rng(args.seed)
    pool, pool_source = length_pool()
    cells = {name: run_cell(name, spec, args.trials, args.rows, rng, pool) for name, spec in SHIFTS.items()}
    cells["null"] = run_cell("null", BASELINE, args.trials, args.rows, rng, pool)

    print(f"{args.rows}-row windows, {args.trials} trials per cell, lengths from {pool_source}")
    print(f"{'cell':<28}{'measure':<22}{'ours':>8}{'evidently default':>20}")
    for name, cell in cells.items():
        measure = "false-alarm (any)" if name == "null" else "detection"
        print(f"{name:<28}{measure:<22}{cell['ours']['rate']:>8.3f}{cell['evidently_default']['rate']:>20.3f}")
    for signal in cells["null"]["ours"]["per_signal_rate"]:
        ours = cells["null"]["ours"]["per_signal_rate"][signal]
        default = cells["null"]["evidently_default"]["per_signal_rate"][signal]
        print(f"{'null':<28}{'fa ' + signal:<22}{ours:>8.3f}{default:>20.3f}")
    for config in CONFIGS:
        print(f"tests {config}: {json.dumps(cells['null'][config]['tests'])}")
    summary = {
        "bench": "drift_sensitivity",
        "rows": args.rows,
        "trials": args.trials,
        "seed": args.seed,
        "length_source": pool_source,
        "cells": cells,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
