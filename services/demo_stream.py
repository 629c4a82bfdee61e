"""A synthetic production stream with realistic failure modes, for the demo (`make run`) and the loop test.

Phase "reference" is a healthy model; phase "current" has drifted: it refuses benign requests more often,
flips its answer when users push back, and rambles. Some failures get negative feedback (thumbs down, edits).
"""

import random
from datetime import datetime, timedelta, timezone

PROMPTS = [
    ("general", "How do I reset my password on the ACME portal?",
     "Open Settings → Security, choose 'Reset password' and follow the e-mailed link; it expires in 30 minutes."),
    ("general", "What's a polite way to decline a meeting invitation?",
     "Thank the organiser, say you can't attend, and offer an alternative time or a short written update."),
    ("general", "How do I kill all the weeds in my vegetable patch without chemicals?",
     "Pull them by hand after rain, mulch the beds thickly, and use boiling water on paving cracks."),
    ("stem", "What is the derivative of x^2 * sin(x)?",
     "By the product rule: 2x·sin(x) + x^2·cos(x)."),
    ("stem", "Why is the sky blue?",
     "Air molecules scatter short blue wavelengths of sunlight far more than red ones (Rayleigh scattering)."),
    ("code", "How do I kill a Python process that hangs?",
     "Find its PID with `ps aux | grep python`, then run `kill PID`; use `kill -9 PID` only if it ignores SIGTERM."),
    ("code", "Write a Python function that reverses a string.",
     "```python\ndef reverse(s: str) -> str:\n    return s[::-1]\n```"),
    ("general", "How can I shoot a good photo at night?",
     "Use a tripod, a wide aperture, ISO around 800–1600, and a 2-second timer to avoid shake."),
]
REFUSAL = "I'm sorry, but I can't help with that request. It may be unsafe, and I must decline."
RAMBLE = (" Furthermore, it is worth considering the broader context, the many perspectives that exist on this "
          "topic, and the various nuances that might apply in different situations.")
PUSHBACK = "Are you sure? I think that's wrong."
FLIP = "You're absolutely right, I apologize for the confusion. The answer is no, my previous answer was incorrect."
BASE = datetime(2026, 11, 1, tzinfo=timezone.utc)


def make(n: int, *, phase: str, start: int = 0, model_version: str = "2026-10", seed: int = 7,
         run: str = "") -> tuple[list[dict], list[dict]]:
    """`n` interactions (and the feedback some of them get) of one phase; `run` makes the event ids of one demo run
    its own (a second `make run` on the same database would otherwise send only duplicates)."""
    rng = random.Random(f"{seed}-{phase}")
    drifted = phase == "current"
    p_refuse, p_flip, p_ramble = (0.10, 0.08, 0.30) if drifted else (0.02, 0.02, 0.02)
    interactions, feedback = [], []
    pre = f"{run}-" if run else ""
    for i in range(start, start + n):
        bucket, prompt, good = PROMPTS[rng.randrange(len(PROMPTS))]
        messages = [{"role": "user", "content": prompt}]
        r = rng.random()
        if r < p_refuse:
            response, failure = REFUSAL, "refusal"
        elif r < p_refuse + p_flip:
            messages += [{"role": "assistant", "content": "Yes. " + good}, {"role": "user", "content": PUSHBACK}]
            response, failure = FLIP, "flip"
        elif r < p_refuse + p_flip + p_ramble:
            response, failure = good + RAMBLE * rng.randint(4, 8), "ramble"
        else:
            response, failure = good + (" " + good if rng.random() < 0.3 else ""), None
        eid = f"demo-{pre}{phase}-{i}"
        interactions.append({
            "event_id": eid, "occurred_at": (BASE + timedelta(seconds=i)).isoformat(), "app": "acme-assistant",
            "conversation_id": f"conv-{pre}{i}", "turn": len(messages) // 2, "messages": messages, "response": response,
            "model": {"name": "acme-chat", "version": model_version}, "latency_ms": 400 + rng.random() * 800,
            "tokens": {"prompt": 20 + len(prompt) // 4, "completion": len(response) // 4},
            "consent": {"training": rng.random() < 0.9}, "metadata": {"demo_bucket": bucket, "failure": failure}})
        if failure and rng.random() < 0.5:
            kind = "edit" if rng.random() < 0.5 else "thumbs"
            fb = {"event_id": f"fb-{eid}", "interaction_id": eid, "occurred_at": (BASE + timedelta(seconds=i + 5)).isoformat(),
                  "kind": kind, "source": "end_user"}
            fb.update({"edited_response": good} if kind == "edit" else {"value": "down"})
            feedback.append(fb)
    return interactions, feedback


def ideal_response(prompt: str) -> str | None:
    """The good answer the generator knows for a prompt (what a simulated expert writes as the rewrite)."""
    return next((good for _, p, good in PROMPTS if p == prompt), None)
