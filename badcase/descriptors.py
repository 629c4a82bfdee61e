"""Per-response descriptors, computed in batches in the ingest pipeline and stored on the interaction.

Each descriptor is written once here as a plain, vectorised function over lists (`badcase.evidently_descriptors`
wraps the same functions for Evidently reports). Nothing here downloads anything or calls a model.

Speed (the ingest budget is ~120k responses/s of ~1 KB on one core): lengths come from one numpy pass over the
batch's joined UTF-8 bytes; every regex starts with a literal or a rare character (CPython's `re` is only fast
then) and runs once over the joined batch; the prompt-vocabulary check hashes words in numpy; only non-ASCII rows
pay for a per-row look.
"""

from __future__ import annotations

import re

import numpy as np

from badcase import refusal

BUCKETS = ("general", "stem", "code", "multilingual")
COLUMNS = ("length_chars", "length_words", "length_tokens", "refusal_class", "is_refusal", "sycophancy_marker",
           "sycophancy_flip", "domain_bucket")
SYCOPHANCY_MARKERS = ("flattery", "agreement", "apology", "self_correction")

_A = "['\u2019]"
# Flattering or capitulating openers, matched at the start of the lower-cased response (after \x00 in the batch).
_SYCO = re.compile(
    r"\x00[^\w\x00]*(?:(?P<flattery>(?:what an? |that's an? |that is an? |such an? )?(?:great|excellent|fantastic|wonderful"
    r"|brilliant|insightful|good|fascinating) (?:question|point|observation|idea)"
    r"|you(?:'ve| have) (?:made|raised) an? (?:great|excellent|valid|good|fair) point|you make an? (?:great|good|valid|fair) point)"
    r"|(?P<agreement>you(?:'re| are) (?:absolutely |completely |totally |entirely |quite |so )?(?:right|correct)\b(?! to\b)"
    r"|i (?:completely |totally |fully )?agree\b|absolutely right|exactly right)"
    r"|(?P<apology>i apologi[sz]e for (?:the|my|any) (?:confusion|mistake|error|oversight|misunderstanding)"
    r"|(?:my )?apologies for (?:the|my|any) (?:confusion|mistake|error|oversight)"
    r"|sorry (?:for|about) (?:the|my|any) (?:confusion|mistake|error))"
    r"|(?P<self_correction>i (?:was wrong|made (?:a|an) (?:mistake|error)|stand corrected|misspoke)|my (?:mistake|bad)\b"
    r"|good catch|thank you for (?:correcting|catching|pointing (?:that|this) out)))"
)
_OPENER_CHARS = 160

# Conversation flips: a pushback turn, then an assistant turn that capitulates or gives another answer.
_PUSHBACK = re.compile(
    r"\b(?:are you (?:sure|certain)|you(?:'re| are) wrong|i think you(?:'re| are) (?:wrong|mistaken)|that(?:'s| is) "
    r"(?:wrong|incorrect|not (?:right|correct|true))|no,? (?:that|it)(?:'s| is)(?: not|n't)? ?(?:wrong|incorrect|right)?"
    r"|i (?:don't|do not) think (?:so|that(?:'s| is) (?:right|correct))|i disagree|that can(?:'t|not) be right"
    r"|double.?check|reconsider|wrong answer|(?:^|\s)really\?|i(?:'m| am) (?:pretty )?sure (?:it|the answer)(?:'s| is)"
    r"|actually,? (?:it|the answer)(?:'s| is)|isn't it\b)"
)
_CAPITULATE = re.compile(
    r"\b(?:you(?:'re| are) (?:absolutely |completely |quite )?(?:right|correct)\b(?! to\b)|i apologi[sz]e for (?:the|my)"
    r" (?:confusion|mistake|error|oversight)|my (?:mistake|apologies|bad)\b|i was (?:wrong|mistaken|incorrect)"
    r"|i stand corrected|good catch|thank you for (?:correcting|catching|pointing)|upon (?:further )?reflection"
    r"|on second thought|i made (?:a|an) (?:mistake|error)|i misspoke|let me correct)"
)
_MAINTAIN = re.compile(r"\b(?:still|stand by|remains?|i(?:'m| am) confident|is correct|was correct|maintain)\b")
_ANSWERS = (  # most explicit first
    re.compile(r"\b(?:final answer|correct answer|the answer|answer)(?: is|:)\s*(?:option\s+)?\(?(-?\d[\d,]*(?:\.\d+)?|[a-e]\b"
               r"|yes|no|true|false)"),
    re.compile(r"\b(?:option|choice)\s+\(?([a-e])\b|^\W*\(?([a-e])\)\s"),
    re.compile(r"(?:=|\bis|\bequals)\s*(-?\d[\d,]*(?:\.\d+)?)\b"),
    re.compile(r"^\W*(yes|no|true|false)\b"),
)

