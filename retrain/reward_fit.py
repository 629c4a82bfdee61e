"""The Bradley–Terry training loop behind `retrain.reward`: encoding, batching, frozen-layer cache, time budget.

Speed on CPU is the constraint (a 6-layer MiniLM step on 16 pairs of ~100 tokens takes seconds on one thread), so:
batches are built from length-sorted mega-batches (little padding); with `freeze_layers=k` the embeddings and the
first k layers are frozen and their output is computed once per training sequence and kept (fp16), so every epoch
only runs the top layers; and with a time budget the learning-rate schedule follows the clock, so a run on a busy
machine still decays to zero by its deadline, which leaves room for the held-out scoring. torch is imported lazily.
"""

from __future__ import annotations

import math
import random
import time
from typing import Any, Callable, Sequence


def encode(tokenizer: Any, prompts: Sequence[str], responses: Sequence[str], max_length: int, prompt_tokens: int):
    """Token ids, type ids and truncation flags for "[CLS] prompt tail [SEP] response head [SEP]"."""
    room = max_length - 3
    keep_prompt = min(prompt_tokens, room // 2)
    p_ids = tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
    r_ids = tokenizer(list(responses), add_special_tokens=False)["input_ids"]
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    ids, types, cut_resp, cut_prompt = [], [], [], []
    for p, r in zip(p_ids, r_ids):
        p_keep = p[len(p) - min(len(p), keep_prompt) :]
        r_keep = r[: room - len(p_keep)]
        ids.append([cls] + p_keep + [sep] + r_keep + [sep])
        types.append([0] * (len(p_keep) + 2) + [1] * (len(r_keep) + 1))
        cut_resp.append(len(r_keep) < len(r))
        cut_prompt.append(len(p_keep) < len(p))
    return ids, types, cut_resp, cut_prompt


def _padded(rows: Sequence[Sequence[int]], dtype=None):
    import torch

    out = torch.zeros((len(rows), max(len(r) for r in rows)), dtype=dtype or torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.as_tensor(r, dtype=out.dtype)
    return out


def _pool(head: Any, hidden: Any, mask: Any):
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return head((hidden * m).sum(1) / m.sum(1).clamp(min=1.0)).squeeze(-1)


def forward(encoder: Any, head: Any, ids: list[list[int]], types: list[list[int]]):
    """Scores of a batch through the whole encoder, mean-pooled over its tokens, then the linear head."""
    dev = next(head.parameters()).device
    input_ids, type_ids = _padded(ids).to(dev), _padded(types).to(dev)
    mask = _padded([[1] * len(s) for s in ids]).to(dev)
    hidden = encoder(input_ids=input_ids, token_type_ids=type_ids, attention_mask=mask).last_hidden_state
    return _pool(head, hidden, mask)


def _layers(encoder: Any, hidden: Any, mask: Any, layers: Sequence[Any]):
    from transformers.masking_utils import create_bidirectional_mask

    full = create_bidirectional_mask(config=encoder.config, inputs_embeds=hidden, attention_mask=mask)
    for layer in layers:
        hidden = layer(hidden, full)
        hidden = hidden[0] if isinstance(hidden, tuple) else hidden
    return hidden


def frozen_states(encoder: Any, ids: list[list[int]], types: list[list[int]], k: int, batch_size: int = 64):
    """Output of the embeddings and the first k (frozen) layers for each sequence, unpadded, in fp16."""
    import torch

    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out: list[Any] = [None] * len(ids)
    encoder.eval()
    with torch.no_grad():
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            rows = [ids[i] for i in idx]
            mask = _padded([[1] * len(r) for r in rows])
            emb = encoder.embeddings(input_ids=_padded(rows), token_type_ids=_padded([types[i] for i in idx]))
            hidden = _layers(encoder, emb, mask, encoder.encoder.layer[:k])
            for j, i in enumerate(idx):
                out[i] = hidden[j, : len(rows[j])].to(torch.float16)
    return out


def forward_top(encoder: Any, head: Any, states: list[Any], k: int):
    """Scores of a batch from cached frozen states, running only the layers above k."""
    import torch

    width = max(s.shape[0] for s in states)
    hidden = torch.zeros((len(states), width, states[0].shape[1]), dtype=torch.float32)
    mask = torch.zeros((len(states), width), dtype=torch.long)
    for i, s in enumerate(states):
        hidden[i, : s.shape[0]], mask[i, : s.shape[0]] = s.float(), 1
    return _pool(head, _layers(encoder, hidden, mask, encoder.encoder.layer[k:]), mask)


def score_encoded(encoder: Any, head: Any, ids, types, batch_size: int = 64) -> list[float]:
    """Scores of encoded sequences (no gradients, eval mode), batched by length."""
    import torch

    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))  # similar lengths together: less padding
    out = [0.0] * len(ids)
    encoder.eval()
    with torch.no_grad():
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            for i, v in zip(idx, forward(encoder, head, [ids[i] for i in idx], [types[i] for i in idx]).tolist()):
                out[i] = v
    return out


