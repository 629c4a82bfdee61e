"""Reward model: MiniLM Bradley–Terry learns a clear preference, ensembles disagree, the promotion gate, the figures."""

import json
import math

import pytest

from retrain import metrics as M
from retrain import reward


@pytest.fixture(scope="module")
def trained(polite_pairs, torch_one_thread, tmp_path_factory):
    """One reward model trained on polite-vs-rude pairs, held out on unseen topics."""
    train, held = polite_pairs
    out = tmp_path_factory.mktemp("rm") / "model"
    events = []
    figures = reward.train_reward_model(
        train, held, out, epochs=2, lr=8e-5, batch_size=8, max_length=64, seed=0, time_budget_s=90,
        freeze_layers=3, progress=events.append,
    )  # fmt: skip
    return out, figures, events


def test_learns_a_clear_preference_on_held_out_topics(trained, polite_pairs):
    out, figures, events = trained
    assert figures["accuracy"] > 0.8
    assert figures["length"]["longer_is_chosen_accuracy"] < 0.7  # not learnable from length alone
    assert set(figures["per_bucket"]) == {"polite", "refusal"}
    assert figures["counts"]["trained"] == len(polite_pairs[0]) and figures["counts"]["dropped"] == 0
    assert figures["training"]["steps"] > 0 and events and events[-1]["event"] == "reward.step"
    assert -1.0 <= figures["length"]["score_length_spearman"] <= 1.0
    meta = json.loads((out / reward.META_FILE).read_text())
    assert meta["max_length"] == 64 and meta["metrics"]["accuracy"] == figures["accuracy"]


def test_saved_model_scores_like_the_trained_one(trained, polite_pairs):
    out, figures, _ = trained
    held = polite_pairs[1]
    prompts = [r["prompt"] for r in held]
    chosen = reward.score(out, prompts, [r["chosen"] for r in held])
    rejected = reward.score(out, prompts, [r["rejected"] for r in held])
    assert M.pairwise_accuracy(chosen, rejected) == pytest.approx(figures["accuracy"])


def test_ensemble_disagreement_is_positive(polite_pairs, torch_one_thread, tmp_path):
    train, held = polite_pairs
    result = reward.train_ensemble(
        2, train[:16], held[:6], tmp_path / "ens", epochs=0.5, batch_size=8, max_length=48, freeze_layers=5
    )
    assert result["k"] == 2 and len(result["member_accuracy"]) == 2
    prompts = [r["prompt"] for r in held[:6]]
    responses = [r["chosen"] for r in held[:6]]
    mean, std = reward.ensemble_score(tmp_path / "ens", prompts, responses)
    assert len(mean) == len(std) == 6 and all(s > 0 for s in std)
    one = reward.score(tmp_path / "ens" / "member_0", prompts, responses)
    two = reward.score(tmp_path / "ens" / "member_1", prompts, responses)
    assert mean == pytest.approx([(a + b) / 2 for a, b in zip(one, two)], abs=1e-5)
    assert std == pytest.approx([abs(a - b) / 2 for a, b in zip(one, two)], abs=1e-5)


def test_is_not_worse_gate():
    old = {"accuracy": 0.70, "eval_hash": "h1"}
    assert reward.is_not_worse({"accuracy": 0.70, "eval_hash": "h1"}, old)
    assert not reward.is_not_worse({"accuracy": 0.69, "eval_hash": "h1"}, old)
    assert reward.is_not_worse({"accuracy": 0.69, "eval_hash": "h1"}, old, tolerance=0.02)
    with pytest.raises(reward.GateError):
        reward.is_not_worse({"accuracy": 0.9, "eval_hash": "h2"}, old)


def test_metric_definitions():
    assert M.pairwise_accuracy([1, 2, 3, 0], [0, 2, 4, -1]) == pytest.approx(2.5 / 4)
    assert M.pearson([1, 2, 3], [2, 4, 6.5]) == pytest.approx(0.9979487, abs=1e-6)
    assert M.spearman([1, 2, 3, 4], [10, 20, 20, 100]) == pytest.approx(0.948683, abs=1e-6)
    assert math.isnan(M.pearson([1, 1, 1], [1, 2, 3]))
    buckets = M.bucket_accuracy([1, 0, 1], [0, 1, 0], ["a", "a", None])
    assert buckets == {"a": {"n": 2, "accuracy": 0.5}}
    report = M.length_report([2.0, 1.0], [1.0, 2.0], ["long answer", "x"], ["y", "long answer"])
    assert report["longer_is_chosen_accuracy"] == 0.5 and report["score_length_pearson"] == pytest.approx(1.0)


def test_encode_keeps_prompt_tail_and_response_head():
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(reward.default_backbone())
    prompt = "one two three four five six seven eight nine ten"
    ids, types, cut_resp, cut_prompt = reward.encode(tok, [prompt], ["red green blue pink gray black"], 12, 4)
    assert tok.decode(ids[0]) == "[CLS] seven eight nine ten [SEP] red green blue pink gray [SEP]"
    assert types[0] == [0] * 6 + [1] * 6 and cut_resp == [True] and cut_prompt == [True]


def test_cached_frozen_layers_give_the_full_forward(torch_one_thread):
    from retrain import reward_fit

    torch = torch_one_thread
    _, tok, encoder = reward._load_backbone(None, 3)
    head = torch.nn.Linear(encoder.config.hidden_size, 1)
    prompts = ["Human: hi there\n\nAssistant:", "Human: how do I cook rice?\n\nAssistant:"]
    ids, types, _, _ = reward.encode(tok, prompts, [" hello", " Rinse it, then boil it for twelve minutes."], 64, 16)
    encoder.eval()
    with torch.no_grad():
        full = reward_fit.forward(encoder, head, ids, types)
        top = reward_fit.forward_top(encoder, head, reward_fit.frozen_states(encoder, ids, types, 3), 3)
    assert torch.allclose(full, top, atol=1e-3)  # the cache is kept in fp16