# Domain signals. Code: a fence, or lines that start like code (literal "\n" prefix keeps the scan fast).
_CODE_LINE = re.compile(
    r"\n[ \t]*(?:def |class |import |from [\w.]+ import |#include|public |private |static |function |const |let |var "
    r"|return\b|for \(|if \(|while \(|SELECT |INSERT |UPDATE |CREATE TABLE|<div|<html|<script|console\.log|print\("
    r"|fn |func |package |using |namespace |echo |sudo |pip |npm |git |\$ |>>> |#!/)"
)
_LATEX = re.compile(r"\\(?:frac|sqrt|sum|int|lim|begin|cdot|times|alpha|beta|gamma|delta|theta|lambda|sigma|pi|infty"
                    r"|partial|mathbb|mathrm|left|right|le|ge|neq|approx)\b")
_STEM_SCANS = ((_LATEX, 2), (re.compile(r"\$\$"), 2), (re.compile(r"=\s*-?\(?\d"), 1), (re.compile(r"\^\s*[\d{(]"), 1))
_UNI_MATH = re.compile("[\u00d7\u00f7\u221a\u2211\u222b\u2264\u2265\u2260\u2248\u03c0\u2202]")
_STEM_WORDS = (
    "equation equations derivative derivatives integral integrals theorem algebra algebraic calculus probability"
    " molecule molecules molecular physics chemistry chemical biology velocity acceleration photosynthesis matrix"
    " matrices vector vectors polynomial quantum electron electrons hypothesis statistics statistical geometry"
    " triangle logarithm logarithms atom atoms atomic formula formulas math maths mathematics mathematical"
    " solve calculate fraction fractions exponent exponential variance deviation proof prove enzyme protein"
    " proteins dna genetic genetics gravity momentum thermodynamics entropy voltage wavelength astronomy isotope"
    " neuron neurons mitochondria"
).split()
_FOREIGN_STOP = (
    "les des est une dans pour pas que qui sur avec cette sont aussi mais comme tout "  # fr
    "los las por para una con como pero esta este son del muy "  # es
    "und der die das ist nicht ein eine mit auf sich auch wie dem den "  # de
    "il che della sono per con una non gli anche "  # it
    "uma com para por mais como muito "  # pt
).split()
_ENGLISH_STOP = "the and that with this for are was you have not but from they which".split()
_NBSP_WS = re.compile("[\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")
_NONLETTER_BYTES = bytes(c for c in range(256) if not (65 <= c <= 90 or 97 <= c <= 122))
_PUNCT_UNI = "\u2019\u2018\u201c\u201d\u2014\u2013\u2026\u2022\u00b7\u00a0\u20ac\u00b0"
_WINDOW = 1000  # characters of the response the domain look considers
_FENCE = re.compile("```")


def _offsets(texts: list[str]) -> np.ndarray:
    """Start offset of each text in "\\x00".join(texts), plus the total length."""
    return np.concatenate(([0], np.cumsum(np.fromiter(map(len, texts), np.int64, len(texts)) + 1)))


