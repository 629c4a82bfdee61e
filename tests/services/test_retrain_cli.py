"""`feedback-factory retrain reward-model`: trains on a preference file and prints exactly one JSON object."""

import gzip
import json
import math
import os
import subprocess
import sys
from pathlib import Path

TOPICS = [
    "reset my password", "track my order", "change my delivery address", "cancel my subscription",
    "update my billing card", "find the user manual", "book a table for two", "return a broken kettle",
    "renew my library loan", "set up two-factor login", "export my photos", "get a copy of my invoice",
    "contact a human agent", "change the app language", "recover a deleted file", "pair my headphones",
    "upgrade my plan", "report a wrong charge", "find opening hours", "delete my account",
]
POLITE = ["Of course, I would be glad to help you {t}. Open settings, then follow the steps shown. Thank you!",
          "Happy to help! Open your account page to {t}.", "Sure. To {t}: open the menu, pick the section, confirm."]
RUDE = ["Honestly, I will not help you {t}, and I do not see why anyone would ask me something this pointless. "
        "Figure it out yourself and stop wasting my time.", "That is a stupid question. Why would I care? Go away.",
        "Sorry, I cannot help with that. Ask someone else, I am not doing it."]


def _pairs(topics):
    return [{"prompt": f"\n\nHuman: Can you tell me how to {t}?\n\nAssistant:",
             "chosen": " " + POLITE[(i + j) % 3].format(t=t), "rejected": " " + RUDE[(i + 2 * j) % 3].format(t=t)}
            for i, t in enumerate(topics) for j in range(3)]


def test_reward_model_cli_prints_one_json_object(tmp_path):
    train = tmp_path / "train.jsonl.gz"
    with gzip.open(train, "wt") as fh:
        fh.writelines(json.dumps(p) + "\n" for p in _pairs(TOPICS[:15]))
    # the eval file in hh-rlhf's layout: whole dialogues, no prompt field (the shared prefix is the prompt)
    held = [{"chosen": p["prompt"] + p["chosen"], "rejected": p["prompt"] + p["rejected"]} for p in _pairs(TOPICS[15:])]
    evalf = tmp_path / "eval.jsonl"
    evalf.write_text("".join(json.dumps(p) + "\n" for p in held))
    exe = Path(sys.executable).with_name("feedback-factory")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    r = subprocess.run([str(exe), "retrain", "reward-model", "--train", str(train), "--eval", str(evalf),
                        "--out", str(tmp_path / "rm"), "--epochs", "2", "--lr", "8e-5", "--batch-size", "8",
                        "--max-length", "64", "--freeze-layers", "3", "--budget-s", "90"],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1, r.stdout  # nothing but the one object on stdout; progress went to stderr
    out = json.loads(lines[0])
    assert out["eval_pairs"] == len(held) and out["train_pairs"] == 45 and out["counts"]["dropped"] == 0
    assert out["heldout_accuracy"] > 0.7  # polite beats rude on unseen topics
    assert -1.0 <= out["length_score_correlation"] <= 1.0 and not math.isnan(out["length_score_correlation"])
    assert out["length_only_accuracy"] < 0.7  # length alone cannot separate these pairs
    assert (tmp_path / "rm" / "reward_model.json").is_file() and "reward model" in r.stderr
