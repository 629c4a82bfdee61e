"""The two training steps a job runs, on files and plain values (no database): reward-model refresh and DPO.

`reward_step` trains an ensemble of K Bradley–Terry members (`retrain.reward`), scores the holdout with the mean of
the members and reports pairwise accuracy overall, per bucket and per failure category, the length–score
correlation and the members' disagreement; it scores the incumbent reward model on the same holdout and applies the
not-worse gate. `dpo_step` runs `retrain.dpo.train_dpo` judged by that reward model and gates the best checkpoint
against the starting policy. torch is imported lazily by the modules called.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable, Sequence

from retrain import metrics as M
from retrain import reward

Progress = Callable[[float, dict[str, Any]], None]
# Trainer options tuned on hh-rlhf pairs for a CPU budget (bench/reward_model_hh.py); jobs and the CLI start here.
REWARD_DEFAULTS: dict[str, Any] = {"epochs": 3.0, "lr": 1e-4, "batch_size": 16, "max_length": 112, "prompt_tokens": 32,
                                   "freeze_layers": 4}


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a dataset split file (JSONL)."""
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def member_dirs(model_dir: str | Path) -> list[Path]:
    """Member directories of an ensemble (its ensemble.json), or the directory itself for a single model."""
    root = Path(model_dir)
    if (root / "ensemble.json").is_file():
        members = json.loads((root / "ensemble.json").read_text(encoding="utf-8"))["members"]
        return [root / m for m in members]
    return [root]


