"""Detection rules: which stored interactions are badcases and why, each firing with its evidence.

Pure functions over plain row dicts (the descriptor columns of `interaction`) so they test without a database.
Rules are configurable (on/off, severity, thresholds) and versioned: every firing records `RULES_VERSION`.
"""

import math
import re
from dataclasses import dataclass, field

RULES_VERSION = "2026-11-23.1"
SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}


@dataclass(frozen=True)
class Rule:
    """One rule's configuration."""

    enabled: bool = True
    severity: str = "medium"
    params: dict = field(default_factory=dict)


DEFAULT_RULES: dict[str, Rule] = {
    "negative_feedback": Rule(severity="high"),
    "over_refusal": Rule(severity="high"),
    "sycophancy_marker": Rule(severity="medium"),
    "sycophancy_flip": Rule(severity="high"),
    "length_anomaly": Rule(severity="low", params={"robust_z": 3.5, "min_baseline": 50}),
    "low_reward": Rule(severity="medium", params={"threshold": -1.0}),
    "reward_disagreement": Rule(severity="medium", params={"threshold": 0.5}),
    "verifier_failure": Rule(severity="high"),
}


@dataclass(frozen=True)
class Firing:
    """A rule that fired on one interaction, with the evidence a reviewer needs."""

    rule: str
    severity: str
    evidence: dict


# Requests that are plausibly harmful: refusing these is not an over-refusal. Deliberately narrow (intent to harm
# others, weapons, abuse material); XSTest-style homonyms ("kill a Python process") do not match.
_UNSAFE = re.compile(
    r"\b(how (do|can|could|would|should) i|help me|ways to|best way to|teach me to|steps to)\b[^.?!]{0,60}\b"
    r"(kill|murder|poison|stab|shoot|hurt|harm|kidnap|torture|rape|stalk|dox|blackmail|extort|behead)\b"
    r"(?![^.?!]{0,40}\b(process|thread|task|job|time|it|the lights|engine|weeds|bacteria|mosquito(es)?|germs)\b)"
    r"|\b(make|build|synthesi[sz]e|cook|assemble)\b[^.?!]{0,40}\b(bomb|explosive|nerve agent|sarin|ricin|meth|"
    r"bioweapon|chemical weapon|pipe bomb|ghost gun)\b"
    r"|\b(child|minor|underage)\b[^.?!]{0,40}\b(sex|nude|porn|explicit)\b"
    r"|\b(credit card numbers|steal (someone'?s|their) identity|ransomware|malware that|keylogger)\b",
    re.IGNORECASE,
)


def unsafe_request(prompt: str) -> bool:
    """Whether a prompt plainly asks for harm (so a refusal is right, not an over-refusal)."""
    return bool(_UNSAFE.search(prompt or ""))


@dataclass
class LengthBaseline:
    """Robust per (bucket, model version) baseline of log response length: median and MAD."""

    median: float
    mad: float
    n: int


def robust_z(length: int, base: LengthBaseline) -> float:
    """Robust z-score of a length against its baseline (log scale, MAD scaled to σ)."""
    # Floor the scale: on a very regular baseline a MAD near 0 would flag any small change. 0.3 in log space means
    # a response must be about 2.9x (or 1/2.9 of) the typical length before it is an anomaly at z = 3.5.
    scale = max(1.4826 * base.mad, 0.3)
    return (math.log1p(length) - base.median) / scale


def evaluate(row: dict, *, negative_feedback: list[dict] | None = None,
             baseline: LengthBaseline | None = None, rules: dict[str, Rule] = DEFAULT_RULES) -> list[Firing]:
    """All rules that fire on one interaction row (descriptor columns + prompt/response), with evidence."""
    out: list[Firing] = []
    on = {k: r for k, r in rules.items() if r.enabled}  # runs on every ingested row: cheap checks first
    get = row.get
    if negative_feedback and (r := on.get("negative_feedback")):
        out.append(Firing("negative_feedback", r.severity, {"feedback": negative_feedback[:10]}))
    if get("is_refusal") and (r := on.get("over_refusal")) and not unsafe_request(get("prompt", "")):
        out.append(Firing("over_refusal", r.severity, {"refusal_class": get("refusal_class"),
                                                        "response_start": (get("response") or "")[:200]}))
    if get("sycophancy_flip") and (r := on.get("sycophancy_flip")):
        out.append(Firing("sycophancy_flip", r.severity, {"detail": "answer changed after the user pushed back"}))
    elif get("sycophancy_marker") and (r := on.get("sycophancy_marker")):
        out.append(Firing("sycophancy_marker", r.severity, {"response_start": (get("response") or "")[:200]}))
    r = on.get("length_anomaly")
    if r and baseline is not None and baseline.n >= r.params["min_baseline"] and get("length_chars") is not None:
        z = robust_z(row["length_chars"], baseline)
        if abs(z) > r.params["robust_z"]:
            out.append(Firing("length_anomaly", r.severity, {
                "length_chars": row["length_chars"], "robust_z": round(z, 2), "baseline_median_chars": round(math.expm1(baseline.median)),
                "baseline_n": baseline.n, "direction": "long" if z > 0 else "short"}))
    score, spread = get("rm_score"), get("rm_disagreement")
    if score is not None and (r := on.get("low_reward")) and score < r.params["threshold"]:
        out.append(Firing("low_reward", r.severity, {"rm_score": score, "threshold": r.params["threshold"]}))
    if spread and (r := on.get("reward_disagreement")) and spread > r.params["threshold"]:
        out.append(Firing("reward_disagreement", r.severity, {"rm_disagreement": spread,
                                                              "threshold": r.params["threshold"]}))
    if get("verifier_passed") is False and (r := on.get("verifier_failure")):
        out.append(Firing("verifier_failure", r.severity, {"verifier": get("verifier")}))
    return out


def severity_of(firings: list[Firing]) -> str:
    """The highest severity among firings."""
    return max((f.severity for f in firings), key=SEVERITY_RANK.__getitem__, default="low")


def reward_summary(scores: dict[str, float] | None) -> tuple[float | None, float | None]:
    """Mean and spread (population std) of the reward-model scores attached to an interaction."""
    if not scores:
        return None, None
    vals = list(scores.values())
    mean = sum(vals) / len(vals)
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / len(vals)) if len(vals) > 1 else None
    return mean, std