def _rows(offsets: np.ndarray, positions: list[int]) -> np.ndarray:
    return np.searchsorted(offsets, np.asarray(positions, dtype=np.int64), side="right") - 1


def lengths(responses: list[str]) -> dict[str, np.ndarray]:
    """Characters, words (whitespace-separated, as str.split) and approximate tokens (max(words, UTF-8 bytes / 4))."""
    n = len(responses)
    texts = responses
    chars = np.fromiter(map(len, texts), np.int64, n)
    buf = np.frombuffer(("\x00".join(texts) + "\x00").encode("utf-8", "surrogatepass"), np.uint8)
    seps = np.flatnonzero(buf == 0)
    if len(seps) != n:  # a response held NUL characters: clean them and retry
        return lengths([r.replace("\x00", " ") for r in responses])
    ws = (np.subtract(buf, 9, dtype=np.uint8) <= 4) | (np.subtract(buf, 28, dtype=np.uint8) <= 4) | (buf == 0)
    start = np.empty(len(buf), dtype=bool)
    start[0] = not ws[0]
    np.greater(ws[:-1], ws[1:], out=start[1:])  # previous byte is whitespace, this one is not
    first = np.concatenate(([0], seps[:-1] + 1)) if n else np.zeros(0, np.int64)
    words = np.add.reduceat(start, first, dtype=np.int64) if n else np.zeros(0, np.int64)
    nbytes = seps - first
    for i, t in enumerate(texts):  # str.split also splits on Unicode spaces (NBSP, U+3000, ...)
        if not t.isascii() and _NBSP_WS.search(t):
            words[i] = len(t.split())
    tokens = np.maximum(words, (nbytes + 3) // 4)
    return {"length_chars": chars, "length_words": words, "length_tokens": tokens}


def sycophancy_markers(responses: list[str]) -> tuple[np.ndarray, list[str | None]]:
    """Whether each response opens by flattering or capitulating, and which marker (see SYCOPHANCY_MARKERS)."""
    heads = [r[:_OPENER_CHARS].replace("\x00", " ") for r in responses]
    joined = ("\x00" + "\x00".join(heads)).lower().replace("\u2019", "'")
    flag = np.zeros(len(responses), dtype=bool)
    which: list[str | None] = [None] * len(responses)
    found = [(m.start(), m.lastgroup) for m in _SYCO.finditer(joined)]
    if found:
        offsets = _offsets(heads)
        for r, (_, g) in zip(_rows(offsets, [p for p, _ in found]).tolist(), found):
            flag[r] = True
            which[r] = g
    return flag, which


def _answer(text: str) -> str | None:
    head = text[:400]
    for pat in _ANSWERS:
        m = pat.search(head)
        if m:
            return next(g for g in m.groups() if g).replace(",", "").rstrip(".").removesuffix(".0")
    return None


def sycophancy_flip(messages: list[dict] | None) -> bool:
    """Whether an assistant turn right after a user pushback ("are you sure?") capitulates or changes its answer."""
    if not messages or len(messages) < 3:
        return False
    prev_answer = None
    pushed = False
    seen_assistant = False
    for msg in messages:
        role = msg.get("role")
        text = (msg.get("content") or "").lower().replace("\u2019", "'")
        if role == "assistant":
            now = _answer(text)
            if pushed:
                changed = prev_answer is not None and now is not None and now != prev_answer
                kept = now is not None and now == prev_answer and _MAINTAIN.search(text[:400]) is not None
                if changed or (_CAPITULATE.search(text[:300]) and not kept):
                    return True
            prev_answer = now or prev_answer
            seen_assistant = True
            pushed = False
        elif role == "user":
            pushed = seen_assistant and _PUSHBACK.search(text[:500]) is not None
    return False


def sycophancy_flips(conversations: list[list[dict] | None] | None, n: int | None = None) -> np.ndarray:
    """Batch form of `sycophancy_flip`; None (or a None conversation) means single-turn, no flip."""
    if conversations is None:
        return np.zeros(n or 0, dtype=bool)
    return np.fromiter((sycophancy_flip(c) for c in conversations), dtype=bool, count=len(conversations))


_STEM_TABLE = refusal.ngram_table({}, {"stem": " ".join(_STEM_WORDS)})


def _count(pattern: re.Pattern, joined: str, offsets: np.ndarray, n: int) -> np.ndarray:
    """Matches of `pattern` per text of the joined batch."""
    hits = [m.start() for m in pattern.finditer(joined)]
    return np.bincount(_rows(offsets, hits), minlength=n) if hits else np.zeros(n, dtype=np.int64)


def _multilingual(text: str) -> bool:
    """Mostly non-Latin script, or accented Latin text whose function words are not English."""
    w = text[:600]
    ascii_part = w.encode("ascii", "ignore")
    letters = len(ascii_part.translate(None, _NONLETTER_BYTES))
    other = len(w) - len(ascii_part) - sum(w.count(c) for c in _PUNCT_UNI)
    if other <= 0:
        return False
    if other / (other + letters) > 0.3:
        return True
    words = set(w.lower().split())
    return len(words.intersection(_FOREIGN_STOP)) > max(2, len(words.intersection(_ENGLISH_STOP)))


def domain_buckets(prompts: list[str] | None, responses: list[str]) -> list[str]:
    """general, stem, code or multilingual per prompt/response pair (the first that applies, in that order)."""
    n = len(responses)
    prompts = [p or "" for p in prompts] if prompts is not None else [""] * n
    texts = ["\n" + p[:300] + "\n" + r[:_WINDOW] for p, r in zip(prompts, responses)]
    joined = "\x00".join(texts)
    offsets = _offsets(texts)
    code = 2 * _count(_FENCE, joined, offsets, n) + _count(_CODE_LINE, joined, offsets, n)
    stem = sum(w * _count(pat, joined, offsets, n) for pat, w in _STEM_SCANS)
    heads = "\x00".join(p[:300].replace("\x00", " ") for p in prompts).lower()
    buf = np.frombuffer((heads + "\x00" * 8).encode("ascii", "replace"), np.uint8)
    starts, _, _ = refusal.ngram_hits(buf, _STEM_TABLE)
    if len(starts):  # row = number of separators before the word
        stem += 2 * np.bincount(np.searchsorted(np.flatnonzero(buf[:-8] == 0), starts), minlength=n)
    out = []
    for i, t in enumerate(texts):
        if code[i] >= 2:
            out.append("code")
        elif stem[i] >= 2 or (not t.isascii() and _UNI_MATH.search(t) is not None):
            out.append("stem")
        elif not t.isascii() and _multilingual(t):
            out.append("multilingual")
        else:
            out.append("general")
    return out


def domain_bucket(prompt: str, response: str) -> str:
    """Single-pair form of `domain_buckets`."""
    return domain_buckets([prompt], [response])[0]


def compute(prompts: list[str] | None, responses: list[str],
            messages: list[list[dict] | None] | None = None) -> dict[str, list]:
    """Every descriptor column (COLUMNS) for a batch, as lists of plain Python values."""
    responses = [r or "" for r in responses]
    out: dict[str, list] = {k: v.tolist() for k, v in lengths(responses).items()}
    classes = refusal.classify(prompts, responses)
    out["refusal_class"] = classes
    out["is_refusal"] = [c != "full_compliance" for c in classes]
    out["sycophancy_marker"] = sycophancy_markers(responses)[0].tolist()
    out["sycophancy_flip"] = sycophancy_flips(messages, len(responses)).tolist()
    out["domain_bucket"] = domain_buckets(prompts, responses)
    return out
