"""The hand-off report of a registered model, as markdown: criteria, data, evaluation by bucket and category,
settings (β, λ, K) and evidence (files, hashes, job, lineage counts). Pure: takes plain dicts, returns text.
"""

from __future__ import annotations

import math
from typing import Any


def _num(value: Any, digits: int = 4) -> str:
    if isinstance(value, bool) or value is None:
        return "—" if value is None else str(value)
    if isinstance(value, float):
        return "—" if not math.isfinite(value) else f"{value:.{digits}f}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    if not rows:
        return ["(none)", ""]
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_num(c) for c in row) + " |" for row in rows]
    return out + [""]


def _groups(title: str, groups: dict[str, dict[str, Any]], measure: str) -> list[str]:
    rows = [[name or "(none)", g.get("n"), g.get(measure)] for name, g in sorted(groups.items())]
    return [f"**{title}**", ""] + _table([title.split()[-1], "pairs", measure], rows)


def _data(dataset: dict[str, Any]) -> list[str]:
    m = dataset.get("manifest") or {}
    counts, agreement = m.get("counts") or {}, m.get("agreement") or {}
    consent = m.get("consent_filter") or {}
    meta = m.get("meta") or {}
    lines = ["## Data", "",
             f"- Dataset version `{dataset.get('version')}` (content hash `{m.get('content_hash')}`, parent "
             f"`{m.get('parent')}`): {counts.get('train')} train / {counts.get('holdout')} holdout pairs, "
             f"{m.get('human_anchor_rows')} human-anchor rows (expert rewrites).",
             f"- Split: {((m.get('split') or {}).get('method'))}, holdout share "
             f"{(m.get('split') or {}).get('holdout_share')}; a prompt never crosses splits.",
             f"- Sources: {m.get('sources')}; buckets: {m.get('buckets')}; "
             f"failure categories: {meta.get('categories')}.",
             f"- Rubric versions: {', '.join(m.get('rubric_versions') or []) or '—'}; review batches: "
             f"{', '.join(m.get('review_batches') or []) or '—'}; {len(m.get('reviewers') or [])} reviewers.",
             "- Consent filter: only interactions with `consent_training = true`; "
             f"kept out: {consent.get('excluded')}.",
             f"- Item agreement (share of reviewers on the winning label): mean "
             f"{_num(agreement.get('mean_item_agreement'))} over {agreement.get('items_with_share')} items."]
    if meta.get("external"):
        ext = meta["external"]
        lines.append(f"- External pairs: {ext.get('added')} from `{ext.get('path')}` (weight {ext.get('weight')}, "
                     f"sha256 `{ext.get('sha256')}`).")
    reports = agreement.get("reports") or []
    lines += ["", "**Agreement reports of the batches used**", ""]
    lines += _table(["rubric", "batch", "items", "Krippendorff α", "Fleiss κ", "status"],
                    [[r.get("rubric_version"), r.get("batch"), r.get("n_items"), r.get("krippendorff_alpha"),
                      r.get("fleiss_kappa"), r.get("status")] for r in reports])
    return lines


def _reward_eval(result: dict[str, Any]) -> list[str]:
    ev, inc = result.get("evaluation") or {}, result.get("incumbent")
    length = ev.get("length") or {}
    lines = ["## Evaluation (holdout)", "",
             f"- Pairwise accuracy (mean of {ev.get('members')} members): **{_num(ev.get('accuracy'))}** on "
             f"{ev.get('holdout_pairs')} pairs; incumbent on the same pairs: "
             f"{_num(inc.get('accuracy')) if inc else '— (none)'}.",
             f"- Reward hacking check: score–length Spearman {_num(length.get('score_length_spearman'))}, "
             f"Pearson {_num(length.get('score_length_pearson'))}; margin–length Pearson "
             f"{_num(length.get('margin_length_pearson'))}; length alone would score "
             f"{_num(length.get('longer_is_chosen_accuracy'))}.",
             f"- Ensemble disagreement (mean std of member scores): {_num(ev.get('disagreement_mean_std'))}; "
             "it is written back to scored interactions as `rm_disagreement` (the uncertainty signal of routing).", ""]
    lines += _groups("By bucket", ev.get("per_bucket") or {}, "accuracy")
    lines += _groups("By failure category", ev.get("per_category") or {}, "accuracy")
    members = (result.get("training") or {}).get("members") or []
    lines += ["**Members**", ""] + _table(["member", "accuracy", "steps", "stopped"], [
        [i, m.get("accuracy"), (m.get("training") or {}).get("steps"), (m.get("training") or {}).get("stopped")]
        for i, m in enumerate(members)])
    return lines