def batches(n: int, lengths: list[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of indices, each drawn from a length-sorted random mega-batch (little padding)."""
    idx = list(range(n))
    rng.shuffle(idx)
    mega = batch_size * 32
    out = []
    for s in range(0, n, mega):
        chunk = sorted(idx[s : s + mega], key=lambda i: lengths[i])
        out += [chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size)]
    rng.shuffle(out)
    return out


class Clock:
    """Where training stands: the larger of steps done / planned and time used / time available.

    The held-out scoring time is re-estimated from the measured training speed (`eval_ratio` = cost of one
    scored token relative to one trained token) and kept out of the training time, plus 15 % for safety.
    """

    def __init__(self, total_steps: int, budget_s: float | None, started: float, eval_tokens: int, eval_ratio: float):
        self.total, self.budget, self.started = total_steps, budget_s, started
        self.eval_tokens, self.eval_ratio = eval_tokens, eval_ratio
        self.t0, self.seen, self.deadline = time.monotonic(), 0, budget_s

    def tick(self, step: int, tokens: int) -> None:
        """Record a finished step and re-estimate the training deadline."""
        self.seen += tokens
        if self.budget is not None and step >= 3:
            per_token = (time.monotonic() - self.t0) / max(1, self.seen)
            self.deadline = self.budget - 1.15 * per_token * self.eval_ratio * self.eval_tokens

    def progress(self, step: int) -> float:
        """Fraction of training done, in [0, 1]."""
        done = step / self.total
        if self.deadline is not None:
            train_time = max(1e-6, self.deadline - (self.t0 - self.started))
            done = max(done, (time.monotonic() - self.t0) / train_time)
        return min(1.0, done)


def fit(
    encoder: Any, head: Any, n: int, lengths: list[int], run: Callable[[list[int]], tuple[Any, Any, int]],
    cfg: Any, clock_args: tuple[float, int, float], progress: Callable[[dict], None] | None,
) -> dict[str, Any]:  # fmt: skip
    """Minimise −log σ(r_c − r_r): linear warm-up then linear decay, until the planned epochs or the budget end."""
    import torch
    import torch.nn.functional as F

    rng = random.Random(cfg.seed)
    total = max(1, math.ceil(cfg.epochs * math.ceil(n / cfg.batch_size)))
    enc_params, head_params = [p for p in encoder.parameters() if p.requires_grad], list(head.parameters())
    opt = torch.optim.AdamW([{"params": enc_params, "lr": cfg.lr}, {"params": head_params, "lr": cfg.head_lr}],
                            weight_decay=0.01)  # fmt: skip
    clock = Clock(total, cfg.time_budget_s, *clock_args)
    step, losses, stopped, warmup = 0, [], "", 0.05
    encoder.train()
    while n and not stopped:
        for batch in batches(n, lengths, cfg.batch_size, rng):
            done = clock.progress(step)
            if step >= total or done >= 1.0:
                stopped = "planned" if step >= total else "time_budget"
                break
            factor = min((step + 1) / max(1.0, warmup * total), 1.0, (1 - done) / (1 - warmup))
            for group, base in zip(opt.param_groups, (cfg.lr, cfg.head_lr)):
                group["lr"] = base * factor
            s_c, s_r, tokens = run(batch)
            loss = -F.logsigmoid(s_c - s_r).mean()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(enc_params + head_params, 1.0)
            opt.step()
            opt.zero_grad()
            step += 1
            clock.tick(step, tokens)
            losses.append(loss.item())
            if progress and step % 10 == 0:
                elapsed = round(time.monotonic() - clock.started, 1)
                progress({"event": "reward.step", "step": step, "progress": round(clock.progress(step), 3),
                          "loss": sum(losses[-10:]) / 10, "elapsed_s": elapsed})  # fmt: skip
    return {"steps": step, "planned_steps": total, "epochs_done": round(step * cfg.batch_size / max(1, n), 3),
            "stopped": stopped or "no_data", "loss_first": losses[0] if losses else None,
            "loss_last10": sum(losses[-10:]) / max(1, len(losses[-10:])),
            "train_s": round(time.monotonic() - clock.t0, 1)}  # fmt: skip
