"""DPO + human anchor: our hand-written loss equals TRL's, training keeps and saves the best checkpoint."""

import json

import pytest

from retrain import dpo, losses

QUESTIONS = [
    "How do I reset my password?", "Can you help me with my order?", "What is the capital of France?",
    "Tell me a joke.", "Explain gravity simply.", "Write a short poem.", "Is the earth flat?",
    "Where is my parcel?", "How do I cancel my plan?", "Can you recommend a book?", "What time do you open?",
    "How do I pair my headphones?", "Can I change my address?", "Why was I charged twice?",
]  # fmt: skip


def _pairs(questions):
    return [{"prompt": f"Human: {q}\nAssistant:", "chosen": " Of course, I am happy to help. Thank you for asking.",
             "rejected": " No. Figure it out yourself."} for q in questions]  # fmt: skip


@pytest.fixture(scope="module")
def pairs():
    rows = _pairs(QUESTIONS)
    return rows + _pairs([q.replace("?", " please?") for q in QUESTIONS[:8]])


def test_hand_written_loss_equals_trl(tiny_llama, pairs, tmp_path):
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    beta, lam = 0.3, 0.7
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    policy = AutoModelForCausalLM.from_pretrained(tiny_llama)
    ref = AutoModelForCausalLM.from_pretrained(tiny_llama)
    torch.manual_seed(1)
    with torch.no_grad():  # move the policy away from the reference so the DPO term is not log 2
        for p in policy.parameters():
            p.add_(0.05 * torch.randn_like(p))
    config = DPOConfig(output_dir=str(tmp_path), beta=beta, loss_type=["sigmoid", "sft"], loss_weights=[1.0, lam],
                       bf16=False, activation_checkpointing=False, report_to="none", max_length=40,
                       per_device_train_batch_size=4)  # fmt: skip
    trainer = DPOTrainer(model=policy, ref_model=ref, args=config, train_dataset=Dataset.from_list(pairs[:4]),
                         processing_class=tokenizer)  # fmt: skip
    examples = [trainer.train_dataset[i] for i in range(4)]
    batch = trainer.data_collator(examples)
    ours = losses.collate_pairs([losses.tokenize_pair(tokenizer, **p) for p in pairs[:4]], tokenizer.pad_token_id, 40)
    for key in ("input_ids", "attention_mask", "completion_mask"):  # same tokens, masks and truncation as TRL
        assert torch.equal(batch[key], ours[key]), key
    with torch.no_grad():
        trl_loss = trainer.compute_loss(trainer.model, batch).item()
        pol, mask = losses.token_logps(policy, ours)
        ref_lp, _ = losses.token_logps(ref, ours)
        hand, parts = losses.dpo_nll_loss(pol, ref_lp, mask, beta, lam)
    assert abs(parts["dpo"].item() - 0.6931) > 1e-3
    assert hand.item() == pytest.approx(trl_loss, abs=1e-5)


def test_length_report_counts_what_trl_drops_and_truncates(tiny_llama):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    rows = [{"prompt": "Human: hi\nAssistant:", "chosen": " hello", "rejected": " go"},
            {"prompt": "Human: " + "tell me more " * 30 + "\nAssistant:", "chosen": " ok", "rejected": " no"},
            {"prompt": "Human: hi\nAssistant:", "chosen": " hello " * 40, "rejected": " no"}]  # fmt: skip
    assert dpo.length_report(tokenizer, rows, 32) == {"pairs": 3, "dropped": 1, "truncated": 1, "kept": 2}
    assert dpo.length_report(tokenizer, rows, None)["truncated"] == 0


def test_implied_accuracy_counts_ties_half():
    assert dpo.implied_accuracy([1.0, 0.0, -1.0], [0.0, 0.0, 0.0], beta=0.1) == pytest.approx(0.5)


def test_train_dpo_keeps_the_best_checkpoint_which_reloads(tiny_llama, pairs, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    train, held = pairs[:18], pairs[18:]
    events = []
    metrics = dpo.train_dpo(
        tiny_llama, train, held, tmp_path / "dpo", beta=0.1, lam=0.2, steps=20, lr=5e-3, batch_size=4,
        eval_every=4, reward_scorer=lambda ps, rs: [float("help" in r) for r in rs], probe_fn=lambda gen: 0.0,
        max_new_tokens=12, progress=events.append,
    )  # fmt: skip
    assert [h["step"] for h in metrics["history"]] == [4, 8, 12, 16, 20]
    best = metrics["best"]
    assert best == max(metrics["history"], key=lambda h: (h["win_rate"], -h["probe_rate"]))
    assert metrics["best_step"] == best["step"] and metrics["baseline"]["implied_accuracy"] == 0.5
    assert best["implied_accuracy"] > 0.5 and metrics["train_loss_last"] < metrics["train_loss_first"]
    assert metrics["lengths"]["train"] == {"pairs": 18, "dropped": 0, "truncated": 0, "kept": 18}
    assert any(e["event"] == "dpo.eval" for e in events) and any(e["event"] == "dpo.log" for e in events)
    model = AutoModelForCausalLM.from_pretrained(metrics["best_checkpoint"])
    tokenizer = AutoTokenizer.from_pretrained(metrics["best_checkpoint"])
    chosen, rejected = losses.sequence_logps(model, tokenizer, held, 512)
    ref_c, ref_r = losses.sequence_logps(AutoModelForCausalLM.from_pretrained(tiny_llama), tokenizer, held, 512)
    reloaded = dpo.implied_accuracy([a - b for a, b in zip(chosen, ref_c)], [a - b for a, b in zip(rejected, ref_r)],
                                    0.1)  # fmt: skip
    assert reloaded == pytest.approx(best["implied_accuracy"])
    saved = json.loads((tmp_path / "dpo" / "best" / "dpo_metrics.json").read_text())
    assert saved["best_step"] == best["step"]


def test_train_dpo_with_lora_saves_a_merged_checkpoint(tiny_llama, pairs, tmp_path):
    from transformers import AutoModelForCausalLM

    metrics = dpo.train_dpo(tiny_llama, pairs[:12], pairs[18:], tmp_path / "lora", beta=0.1, lam=0.1, lora=True,
                            steps=6, lr=1e-2, batch_size=4, eval_every=3)  # fmt: skip
    assert [h["step"] for h in metrics["history"]] == [3, 6]
    model = AutoModelForCausalLM.from_pretrained(metrics["best_checkpoint"])
    assert not any("lora" in name for name, _ in model.named_parameters())
    base = AutoModelForCausalLM.from_pretrained(tiny_llama)
    assert any((a - b).abs().max() > 0 for a, b in zip(model.parameters(), base.parameters()))
