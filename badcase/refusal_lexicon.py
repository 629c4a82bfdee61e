"""Refusal phrase lexicon: phrase groups as word n-grams and their vectorised matcher (numpy), for `badcase.refusal`."""

from __future__ import annotations

import re

import numpy as np

_CANT = "{provide|assist|help|comply|fulfill|answer|create|give|share|write|generate|offer}"
_NOTOK = ("{appropriate|ethical|accurate|fair|okay|ok|acceptable|advisable|recommended|legal|safe|right|respectful"
          "|productive|a good idea|responsible|true|correct|justified|necessarily}")
_IMNOT = ("{unable|not able|not going|not comfortable|not in a position|not allowed|not permitted|not capable|not privy"
          "|afraid i can't|afraid i cannot}")
_TIPS = "{tips|ways|suggestions|strategies|ideas|options|examples|steps|reasons|methods}"
# Phrase templates over lower-case words ({a|b} = alternatives, an empty one = optional); punctuation is ignored.
PHRASES: dict[str, list[str]] = {
    "ref": [
        "i {cannot|can not|can't|won't|will not|refuse to|must decline|have to decline|must refuse|would rather not"
        "|have no way of knowing}", f"{{i am|i'm}} {_IMNOT}", "i {do not|don't} feel comfortable",
        "i {do not|don't} {provide|assist}", "i'd rather not",
        "i {do not|don't} have {access|the ability|the capability|any information|information|real-time}",
        f"{{unable|not able}} to {_CANT}", "{it's|it is} not possible for me", "not something i can",
        "against my {programming|guidelines|policies|principles|ethics|ethical}",
    ],
    "soft": [
        f"{{it's|it is}} not {_NOTOK}", "{it's|it is} {wrong|illegal|unethical|immoral|against the law} to",
        "{that's|that is|this is} not {a valid|an appropriate|appropriate|a respectful|true|accurate|correct}",
        "i {do not|don't} think {that's|it's|it is|that is|this is|it would be|you should}",
        "{i would|i must|i have to|i need to|i want to|i would like to|i'd|i'd like to} {|strongly} {advise against"
        "|recommend against|caution against|clarify|point out|inform|emphasize|emphasise|stress|remind}",
        "i {do not|don't} {recommend|condone|support|endorse|encourage|promote}",
        "there is no {justification|valid|legitimate|good reason|reason|evidence|scientific}", "no one should",
        "should never", "should not be {discriminated|denied|treated|judged|excluded}",
        "is {never|not} {acceptable|justified|okay|ok|appropriate|the answer|a solution}",
        "you should {not|never}", "please {do not|don't}", "do not attempt",
    ],
    "apo": ["{i'm|i am} {|really|very|so} sorry {but|i|that}", "i {apologize|apologise} but", "sorry but",
            "my apologies but", "unfortunately"],
    "ai": ["as {a|an} {ai|language model|assistant|responsible|helpful|ethical|privacy}", "ai language model",
           "{i'm|i am} {|just} an ai", "i {do not|don't} {have|hold} personal {opinions|beliefs|views}"],
    "lec": ["important to", "regardless of"],
    "fic": ["{does not|doesn't} {exist|make sense}", "{do not|don't} make sense", "in real life", "not real",
            "not {|scientifically} possible", "not capable of", "play on words", "false premise",
            "no one can", "{any|all} {human|humans|human beings}", "not {a|an} {real|actual|proven|realistic}"],
    "help": ["mental health", "seek {professional|immediate|help}", "law enforcement",
             "talk {|things over} {to|with} {someone|a}"],
    "red": ["i {|would} {suggest|recommend|encourage}"],
    "offer": ["here {are|is}", "here's", "the following", f"{{some|a few|several}} {_TIPS}",
              "however {if|i can|here|there are|you can|as|in}", "that {|being} said", "but i can",
              "i can {provide|offer|give|tell|share|explain}", "you {can|could|may} {try|use|also|consider}",
              "if {you're|you are} {looking|interested|referring|asking}", "if you {mean|meant}"],
    "close": ["if you have any other", "anything else", "feel free to", "let me know if", "i'm here to help",
              "{happy|glad} to help"],
    "happy": ["i'm {happy|glad} to help", "i'm glad you're", "thank you for", "great question", "i understand that",
              "it's understandable"],
}
# Single words (first 8 letters compared, so "discriminat..." or "respectful" forms count).
WORDS: dict[str, str] = {
    "lec": "appropriate inappropriate ethical unethical ethics ethically illegal illegally harm harms harmful harming"
           " danger dangerous respect respects respectful disrespectful discrimination discriminate stereotype"
           " stereotypes dignity privacy consent equal equality equally unequal moral morally immoral crime crimes"
           " criminal safety violate violates violation offensive responsible irresponsible wellbeing",
    "fic": "fictional hypothetical inanimate assumption assumptions supernatural scientific scientifically physically"
           " biologically physics pseudoscience pseudoscientific mythical myth myths fantasy metaphor metaphorical"
           " unrealistic impossible nobody",
    "help": "crisis hotline hotlines suicide suicidal authorities therapist therapists counselor counsellor"
            " counseling counselling police",
    "red": "instead alternative alternatives",
}
_G = tuple(PHRASES)
_GID = {g: i for i, g in enumerate(PHRASES)}
_BITS = np.array([1 << i for i in range(len(PHRASES))], dtype=np.int64)
_SIG = np.isin(np.arange(len(PHRASES)), [_GID[g] for g in ("ref", "soft", "apo", "ai")])
_SIGMASK = int(_BITS[_SIG].sum())
_MORALMASK = _SIGMASK | int(_BITS[_GID["lec"]] | _BITS[_GID["help"]])
_NONCONTENT = int(_BITS.sum()) & ~int(_BITS[_GID["offer"]] | _BITS[_GID["fic"]])
_MASKS = np.array([(1 << (8 * k)) - 1 for k in range(8)] + [(1 << 64) - 1], dtype=np.uint64)
_MUL = np.uint64(0x9E3779B97F4A7C15)
_SPREAD = np.uint64(0xD6E8FEB86659FD93)


