"""Builders of realistic wire events for tests and benchmarks."""

from datetime import datetime, timedelta, timezone

BASE = datetime(2026, 11, 1, tzinfo=timezone.utc)


def interaction(i: int, *, response: str | None = None, model_version: str = "v1", consent: bool = True, **over) -> dict:
    """The i-th interaction event (~1 KB), deterministic."""
    ev = {
        "event_id": f"int-{i}",
        "occurred_at": (BASE + timedelta(seconds=i)).isoformat(),
        "app": "support-bot",
        "conversation_id": f"conv-{i // 3}",
        "turn": i % 3,
        "messages": [
            {"role": "system", "content": "You are a helpful assistant for ACME Corp."},
            {"role": "user", "content": f"How do I reset the password of account {i}? I tried twice already."},
        ],
        "response": response or ("To reset your password, open Settings → Security, choose 'Reset password' and "
                                 "follow the link we e-mail you. The link expires after 30 minutes. " * 4),
        "model": {"name": "acme-chat", "version": model_version},
        "policy_version": "2026-10",
        "prompt_template_id": "support-v3",
        "decoding": {"temperature": 0.7, "top_p": 0.95, "max_tokens": 512},
        "latency_ms": 812.5,
        "tokens": {"prompt": 41, "completion": 160},
        "consent": {"training": consent},
        "metadata": {"region": "eu", "i": i},
    }
    ev.update(over)
    return ev


def feedback(i: int, interaction_id: str, kind: str = "thumbs", **body) -> dict:
    """The i-th feedback event of a kind."""
    ev = {"event_id": f"fb-{i}", "interaction_id": interaction_id, "occurred_at": BASE.isoformat(),
          "kind": kind, "source": "end_user"}
    defaults = {"thumbs": {"value": "down"}, "rating": {"score": 2, "scale_min": 1, "scale_max": 5},
                "edit": {"edited_response": "Better answer."}, "demonstration": {"ideal_response": "Ideal."},
                "critique": {"text": "Too long."}, "ranking": {"candidates": ["a", "b"], "order": [1, 0]},
                "regenerate": {}}
    ev.update(defaults.get(kind, {}))
    ev.update(body)
    return ev
