"""Fixtures for the retrain tests: offline Hugging Face settings, one torch thread, shared data, a tiny Llama."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

TOPICS = [
    "reset my password", "track my order", "change my delivery address", "cancel my subscription",
    "update my billing card", "find the user manual", "book a table for two", "return a broken kettle",
    "renew my library loan", "set up two-factor login", "export my photos", "get a copy of my invoice",
    "contact a human agent", "change the app language", "recover a deleted file", "pair my headphones",
    "upgrade my plan", "report a wrong charge", "find opening hours", "delete my account",
    "merge two accounts", "apply a discount code", "schedule a repair visit", "download my statement",
]
POLITE = [
    "Of course, I would be glad to help you {t}. First open settings, then follow the steps shown. Thank you!",
    "Happy to help! Open your account page to {t}.",
    "Sure. To {t}: open the menu, pick the right section, confirm. Glad to assist.",
]
# Rude replies as long as polite ones, or longer, so that length alone cannot separate the two sides.
RUDE = [
    "No. I will not help you {t}, and honestly I do not see why anyone would ask me something this pointless. "
    "Figure it out yourself and stop wasting my time.",
    "That is a stupid question. Why would I care whether you can {t}? Go away.",
    "Sorry, I cannot help with that. Ask someone else, I am not doing it.",
]


def preference_pairs(topics):
    """Pairs where the chosen reply is polite and helpful and the rejected one rude or a bare refusal."""
    rows = []
    for i, t in enumerate(topics):
        for j in range(3):
            rows.append({
                "prompt": f"Human: Can you tell me how to {t}?\n\nAssistant:",
                "chosen": " " + POLITE[(i + j) % 3].format(t=t),
                "rejected": " " + RUDE[(i + 2 * j) % 3].format(t=t),
                "bucket": "polite" if j < 2 else "refusal",
            })
    return rows


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared real data folder: FF_SHARED_DATA, or ../shared/data beside the repository."""
    env = os.environ.get("FF_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(scope="session")
def torch_one_thread():
    """Train on one thread: several times faster than the default on busy 2-core machines."""
    import torch

    torch.set_num_threads(1)
    return torch


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory, torch_one_thread) -> Path:
    """A tiny Llama with an in-process BPE tokenizer, saved once per session."""
    from retrain.tiny import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny") / "policy")


@pytest.fixture(scope="session")
def polite_pairs():
    """Train and held-out preference pairs on disjoint topics (chosen clearly better)."""
    return preference_pairs(TOPICS[:18]), preference_pairs(TOPICS[18:])
