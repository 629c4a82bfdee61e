"""Throughput of badcase.descriptors.compute on synthetic ~1 KB responses; prints one JSON object.

Usage: python bench/descriptors.py [--n 100000] [--batch 1000] [--refusal-share 0.10] [--repeats 3]
Mix: `refusal-share` of refusals (a fifth terse, two fifths lecturing ~1 KB, two fifths refuse-then-list partials),
the rest compliance (general prose, code, STEM, French, Chinese; 5 % with a sycophantic opener); 10 % of items
carry a four-turn conversation ending in a pushback. Batches of `--batch` like the ingest pipeline. Rates are
median CPU time of this process (the machine is shared, wall time counts other jobs too; wall figures are printed
as well), next to raw-Python reference rates on the same texts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from badcase import descriptors, refusal  # noqa: E402

_LITERAL = re.compile("it is not ")
PROSE = [
    "The main idea is to keep each step small and easy to check.", "Most teams start with a simple baseline.",
    "This approach works well when the data fits in memory.", "You can adjust the settings later if needed.",
    "In practice, the difference is usually small.", "It helps to write down the assumptions first.",
    "A common mistake is to skip the validation step.", "The second option costs more but saves time.",
    "Start by listing what you already know about the problem.", "Then compare the results with last week's numbers.",
]
CODE = ("Here is a small example:\n\n```python\nimport json\n\ndef load(path):\n    with open(path) as f:\n"
        "        return json.load(f)\n```\n")
STEM = ("We solve $x^2 - 5x + 6 = 0$ by factoring: $(x-2)(x-3) = 0$, so x = 2 or x = 3. "
        "The derivative is \\frac{d}{dx}. ")
FRENCH = ("Bien sûr ! Voici les étapes à suivre pour préparer une pâte à crêpes légère et délicieuse "
          "pour toute la famille. ")
CHINESE = "当然可以。下面是准备这道菜的详细步骤，请按照顺序操作，注意火候和时间。"
OPENERS = ["Great question! ", "You're absolutely right. ", "I apologize for the confusion. "]
TERSE = ["I'm sorry, but I can't assist with that.", "Sorry, but I can't help with that request.",
         "I cannot help with that. If you have any other questions, feel free to ask."]
LECTURE = ("I cannot provide instructions on how to do that, as it could cause harm to others and is illegal. "
           "It is important to respect the safety and well-being of everyone involved.")
PARTIAL = ("I can't help with hacking into someone's account. However, here are some ways to secure your own "
           "account:\n\n1. Use a long, unique password.\n2. Turn on two-factor authentication.\n3. ")
MORAL = [
    "It is important to respect the rights and safety of others.", "Violence is never an acceptable solution.",
    "If you are struggling, please reach out to a mental health professional.",
    "Such actions can have serious legal consequences.", "I encourage you to focus on positive, legal alternatives.",
]
STEPS = ["Keep your software up to date.", "Review which apps can access your account.", "Use a password manager.",
         "Check the login history regularly.", "Enable alerts for new sign-ins."]
PROMPTS = ["How do I make this faster?", "Can you explain how this works?", "What is the best way to do this?",
           "How can I hack my neighbour's wifi?", "Solve x^2 - 5x + 6 = 0", "Write a function that loads JSON."]


def _fill(rng: random.Random, start: str, size: int, pool: list[str] = PROSE, sep: str = " ") -> str:
    out, k = start, 4
    while len(out) < size:
        out += sep.replace("#", str(k)) + rng.choice(pool)
        k += 1
    return out[:size]


def synth(n: int, refusal_share: float = 0.25, seed: int = 0) -> tuple[list[str], list[str], list]:
    """n (prompts, responses, conversations) with the mix described in the module docstring."""
    rng = random.Random(seed)
    prompts, responses, convs = [], [], []
    for _ in range(n):
        u = rng.random()
        size = rng.randint(900, 1150)
        if u < refusal_share * 0.2:
            r = rng.choice(TERSE)
        elif u < refusal_share * 0.6:
            r = _fill(rng, LECTURE, size, MORAL)
        elif u < refusal_share:
            r = _fill(rng, PARTIAL + rng.choice(STEPS), size, STEPS, "\n#. ")
        else:
            kind = rng.random()
            head = rng.choice(OPENERS) if rng.random() < 0.05 else ""
            body = (CODE if kind < 0.15 else STEM if kind < 0.3 else FRENCH * 3 if kind < 0.35
                    else CHINESE * 4 if kind < 0.4 else "")
            r = _fill(rng, head + body, size)
        prompts.append(rng.choice(PROMPTS))
        responses.append(r)
        convs.append([{"role": "user", "content": "Is 17 prime?"},
                      {"role": "assistant", "content": "Yes, 17 is prime."},
                      {"role": "user", "content": "Are you sure? I think it's not."},
                      {"role": "assistant", "content": r}] if rng.random() < 0.1 else None)
    return prompts, responses, convs


def _time(fn, repeats: int) -> float:
    """Median CPU seconds of this process (the machine is shared: wall time counts other jobs' slices too)."""
    runs = []
    for _ in range(repeats):
        t = time.process_time()
        fn()
        runs.append(time.process_time() - t)
    return statistics.median(runs)


def main() -> None:
    """Run the benchmark and print one JSON object."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--refusal-share", type=float, default=0.10)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    prompts, responses, convs = synth(a.n, a.refusal_share)
    b = a.batch
    batches = [(prompts[i:i + b], responses[i:i + b], convs[i:i + b]) for i in range(0, a.n, b)]

    def run_all():
        for p, r, c in batches:
            descriptors.compute(p, r, c)

    def part(fn):
        return lambda: [fn(p, r, c) for p, r, c in batches]

    total = _time(run_all, a.repeats)
    wall = []
    for _ in range(a.repeats):
        t = time.perf_counter()
        run_all()
        wall.append(time.perf_counter() - t)
    parts = {
        "lengths": part(lambda p, r, c: descriptors.lengths(r)),
        "refusal": part(lambda p, r, c: refusal.classify(p, r)),
        "sycophancy_marker": part(lambda p, r, c: descriptors.sycophancy_markers(r)),
        "sycophancy_flip": part(lambda p, r, c: descriptors.sycophancy_flips(c, len(r))),
        "domain_bucket": part(lambda p, r, c: descriptors.domain_buckets(p, r)),
    }
    raw = {  # the raw tools these stand on, over the same texts
        "str_split_len": lambda: [len(r.split()) for r in responses],
        "str_lower": lambda: [r.lower() for r in responses],
        "re_literal_scan": lambda: [_LITERAL.search(r) for r in responses],
    }
    cols = descriptors.compute(prompts[:b], responses[:b], convs[:b])
    out = {
        "bench": "descriptors.compute", "n": a.n, "batch": b, "repeats": a.repeats,
        "mean_chars": round(sum(map(len, responses)) / a.n, 1), "refusal_share_target": a.refusal_share,
        "responses_per_s": round(a.n / total), "cpu_seconds_median": round(total, 3),
        "responses_per_s_wall": round(a.n / statistics.median(wall)),
        "parts_responses_per_s": {k: round(a.n / _time(f, a.repeats)) for k, f in parts.items()},
        "raw_per_s": {k: round(a.n / _time(f, a.repeats)) for k, f in raw.items()},
        "first_batch_share": {k: sum(cols[k]) / b for k in ("is_refusal", "sycophancy_marker", "sycophancy_flip")},
        "python": platform.python_version(), "cpus": os.cpu_count(), "loadavg_1m": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
