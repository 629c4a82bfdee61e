"""Pure evaluation figures for preference models: pairwise accuracy, per-bucket accuracy, length correlation.

No torch here: the reward trainer, the DPO evaluation and the API all read the same definitions.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from typing import Any, Sequence


def pairwise_accuracy(chosen: Sequence[float], rejected: Sequence[float]) -> float:
    """Share of pairs scored chosen > rejected; exact ties count half (so a constant scorer gets 0.5)."""
    if not chosen:
        return float("nan")
    wins = sum(1.0 if c > r else 0.5 if c == r else 0.0 for c, r in zip(chosen, rejected))
    return wins / len(chosen)


def bucket_accuracy(
    chosen: Sequence[float], rejected: Sequence[float], buckets: Sequence[str | None]
) -> dict[str, dict[str, float]]:
    """Pairwise accuracy and count per bucket (rows without a bucket are left out)."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, b in enumerate(buckets):
        if b is not None:
            groups[str(b)].append(i)
    return {
        b: {"n": len(idx), "accuracy": pairwise_accuracy([chosen[i] for i in idx], [rejected[i] for i in idx])}
        for b, idx in sorted(groups.items())
    }


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson correlation; NaN when either side is constant or there are fewer than two points."""
    n = len(x)
    if n < 2:
        return float("nan")
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else float("nan")


def _ranks(values: Sequence[float]) -> list[float]:
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):  # ties share their average rank
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation (Pearson on average ranks)."""
    return pearson(_ranks(x), _ranks(y))


def length_report(
    chosen_scores: Sequence[float],
    rejected_scores: Sequence[float],
    chosen_texts: Sequence[str],
    rejected_texts: Sequence[str],
) -> dict[str, float]:
    """Reward-hacking check: how much score follows response length, and how well length alone would do."""
    scores = list(chosen_scores) + list(rejected_scores)
    lengths = [float(len(t)) for t in list(chosen_texts) + list(rejected_texts)]
    margins = [c - r for c, r in zip(chosen_scores, rejected_scores)]
    longer = pairwise_accuracy([len(c) for c in chosen_texts], [len(r) for r in rejected_texts])
    len_margins = [float(len(c) - len(r)) for c, r in zip(chosen_texts, rejected_texts)]
    return {
        "score_length_pearson": pearson(scores, lengths),
        "score_length_spearman": spearman(scores, lengths),
        "margin_length_pearson": pearson(margins, len_margins),
        "margin_length_spearman": spearman(margins, len_margins),
        "longer_is_chosen_accuracy": longer,
    }


def pairs_hash(pairs: Sequence[dict[str, Any]]) -> str:
    """sha256 over the (prompt, chosen, rejected) triples in order: identifies a holdout for the promotion gate."""
    digest = hashlib.sha256()
    for p in pairs:
        digest.update(json.dumps([p.get("prompt", ""), p["chosen"], p["rejected"]], ensure_ascii=False).encode())
        digest.update(b"\n")
    return digest.hexdigest()
