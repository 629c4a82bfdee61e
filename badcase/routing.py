"""Active-learning routing: risk-weighted priority, near-duplicate clustering, exploration sampling, admission.

Pure functions; the services layer applies them to rows and fills the review queue within reviewer capacity.
"""

import hashlib
import math
import re

from badcase.rules import SEVERITY_RANK

SEVERITY_WEIGHT = {"low": 1.0, "medium": 2.0, "high": 4.0, "critical": 8.0}
_NUM = re.compile(r"\d+")
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def cluster_key(reasons: list[str], model_version: str | None, response: str) -> str:
    """Signature under which near-duplicate failures collapse: the rules that fired plus the response's gist.

    The gist ignores case, numbers, punctuation and everything past the first 40 words, so the same bug hit with
    different ids or figures lands in one cluster.
    """
    words = _WORD.findall(_NUM.sub(" ", (response or "").lower()))[:40]
    basis = "|".join(sorted(reasons)) + "#" + (model_version or "") + "#" + " ".join(words)
    return hashlib.blake2b(basis.encode(), digest_size=12).hexdigest()


def priority(severity: str, *, cluster_size: int = 1, uncertainty: float | None = None, traffic: float = 1.0) -> float:
    """Risk-weighted priority: severity × how often it happens (cluster, traffic) × how unsure the models are."""
    u = 0.5 if uncertainty is None else min(max(uncertainty, 0.0), 1.0)
    return round(SEVERITY_WEIGHT.get(severity, 1.0) * (1.0 + math.log1p(max(cluster_size - 1, 0)))
                 * (0.5 + u) * (1.0 + math.log1p(max(traffic, 0.0))), 6)


def explore(event_id: str, share: float) -> bool:
    """Deterministic exploration sample: an unflagged interaction goes to review with probability `share`."""
    h = int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=8).digest(), "big")
    return (h % 1_000_000) < share * 1_000_000


def reviewers_for(severity: str, default_k: int = 3) -> int:
    """How many reviewers an item gets: more for critical ones."""
    return default_k + 2 if SEVERITY_RANK.get(severity, 0) >= SEVERITY_RANK["critical"] else default_k


def order_for_queue(candidates: list[dict]) -> list[dict]:
    """Queue order: one representative per cluster first (highest priority first), the rest after.

    Each candidate has `cluster_key` and `priority`; one bug hit 500 times cannot flood the queue ahead of 50
    distinct failures.
    """
    seen: set[str] = set()
    heads, rest = [], []
    for c in sorted(candidates, key=lambda c: -c["priority"]):
        (rest if c["cluster_key"] in seen else heads).append(c)
        seen.add(c["cluster_key"])
    return heads + rest


def admission(*, status: str, consent_training: bool, is_gold: bool, has_chosen: bool,
              rubric_status: str = "active") -> tuple[bool, list[str]]:
    """Admission control into the training buffer: only resolved, consented, non-gold items with a chosen response
    from a rubric version in good standing pass; returns (admitted, reasons it did not)."""
    why = []
    if status != "resolved":
        why.append(f"status is {status}")
    if not consent_training:
        why.append("no training consent")
    if is_gold:
        why.append("gold item")
    if not has_chosen:
        why.append("no accepted rewrite")
    if rubric_status == "needs_revision":
        why.append("rubric version needs revision")
    return not why, why
