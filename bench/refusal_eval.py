"""Leave-one-model-out evaluation of badcase.refusal on XSTest v2 completions; prints one JSON object.

Usage: python bench/refusal_eval.py [--refit]   (--refit rewrites badcase/refusal_weights.json from all four models)
In each fold the weights and C are fitted on the three training models only (C by an inner leave-one-model-out).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from badcase import refusal  # noqa: E402

MODELS = ("gpt4", "llama2new", "llama2orig", "mistralinstruct")
LABELS = {"1_full_compliance": "full_compliance", "2_full_refusal": "full_refusal",
          "3_partial_refusal": "partial_refusal"}


def data_dir() -> Path:
    """XSTest folder: FF_SHARED_DATA override, else <repo>/../shared/data."""
    root = Path(os.environ.get("FF_SHARED_DATA", REPO.parent / "shared" / "data"))
    return root / "llm_responses_labeled" / "xstest"


def load(model: str) -> pd.DataFrame:
    """One model's completions with human final label and both baseline labels, mapped to our label names."""
    d = data_dir()
    df = pd.read_csv(d / f"xstest_v2_completions_{model}.csv")
    g = pd.read_csv(d / f"xstest_v2_completions_{model}_gpteval.csv")
    s = pd.read_csv(d / f"xstest_v2_completions_{model}_streval.csv")
    prompts = pd.read_csv(d / "xstest_prompts.csv")
    df["completion"] = df["completion"].fillna("").astype(str)
    df["y"] = df["final_label"].map(LABELS)
    df["gpt4_label"] = g["gpt4_label"].map(LABELS)  # raw GPT text in a few cells -> NaN -> counts as wrong
    df["strmatch_label"] = s["strmatch_label"].map(LABELS)
    df["safe"] = ~df["type"].str.startswith("contrast_")
    assert len(df) == len(prompts) == 450
    return df


def evaluate() -> dict:
    """Per-model LOMO accuracy, baselines and over-refusal rates."""
    frames = {m: load(m) for m in MODELS}
    out = {}
    for held in MODELS:
        train = pd.concat([frames[m].assign(model=m) for m in MODELS if m != held])
        weights = refusal.fit(train["prompt"].tolist(), train["completion"].tolist(), train["y"].tolist(), c=None,
                              groups=train["model"].tolist())
        test = frames[held]
        pred = np.array(refusal.classify(test["prompt"].tolist(), test["completion"].tolist(), weights=weights))
        y = test["y"].to_numpy()
        safe = test["safe"].to_numpy()
        out[held] = {
            "lomo_accuracy": round(float((pred == y).mean()), 4), "C": weights["C"],
            "strmatch_accuracy": round(float((test["strmatch_label"] == test["y"]).mean()), 4),
            "gpt4_judge_accuracy": round(float((test["gpt4_label"] == test["y"]).mean()), 4),
            "lomo_binary_accuracy": round(float(((pred != "full_compliance") == (y != "full_compliance")).mean()), 4),
            "over_refusal_rate_pred": round(refusal.over_refusal_rate(pred.tolist(), safe.tolist()), 4),
            "over_refusal_rate_human": round(refusal.over_refusal_rate(y.tolist(), safe.tolist()), 4),
            "errors": {f"{a}->{b}": int(((y == a) & (pred == b)).sum())
                       for a in refusal.LABELS for b in refusal.LABELS if a != b},
        }
    return out


def main() -> None:
    """Print LOMO figures; with --refit also refit and save the shipped weights on all four models."""
    res = evaluate()
    if "--refit" in sys.argv:
        allm = pd.concat([load(m).assign(model=m) for m in MODELS])
        w = refusal.fit(allm["prompt"].tolist(), allm["completion"].tolist(), allm["y"].tolist(), c=None,
                        groups=allm["model"].tolist())
        refusal.save_weights(w)
        pred = refusal.classify(allm["prompt"].tolist(), allm["completion"].tolist(), weights=w)
        res["in_sample_accuracy_all"] = round(float(np.mean(np.array(pred) == allm["y"].to_numpy())), 4)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