def _policy_eval(result: dict[str, Any]) -> list[str]:
    best, base = result.get("best") or {}, result.get("baseline") or {}
    rows = [[k, base.get(k), best.get(k)] for k in ("implied_accuracy", "implied_margin", "win_rate", "probe_rate")
            if k in best or k in base]
    lines = ["## Evaluation (holdout)", "",
             f"Best checkpoint: step {result.get('best_step')} (kept by our own held-out measures, not the last step).",
             ""]
    lines += _table(["measure", "starting policy", "best checkpoint"], rows)
    lines += _groups("By bucket", result.get("per_bucket") or {}, "implied_accuracy")
    history = result.get("history") or []
    lines += ["**Checkpoints**", ""] + _table(["step", "implied_accuracy", "win_rate", "probe_rate"], [
        [h.get("step"), h.get("implied_accuracy"), h.get("win_rate"), h.get("probe_rate")] for h in history])
    lengths = result.get("lengths") or {}
    lines.append(f"TRL length handling: train {lengths.get('train')}, holdout {lengths.get('eval')}.")
    return lines + [""]


def render(*, model: dict[str, Any], job: dict[str, Any], dataset: dict[str, Any], result: dict[str, Any],
           settings: dict[str, Any], evidence: dict[str, Any]) -> str:
    """The markdown hand-off report of one model version."""
    gate = result.get("gate") or {}
    title = f"# {model['name']} v{model['version']} ({model['kind']})"
    lines = [title, "", f"Status: **{'promoted' if model.get('promoted') else 'not promoted'}**. "
             f"Trained by job {job.get('id')} (trigger: {job.get('trigger')}).", "",
             "## Criteria", ""]
    if model["kind"] == "reward_model":
        lines += ["- Bradley–Terry pairwise loss −log σ(r(chosen) − r(rejected)) on a MiniLM encoder; an ensemble of K "
                  "members (own seed, own bootstrap sample) scored by their mean.",
                  "- Promotion gate: held-out pairwise accuracy not worse than the current promoted reward model on "
                  "the same holdout (same pairs hash), minus the tolerance."]
    else:
        lines += ["- Objective: L = L_DPO(β) + λ·NLL(chosen) (TRL `loss_type=[\"sigmoid\",\"sft\"]`, "
                  "`loss_weights=[1, λ]`); the NLL term anchors the policy on the expert rewrites.",
                  "- Checkpoint selection: win rate of the policy's own answers against the rejected responses under "
                  "the refreshed reward model (implied-reward accuracy without one); lower sycophancy probe rate "
                  "breaks ties.",
                  "- Promotion gate: the best checkpoint beats the starting policy and does not raise the probe rate."]
    lines += [f"- Outcome: {gate.get('reason')}.", ""]
    lines += _data(dataset)
    lines += [""] + (_reward_eval(result) if model["kind"] == "reward_model" else _policy_eval(result))
    lines += ["## Settings", ""] + [f"- `{k}`: {_num(v)}" for k, v in sorted(settings.items())] + [""]
    lines += ["## Evidence", ""] + [f"- {k}: `{v}`" for k, v in sorted(evidence.items())] + [""]
    return "\n".join(lines)
