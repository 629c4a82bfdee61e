"""DPO with a human anchor, on TRL's DPOTrainer, keeping the best checkpoint by our own held-out measures.

Objective: L = L_DPO(β) + λ·NLL(chosen), in TRL 1.16 `loss_type=["sigmoid", "sft"], loss_weights=[1.0, λ]`
(`rpo_alpha` is gone); `retrain.losses` writes the same loss by hand and a test pins the two together.
Why TRL here (unlike the reward model): DPOTrainer brings the reference-model handling, PEFT adapters as the
reference, accelerate/DeepSpeed launch and logging, which a hand-written loop would have to re-implement.
Quirks handled: TRL silently truncates long pairs (keep the start) and drops pairs whose prompt fills
`max_length`, so we count both; its `eval_accuracy` is a mean of batch means, so the implied-reward accuracy
(share of held-out pairs with β·(log π/π_ref(chosen) − log π/π_ref(rejected)) > 0, ties counted half) is computed
here. Policy and reference are loaded from absolute local paths (TRL reloads the reference from
`config._name_or_path`); nothing is downloaded. torch/transformers/TRL are imported inside the functions.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger(__name__)

Scorer = Callable[[list[str], list[str]], list[float]]
Generate = Callable[[list[str]], list[str]]


def offline_env() -> None:
    """Make the Hugging Face libraries work offline and quietly (never download, never phone home)."""
    for key, value in (("HF_HUB_OFFLINE", "1"), ("HF_HUB_DISABLE_TELEMETRY", "1"), ("TRANSFORMERS_OFFLINE", "1")):
        os.environ.setdefault(key, value)


def length_report(tokenizer: Any, rows: list[dict[str, str]], max_length: int | None) -> dict[str, int]:
    """Count the pairs TRL will drop (prompt alone fills max_length) or truncate (pair longer than max_length)."""
    from retrain.losses import tokenize_pair

    dropped = truncated = 0
    for r in rows:
        ids = tokenize_pair(tokenizer, r["prompt"], r["chosen"], r["rejected"])
        n_prompt = len(ids["prompt_ids"])
        longest = n_prompt + max(len(ids["chosen_ids"]), len(ids["rejected_ids"]))
        if max_length is not None and n_prompt >= max_length:
            dropped += 1
        elif max_length is not None and longest > max_length:
            truncated += 1
    return {"pairs": len(rows), "dropped": dropped, "truncated": truncated, "kept": len(rows) - dropped}


def implied_accuracy(chosen_lr: list[float], rejected_lr: list[float], beta: float) -> float:
    """Share of pairs whose implied reward β·(Δ log-ratio) is positive; exact ties count half."""
    if not chosen_lr:
        return float("nan")
    wins = 0.0
    for c, r in zip(chosen_lr, rejected_lr):
        margin = beta * (c - r)
        wins += 1.0 if margin > 0 else 0.5 if margin == 0 else 0.0
    return wins / len(chosen_lr)


def make_generate(model: Any, tokenizer: Any, max_new_tokens: int = 32, batch_size: int = 8) -> Generate:
    """Greedy batch generation with the given model: prompts in, completions (new text only) out."""
    import torch

    def generate(prompts: list[str]) -> list[str]:
        side, tokenizer.padding_side = tokenizer.padding_side, "left"
        was_training = model.training
        model.eval()
        outs: list[str] = []
        try:
            for i in range(0, len(prompts), batch_size):
                enc = tokenizer(prompts[i : i + batch_size], return_tensors="pt", padding=True).to(model.device)
                with torch.no_grad():
                    gen = model.generate(
                        **enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id
                    )
                outs += tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
        finally:
            tokenizer.padding_side = side
            model.train(was_training)
        return outs

    return generate


def evaluate_policy(
    model: Any,
    tokenizer: Any,
    eval_rows: list[dict[str, str]],
    ref_logps: tuple[list[float], list[float]],
    *,
    beta: float,
    max_length: int | None,
    reward_scorer: Scorer | None = None,
    probe_fn: Callable[[Generate], float] | None = None,
    max_new_tokens: int = 32,
) -> dict[str, float]:
    """Implied-reward accuracy, and when given, reward-model win rate vs rejected and the sycophancy probe rate."""
    from retrain.losses import sequence_logps

    out: dict[str, float] = {}
    if eval_rows:
        pol_c, pol_r = sequence_logps(model, tokenizer, eval_rows, max_length)
        chosen_lr = [p - q for p, q in zip(pol_c, ref_logps[0])]
        rejected_lr = [p - q for p, q in zip(pol_r, ref_logps[1])]
        out["implied_accuracy"] = implied_accuracy(chosen_lr, rejected_lr, beta)
        out["implied_margin"] = beta * sum(c - r for c, r in zip(chosen_lr, rejected_lr)) / len(eval_rows)
    generate = make_generate(model, tokenizer, max_new_tokens)
    if reward_scorer is not None and eval_rows:
        prompts = [r["prompt"] for r in eval_rows]
        ours = reward_scorer(prompts, generate(prompts))
        theirs = reward_scorer(prompts, [r["rejected"] for r in eval_rows])
        out["win_rate"] = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in zip(ours, theirs)) / len(ours)
    if probe_fn is not None:
        out["probe_rate"] = float(probe_fn(generate))
    return out


def _selection_key(metrics: dict[str, float]) -> tuple[float, float]:
    # Win rate under the reward model when we have one (it judges what the policy actually says), else the
    # implied-reward accuracy; a lower sycophancy probe rate breaks ties.
    primary = metrics.get("win_rate", metrics.get("implied_accuracy", 0.0))
    return (primary, -metrics.get("probe_rate", 0.0))


def _save(model: Any, tokenizer: Any, path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)


def _merge_lora(policy_dir: Path, adapter_dir: Path, out: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = AutoModelForCausalLM.from_pretrained(policy_dir)
    merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    _save(merged, AutoTokenizer.from_pretrained(adapter_dir), out)


def _eval_callback(state: dict[str, Any], evaluate: Callable[[Any], dict], every: int, steps: int):
    from transformers import TrainerCallback

    class BestCheckpoint(TrainerCallback):
        """Evaluate every `every` steps and save the model when it beats the best so far."""

        def on_step_end(self, args, trainer_state, control, model=None, **kwargs):
            step = trainer_state.global_step
            if step % every and step != steps:
                return control
            metrics = {"step": step, **evaluate(model)}
            state["history"].append(metrics)
            # Without held-out pairs or probes there is nothing to compare: keep the latest checkpoint.
            if state["best"] is None or state["keep_latest"] or _selection_key(metrics) > _selection_key(state["best"]):
                state["best"] = metrics
                _save(model, state["tokenizer"], state["best_dir"])
            if state["progress"]:
                state["progress"]({"event": "dpo.eval", **metrics})
            return control

        def on_log(self, args, trainer_state, control, logs=None, **kwargs):
            log.info("retrain.dpo.log %s", json.dumps(logs, default=str))
            if state["progress"] and logs:
                state["progress"]({"event": "dpo.log", "step": trainer_state.global_step, **logs})
            return control

    return BestCheckpoint()


def _config(out: Path, *, steps, lr, batch_size, beta, lam, max_length, seed):
    """TRL's DPOConfig for L_DPO(β) + λ·NLL(chosen) on CPU or GPU, quiet, saving nothing itself."""
    import torch
    from trl import DPOConfig

    return DPOConfig(
        output_dir=str(out / "trainer"),
        max_steps=steps,
        learning_rate=lr,
        per_device_train_batch_size=batch_size,
        beta=beta,
        loss_type=["sigmoid", "sft"],
        loss_weights=[1.0, lam],
        max_length=max_length,
        bf16=False,
        activation_checkpointing=False,  # the new name; TRL's default (True) only costs time on small models
        dataloader_pin_memory=torch.cuda.is_available(),
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        logging_steps=max(1, steps // 10),
        disable_tqdm=True,
        seed=seed,
    )


def train_dpo(
    policy_dir: str | os.PathLike,
    train_rows: list[dict[str, str]],
    eval_rows: list[dict[str, str]],
    out_dir: str | os.PathLike,
    *,
    beta: float = 0.1,
    lam: float = 0.1,
    lora: bool = False,
    steps: int = 100,
    lr: float = 5e-5,
    batch_size: int = 4,
    max_length: int | None = 512,
    eval_every: int | None = None,
    seed: int = 0,
    reward_scorer: Scorer | None = None,
    probe_fn: Callable[[Generate], float] | None = None,
    max_new_tokens: int = 32,
    progress: Callable[[dict], None] | None = None,
) -> dict[str, Any]:
    """Train DPO + λ·NLL(chosen) from policy_dir, evaluate every few steps and keep the best checkpoint."""
    offline_env()
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from trl import DPOTrainer

    from retrain.losses import sequence_logps

    started = time.monotonic()
    policy_dir, out = Path(policy_dir).resolve(), Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(policy_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    policy = AutoModelForCausalLM.from_pretrained(policy_dir)
    pairs = [{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in train_rows]
    held = [{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in eval_rows]
    lengths = {"train": length_report(tokenizer, pairs, max_length), "eval": length_report(tokenizer, held, max_length)}
    log.info("retrain.dpo.lengths %s", json.dumps(lengths))
    # The reference is the starting policy, fixed: its held-out log-probs are computed once.
    ref_logps = sequence_logps(policy, tokenizer, held, max_length) if held else ([], [])
    eval_kw = dict(beta=beta, max_length=max_length, reward_scorer=reward_scorer, probe_fn=probe_fn,
                   max_new_tokens=max_new_tokens)  # fmt: skip
    baseline = evaluate_policy(policy, tokenizer, held, ref_logps, **eval_kw)

    peft_config, ref_model = None, None
    if lora:
        from peft import LoraConfig

        peft_config = LoraConfig(
            r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM"
        )
    else:
        ref_model = AutoModelForCausalLM.from_pretrained(policy_dir)
    config = _config(out, steps=steps, lr=lr, batch_size=batch_size, beta=beta, lam=lam, max_length=max_length,
                     seed=seed)  # fmt: skip
    state: dict[str, Any] = {"history": [], "best": None, "best_dir": out / ("best_adapter" if lora else "best"),
                             "tokenizer": tokenizer, "progress": progress,
                             "keep_latest": not held and probe_fn is None}  # fmt: skip
    every = eval_every or max(1, steps // 4)
    callback = _eval_callback(state, lambda m: evaluate_policy(m, tokenizer, held, ref_logps, **eval_kw), every, steps)
    trainer = DPOTrainer(
        model=policy,
        ref_model=ref_model,
        args=config,
        train_dataset=Dataset.from_list(pairs),
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[callback],
    )
    # Trainer prints its logs on stdout (PrinterCallback), which would corrupt the one-JSON-object CLI output;
    # the logs go to `log` and `progress` through our callback instead.
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    result = trainer.train()
    best_dir = out / "best"
    if lora:
        _merge_lora(policy_dir, state["best_dir"], best_dir)
    train_losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    metrics = {
        "best_checkpoint": str(best_dir),
        "best_step": state["best"]["step"],
        "best": state["best"],
        "baseline": baseline,
        "improved": _selection_key(state["best"]) > _selection_key(baseline),
        "history": state["history"],
        "lengths": lengths,
        "train_loss_first": train_losses[0] if train_losses else None,
        "train_loss_last": train_losses[-1] if train_losses else None,
        "train_runtime_s": result.metrics.get("train_runtime"),
        "duration_s": round(time.monotonic() - started, 2),
        "objective": {"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, lam], "beta": beta},
        "settings": {"steps": steps, "lr": lr, "batch_size": batch_size, "max_length": max_length, "lora": lora,
                     "seed": seed, "policy_dir": str(policy_dir)},  # fmt: skip
    }
    (best_dir / "dpo_metrics.json").write_text(json.dumps(metrics, indent=2, default=str), encoding="utf-8")
    return metrics
