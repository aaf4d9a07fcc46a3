"""Sparse text features: content terms and named things, extracted without any model.

Dense similarity alone cannot link "Gunmen attack Moscow concert hall" with "Islamic State claims
responsibility for Crocus City Hall shooting" (MiniLM cosine 0.27). What links them is the story's
own vocabulary and the names it keeps mentioning, which these features capture. They are stateless
(the online IDF lives in the clusterer), so they are computed in the embed stage and scale out.
"""

from __future__ import annotations

import re
from collections import Counter

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

_URL = re.compile(r"https?://\S+|www\.\S+")
_TOKEN = re.compile(r"[#@]?[^\W_][\w'’\-]*", re.UNICODE)
_EXTRA_STOP = {
    "rt", "via", "amp", "new", "says", "said", "say", "just", "like", "get", "got", "make", "day",
    "week", "year", "years", "today", "time", "one", "two", "news", "report", "reports", "update",
    "video", "photos", "watch", "live", "people", "know", "good", "want", "need", "going", "http",
    "https", "que", "del", "los", "las", "por", "una", "con", "para", "che", "per", "non", "della",
}
STOP_WORDS = frozenset(ENGLISH_STOP_WORDS) | _EXTRA_STOP
MAX_TERMS = 64


def _normalise(token: str) -> str:
    token = token.lower().replace("’", "'").strip("'-")
    if token.endswith("'s"):
        token = token[:-2]
    if len(token) > 4 and token.endswith("ies"):
        token = token[:-3] + "y"
    elif len(token) > 3 and token.endswith("s") and not token.endswith(("ss", "us", "is")):
        token = token[:-1]
    return token


def tokens(text: str) -> list[str]:
    """Raw tokens with their case, URLs dropped; hashtags and mentions keep their sigil.

    >>> tokens("Gunmen attack #Moscow hall http://t.co/x")
    ['Gunmen', 'attack', '#Moscow', 'hall']
    """
    return _TOKEN.findall(_URL.sub(" ", text))


def content_terms(text: str) -> Counter[str]:
    """Lower-cased, lightly stemmed content words (hashtags count as their word), stop words out.

    >>> sorted(content_terms("Gunmen attack Moscow concert hall, killing dozens #Moscow").items())
    [('attack', 1), ('concert', 1), ('dozen', 1), ('gunmen', 1), ('hall', 1), ('killing', 1), ('moscow', 2)]
    """
    counts: Counter[str] = Counter()
    for raw in tokens(text):
        if raw[0] == "@":
            continue
        term = _normalise(raw.lstrip("#"))
        if len(term) < 3 or term in STOP_WORDS or term.isdigit():
            continue
        counts[term] += 1
    if len(counts) > MAX_TERMS:
        counts = Counter(dict(counts.most_common(MAX_TERMS)))
    return counts


def _is_title_case(words: list[str]) -> bool:
    alpha = [w for w in words if w[:1].isalpha() and w.lower() not in STOP_WORDS]
    return bool(alpha) and sum(w[0].isupper() for w in alpha) >= 0.8 * len(alpha) and len(alpha) > 2


def entities(title: str, text: str = "") -> set[str]:
    """Names an article mentions: capitalised words inside sentences, hashtags, acronyms.

    A capital at the start of a sentence says nothing. Title-case headlines capitalise everything, so their capitals only count when the body (or
    another sentence) also capitalises the same word.

    >>> sorted(entities("Islamic State claims responsibility for Crocus City Hall shooting"))
    ['city', 'crocus', 'hall', 'state']
    """
    found: set[str] = set()
    for chunk, is_title in ((title, True), (text, False)):
        words = tokens(chunk)
        title_case = is_title and _is_title_case(words)
        for i, word in enumerate(words):
            if word[0] == "#" and len(word) > 3:
                found.add(_normalise(word[1:]))
                continue
            if word[0] == "@" or not word[0].isupper():
                continue
            norm = _normalise(word)
            if len(norm) < 3 or norm in STOP_WORDS:
                continue
            sentence_start = i == 0 or _ends_sentence(chunk, words[i - 1])
            if (sentence_start or title_case) and not word.isupper():
                continue
            found.add(norm)
    if title and _is_title_case(tokens(title)) and text:
        body_caps = {_normalise(w) for w in tokens(text) if w[0].isupper()}
        found |= {_normalise(w) for w in tokens(title) if w[0].isupper()} & body_caps
    return {e for e in found if e not in STOP_WORDS and len(e) >= 3}


def _ends_sentence(chunk: str, previous: str) -> bool:
    at = chunk.find(previous)
    follow = chunk[at + len(previous) : at + len(previous) + 2] if at >= 0 else ""
    return any(mark in follow for mark in ".!?:")