def ensemble_scorer(model_dir: str | Path) -> Callable[[Sequence[str], Sequence[str]], list[float]]:
    """Load an ensemble once; returns (prompts, responses) -> mean member score."""
    scorers = [reward.load_scorer(d) for d in member_dirs(model_dir)]

    def score(prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
        columns = [s(list(prompts), list(responses)) for s in scorers]
        return [sum(v) / len(v) for v in zip(*columns)]

    return score


def _std(values: Sequence[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def evaluate_ensemble(model_dir: str | Path, holdout: list[dict[str, Any]],
                      categories: Sequence[str | None] | None = None) -> dict[str, Any]:
    """Held-out figures of a saved reward model (ensemble or single): accuracy, per bucket/category, length, spread."""
    prompts = [r.get("prompt") or "" for r in holdout]
    dirs = member_dirs(model_dir)
    c_cols, r_cols = [], []
    for d in dirs if holdout else []:
        scorer = reward.load_scorer(d)  # loaded once per member for both sides
        c_cols.append(scorer(prompts, [r["chosen"] for r in holdout]))
        r_cols.append(scorer(prompts, [r["rejected"] for r in holdout]))
    sc = [sum(v) / len(v) for v in zip(*c_cols)]
    sr = [sum(v) / len(v) for v in zip(*r_cols)]
    spread = [_std(v) for v in zip(*c_cols)] + [_std(v) for v in zip(*r_cols)]
    buckets = [r.get("bucket") for r in holdout]
    return {
        "accuracy": M.pairwise_accuracy(sc, sr),
        "per_bucket": M.bucket_accuracy(sc, sr, buckets),
        "per_category": M.bucket_accuracy(sc, sr, list(categories)) if categories else {},
        "length": M.length_report(sc, sr, [r["chosen"] for r in holdout], [r["rejected"] for r in holdout]) if holdout
        else {},
        "disagreement_mean_std": sum(spread) / len(spread) if spread else None,
        "members": len(dirs),
        "holdout_pairs": len(holdout),
        "eval_hash": M.pairs_hash(holdout),
    }  # fmt: skip


def reward_gate(new: dict[str, Any], incumbent: dict[str, Any] | None, tolerance: float = 0.0) -> dict[str, Any]:
    """Promote a reward model only if it was evaluated and is not worse than the incumbent on the same holdout."""
    acc = new.get("accuracy")
    if acc is None or not math.isfinite(acc):
        return {"promote": False, "reason": "no held-out pairs to evaluate on", "tolerance": tolerance}
    if incumbent is None:
        return {"promote": True, "reason": "no promoted reward model yet", "tolerance": tolerance}
    ok = reward.is_not_worse(new, incumbent, tolerance)
    verb = "is not worse than" if ok else "is worse than"
    return {"promote": ok, "tolerance": tolerance, "incumbent_accuracy": incumbent["accuracy"],
            "reason": f"held-out accuracy {acc:.4f} {verb} the incumbent's {incumbent['accuracy']:.4f} "
                      f"(tolerance {tolerance}) on the same {new['holdout_pairs']} pairs"}  # fmt: skip


def _member_progress(k: int, progress: Progress | None):
    state = {"member": 0, "last": -1}

    def on_event(event: dict[str, Any]) -> None:
        if event.get("step", 0) < state["last"]:  # a new member started from step 0
            state["member"] += 1
        state["last"] = event.get("step", 0)
        if progress:
            done = (min(state["member"], k - 1) + float(event.get("progress", 0.0))) / k
            progress(0.9 * done, {**event, "member": state["member"]})

    return on_event


def reward_step(train: list[dict[str, Any]], holdout: list[dict[str, Any]], out_dir: str | Path, *, k: int,
                options: dict[str, Any], incumbent_dir: str | Path | None = None, tolerance: float = 0.0,
                categories: Sequence[str | None] | None = None, progress: Progress | None = None) -> dict[str, Any]:
    """Train a K-member ensemble, evaluate it and the incumbent on the holdout, and decide promotion."""
    summary = reward.train_ensemble(k, train, holdout, out_dir, progress=_member_progress(k, progress), **options)
    evaluation = evaluate_ensemble(out_dir, holdout, categories)
    incumbent = None
    if incumbent_dir is not None and Path(incumbent_dir).is_dir():
        incumbent = evaluate_ensemble(incumbent_dir, holdout, categories)
    gate = reward_gate(evaluation, incumbent, tolerance)
    members = summary.pop("member_figures")
    training = {**summary, "members": [{"accuracy": m["accuracy"], "counts": m["counts"], "training": m["training"],
                                        "duration_s": m["duration_s"]} for m in members],
                "settings": members[0]["settings"] if members else {}}  # fmt: skip
    return {"evaluation": evaluation, "incumbent": incumbent, "gate": gate, "training": training,
            "train_pairs": len(train), "human_anchor_rows": sum(bool(r.get("is_human_anchor")) for r in train)}


def _per_bucket_implied(policy_dir: Path, best_dir: Path, holdout: list[dict[str, Any]], beta: float,
                        max_length: int | None) -> dict[str, dict[str, float]]:
    """Implied-reward accuracy of the best checkpoint per bucket of the holdout (reference = starting policy)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from retrain.dpo import implied_accuracy
    from retrain.losses import sequence_logps

    if not holdout:
        return {}
    tok = AutoTokenizer.from_pretrained(best_dir)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    pairs = [{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in holdout]
    ref = sequence_logps(AutoModelForCausalLM.from_pretrained(policy_dir), tok, pairs, max_length)
    pol = sequence_logps(AutoModelForCausalLM.from_pretrained(best_dir), tok, pairs, max_length)
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(holdout):
        groups.setdefault(str(r.get("bucket") or ""), []).append(i)
    out = {}
    for bucket, idx in sorted(groups.items()):
        c = [pol[0][i] - ref[0][i] for i in idx]
        rj = [pol[1][i] - ref[1][i] for i in idx]
        out[bucket] = {"n": len(idx), "implied_accuracy": implied_accuracy(c, rj, beta)}
    return out


def policy_gate(metrics: dict[str, Any], probe_tolerance: float = 0.0) -> dict[str, Any]:
    """Promote the best DPO checkpoint if it beats the starting policy and does not raise the sycophancy rate.

    "Beats" is lexicographic on (win rate under the reward model, implied-reward accuracy): never worse under the
    reward model, and better on one of the two (a small holdout often saturates the win rate).
    """
    best, base = metrics.get("best") or {}, metrics.get("baseline") or {}
    measures = [m for m in ("win_rate", "implied_accuracy") if m in best and m in base]
    if not measures:
        return {"promote": False, "reason": "no held-out pairs to evaluate on", "measures": []}
    ours, theirs = tuple(best[m] for m in measures), tuple(base[m] for m in measures)
    shown = ", ".join(f"{m} {best[m]:.4f} vs {base[m]:.4f}" for m in measures)
    if not ours > theirs:
        return {"promote": False, "measures": measures, "reason": f"does not beat the starting policy ({shown})"}
    if "probe_rate" in best and "probe_rate" in base and best["probe_rate"] > base["probe_rate"] + probe_tolerance:
        return {"promote": False, "measures": measures,
                "reason": f"sycophancy probe rate rose from {base['probe_rate']:.3f} to {best['probe_rate']:.3f}"}
    return {"promote": True, "measures": measures, "reason": f"beats the starting policy ({shown})"}


def dpo_step(policy_dir: str | Path, train: list[dict[str, Any]], holdout: list[dict[str, Any]],
             out_dir: str | Path, *, beta: float, lam: float, options: dict[str, Any],
             reward_dir: str | Path | None = None, probe_fn: Callable | None = None, probe_tolerance: float = 0.0,
             progress: Progress | None = None) -> dict[str, Any]:
    """DPO + λ·NLL(chosen) from a policy, judged by the reward model; keeps the best checkpoint and gates it."""
    from retrain import dpo

    steps = int(options.get("steps", 100))
    scorer = ensemble_scorer(reward_dir) if reward_dir is not None and Path(reward_dir).is_dir() else None

    def on_event(event: dict[str, Any]) -> None:
        if progress and event.get("event") == "dpo.eval":
            progress(0.9 * min(1.0, event.get("step", 0) / max(1, steps)), event)

    metrics = dpo.train_dpo(Path(policy_dir), train, holdout, out_dir, beta=beta, lam=lam, reward_scorer=scorer,
                            probe_fn=probe_fn, progress=on_event, **options)
    best_dir = Path(metrics["best_checkpoint"])
    metrics["per_bucket"] = _per_bucket_implied(Path(policy_dir).resolve(), best_dir, holdout, beta,
                                                options.get("max_length", 512))
    metrics["human_anchor_rows"] = sum(bool(r.get("is_human_anchor")) for r in train)
    metrics["train_pairs"], metrics["holdout_pairs"] = len(train), len(holdout)
    metrics["gate"] = policy_gate(metrics, probe_tolerance)
    return metrics
