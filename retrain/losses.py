"""The DPO + human-anchor objective written out by hand, so a TRL upgrade cannot silently change what we optimise.

L = mean_i −log σ(β·[(log π(y_c|x) − log π_ref(y_c|x)) − (log π(y_r|x) − log π_ref(y_r|x))])
    + λ · mean over chosen completion tokens of −log π(token)

This is what TRL 1.16 computes for `loss_type=["sigmoid", "sft"], loss_weights=[1.0, λ]` (the SFT term is a
token mean over the whole batch, not a mean of per-sequence means). Tokenisation and batching mirror TRL's
non-conversational path: EOS is appended to each completion, the completion starts where the tokenised prompt and
prompt+completion diverge, sequences are cut to `max_length` keeping the start. The same helpers give the
implied-reward accuracy that `retrain.dpo` reports. torch is imported inside the functions.
"""

from __future__ import annotations

from typing import Any


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def tokenize_pair(tokenizer: Any, prompt: str, chosen: str, rejected: str) -> dict[str, list[int]]:
    """Tokenise one pair as TRL does: prompt ids, then chosen/rejected completion ids (EOS appended)."""
    eos = tokenizer.eos_token or ""
    chosen = chosen if chosen.endswith(eos) else chosen + eos
    rejected = rejected if rejected.endswith(eos) else rejected + eos
    prompt_ids = tokenizer(prompt)["input_ids"]
    pc_ids = tokenizer(prompt + chosen)["input_ids"]
    pr_ids = tokenizer(prompt + rejected)["input_ids"]
    cut = min(_common_prefix(prompt_ids, pc_ids), _common_prefix(prompt_ids, pr_ids))
    return {"prompt_ids": prompt_ids[:cut], "chosen_ids": pc_ids[cut:], "rejected_ids": pr_ids[cut:]}


def collate_pairs(examples: list[dict[str, list[int]]], pad_token_id: int, max_length: int | None = None) -> dict:
    """Pad a batch as [all chosen; all rejected] with a completion mask, keeping the first max_length tokens."""
    import torch

    seqs, masks = [], []
    for side in ("chosen_ids", "rejected_ids"):
        for ex in examples:
            ids = ex["prompt_ids"] + ex[side]
            mask = [0] * len(ex["prompt_ids"]) + [1] * len(ex[side])
            if max_length is not None:
                ids, mask = ids[:max_length], mask[:max_length]
            seqs.append(ids)
            masks.append(mask)
    width = max(len(s) for s in seqs)
    input_ids = torch.full((len(seqs), width), pad_token_id, dtype=torch.long)
    attention = torch.zeros((len(seqs), width), dtype=torch.long)
    completion = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, (ids, mask) in enumerate(zip(seqs, masks)):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        attention[i, : len(ids)] = 1
        completion[i, : len(ids)] = torch.tensor(mask)
    return {"input_ids": input_ids, "attention_mask": attention, "completion_mask": completion}


def token_logps(model: Any, batch: dict) -> tuple[Any, Any]:
    """Per-token log-probabilities of the completion tokens (0 elsewhere) and the shifted completion mask."""
    import torch

    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False).logits
    logps = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    targets = batch["input_ids"][:, 1:]
    mask = batch["completion_mask"][:, 1:].bool()
    per_token = torch.gather(logps, 2, targets.unsqueeze(-1)).squeeze(-1)
    return per_token * mask, mask


def dpo_nll_loss(
    policy_token_logps: Any, ref_token_logps: Any, mask: Any, beta: float, lam: float
) -> tuple[Any, dict[str, Any]]:
    """−log σ(β·Δ) averaged over pairs plus λ·NLL(chosen) averaged over chosen tokens; returns (loss, parts)."""
    import torch.nn.functional as F

    policy = (policy_token_logps * mask).sum(dim=1)
    ref = (ref_token_logps * mask).sum(dim=1)
    pol_c, pol_r = policy.chunk(2, dim=0)
    ref_c, ref_r = ref.chunk(2, dim=0)
    margin = (pol_c - ref_c) - (pol_r - ref_r)
    dpo = -F.logsigmoid(beta * margin).mean()
    chosen_tok, _ = policy_token_logps.chunk(2, dim=0)
    chosen_mask, _ = mask.chunk(2, dim=0)
    nll = -chosen_tok[chosen_mask].mean()
    return dpo + lam * nll, {"dpo": dpo, "nll": nll, "margin": margin}


def sequence_logps(model: Any, tokenizer: Any, rows: list[dict[str, str]], max_length: int | None, batch_size: int = 8):
    """Summed completion log-probs of (chosen, rejected) for each row, without gradients, as two float lists."""
    import torch

    chosen, rejected = [], []
    was_training = model.training
    model.eval()
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            examples = [tokenize_pair(tokenizer, r["prompt"], r["chosen"], r["rejected"]) for r in chunk]
            batch = collate_pairs(examples, pad, max_length)
            batch = {k: v.to(model.device) for k, v in batch.items()}
            per_token, mask = token_logps(model, batch)
            c, r = (per_token * mask).sum(dim=1).chunk(2, dim=0)
            chosen += c.tolist()
            rejected += r.tolist()
    model.train(was_training)
    return chosen, rejected
