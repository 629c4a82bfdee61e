"""A tiny causal LM (2-layer Llama, hidden 64) with a BPE tokenizer trained in-process, for tests and the local demo.

Nothing is downloaded: the tokenizer is trained on a small corpus here and the weights are random (seeded), so the
saved directory reloads offline with `AutoModelForCausalLM` / `AutoTokenizer` like any real checkpoint.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

PAD, BOS, EOS = "<pad>", "<s>", "</s>"
# Renders a conversation as plain "Role: text" turns; a generation prompt ends with "Assistant:".
CHAT_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'user' %}Human: {% elif m['role'] == 'assistant' %}Assistant: "
    "{% else %}System: {% endif %}{{ m['content'] }}{% if m['role'] == 'assistant' %}</s>{% endif %}{{ '\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}"
)
DEFAULT_CORPUS = (
    "Human: How do I reset my password? Assistant: Open settings, choose account, then reset password.",
    "Human: Can you help me with my order? Assistant: Of course, I am happy to help. What is the order number?",
    "Human: What is the capital of France? Assistant: The capital of France is Paris.",
    "Human: Tell me a joke. Assistant: Why did the chicken cross the road? To get to the other side.",
    "Human: Is the earth flat? Assistant: No. The earth is round, as measurements from space show.",
    "Human: Write a short poem. Assistant: The river runs, the morning sings, and light returns to little things.",
    "Human: Thanks for the help! Assistant: You are welcome. Let me know if there is anything else.",
    "Human: I think two plus two is five. Assistant: Two plus two is four; I understand the mix-up.",
    "Human: Go away. Assistant: I am sorry you feel that way. I am here if you need help.",
    "Human: Explain gravity simply. Assistant: Gravity pulls things with mass toward each other.",
    "Sorry, I cannot help with that. Please ask something else. Thank you, that is very helpful and polite.",
    "No. Whatever. Figure it out yourself. That is a stupid question.",
)


def build_tiny_llama(
    out_dir: str | os.PathLike,
    corpus: Iterable[str] | None = None,
    *,
    vocab_size: int = 512,
    hidden_size: int = 64,
    num_layers: int = 2,
    seed: int = 0,
) -> Path:
    """Train a BPE tokenizer in-process, build a random tiny LlamaForCausalLM and save both to out_dir."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    texts = list(corpus) if corpus is not None else list(DEFAULT_CORPUS)

    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte is encodable: no unknown tokens
        show_progress=False,
    )
    raw.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw, bos_token=BOS, eos_token=EOS, pad_token=PAD, model_max_length=512
    )
    tokenizer.chat_template = CHAT_TEMPLATE

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=512,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