def _expand(template: str) -> list[list[str]]:
    """Every word list a template spells ({a|b} = alternatives, an empty alternative = optional)."""
    out = [""]
    for part in re.split(r"(\{[^}]*\})", template):
        opts = part[1:-1].split("|") if part.startswith("{") else [part]
        out = [a + o for a in out for o in opts]
    return [s.split() for s in out]


def ngram_table(phrases: dict[str, list[str]], words: dict[str, str] | None = None) -> dict:
    """Hash table of every phrase (as word n-grams, first 8 letters of each word) and single word, with its group.

    Group indices follow the order of `phrases` then of any new names in `words`.
    """
    names = list(dict.fromkeys([*phrases, *(words or {})]))
    forms = [(names.index(g), f) for g, ts in phrases.items() for t in ts for f in _expand(t)]
    forms += [(names.index(g), [w]) for g, ws in (words or {}).items() for w in ws.split()]
    entries: dict[int, tuple[int, int]] = {}
    for gi, form in forms:
        h = 0
        for w in form:
            h = (h * int(_MUL) + int.from_bytes(w[:8].encode().ljust(8, b"\0"), "little")) & 0xFFFFFFFFFFFFFFFF
        entries[h] = (gi, len(form))
    keys = np.array(sorted(entries), dtype=np.uint64)
    bits = np.zeros(1 << 16, dtype=bool)
    bits[((keys * _SPREAD) >> np.uint64(48)).astype(np.intp)] = True
    return {"keys": keys, "group": np.array([entries[int(k)][0] for k in keys]), "bits": bits,
            "n": np.array([entries[int(k)][1] for k in keys]), "maxn": max(v[1] for v in entries.values())}


def ngram_hits(buf: np.ndarray, table: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start, end, group) of phrase matches in `buf` (lower-case ASCII bytes, NUL-separated rows, 8 trailing NULs).

    At each word the longest phrase wins; a phrase starting inside an earlier phrase is dropped (single words stay).
    """
    wch = (np.subtract(buf, 97, dtype=np.uint8) <= 25) | (buf == 39)
    edge = np.diff(wch.view(np.int8), prepend=np.int8(0))
    ws, we = np.flatnonzero(edge == 1), np.flatnonzero(edge == -1)
    view = np.ndarray((len(buf) - 7,), dtype="<u8", buffer=buf, strides=(1,))
    keys = view[ws] & _MASKS[np.minimum(we - ws, 8)]
    row = np.searchsorted(np.flatnonzero(buf == 0), ws)
    found_w, found_n, found_g = [], [], []
    h = keys
    for n in range(1, min(table["maxn"], len(keys)) + 1):
        if n > 1:
            h = h[:-1] * _MUL + keys[n - 1:]
        ok = table["bits"][((h * _SPREAD) >> np.uint64(48)).astype(np.intp)]
        if n > 1:
            ok &= row[:len(h)] == row[n - 1:]
        cand = np.flatnonzero(ok)
        if len(cand):
            pos = np.minimum(np.searchsorted(table["keys"], h[cand]), len(table["keys"]) - 1)
            hit = (table["keys"][pos] == h[cand]) & (table["n"][pos] == n)
            found_w.append(cand[hit])
            found_n.append(np.full(int(hit.sum()), n))
            found_g.append(table["group"][pos[hit]])
    if not found_w:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    wi, nn, gg = np.concatenate(found_w), np.concatenate(found_n), np.concatenate(found_g)
    order = np.lexsort((-nn, wi))
    wi, nn, gg = wi[order], nn[order], gg[order]
    first = np.r_[True, wi[1:] != wi[:-1]]  # longest match per start word
    wi, nn, gg = wi[first], nn[first], gg[first]
    last = wi + nn - 1
    reach = np.maximum.accumulate(np.where(nn > 1, last, -1))
    keep = (nn == 1) | (wi > np.r_[-1, reach[:-1]])
    wi, nn, gg = wi[keep], nn[keep], gg[keep]
    return ws[wi], we[wi + nn - 1], gg


_TABLE = ngram_table(PHRASES, WORDS)
