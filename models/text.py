"""Sparse text features: content terms and named things, extracted without any model.

Dense similarity alone cannot link "Gunmen attack Moscow concert hall" with "Islamic State claims
responsibility for Crocus City Hall shooting" (MiniLM cosine 0.27). What links them is the story's
own vocabulary and the names it keeps mentioning, which these features capture. They are stateless
(the online IDF lives in the clusterer), so they are computed in the embed stage and scale out.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from functools import lru_cache

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

_URL = re.compile(r"https?://\S+|www\.\S+")
_TOKEN = re.compile(r"[#@]?[^\W_][\w'’\-]*", re.UNICODE)
_SENTENCE_MARK = re.compile(r"[.!?:]")
_EXTRA_STOP = {
    "rt",
    "via",
    "amp",
    "new",
    "says",
    "said",
    "say",
    "just",
    "like",
    "get",
    "got",
    "make",
    "day",
    "week",
    "year",
    "years",
    "today",
    "time",
    "one",
    "two",
    "news",
    "report",
    "reports",
    "update",
    "video",
    "photos",
    "watch",
    "live",
    "people",
    "know",
    "good",
    "want",
    "need",
    "going",
    "http",
    "https",
    "que",
    "del",
    "los",
    "las",
    "por",
    "una",
    "con",
    "para",
    "che",
    "per",
    "non",
    "della",
}
STOP_WORDS = frozenset(ENGLISH_STOP_WORDS) | _EXTRA_STOP
MAX_TERMS = 64


@lru_cache(maxsize=1 << 16)
def _name_norm(token: str) -> str:
    """Names are only lower-cased and lose a possessive: "Kansas" must not become "kansa".
    (Cached, as is :func:`_normalise`: a body repeats its words, and these ran per token.)"""
    token = token.lower().replace("’", "'").strip("'-")
    return token[:-2] if token.endswith("'s") else token


@lru_cache(maxsize=1 << 16)
def _normalise(token: str) -> str:
    token = _name_norm(token)
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
    return _TOKEN.findall(_unlinked(text))


def _unlinked(text: str) -> str:
    """The text with its links blanked: what tokens and names are both read in."""
    return _URL.sub(" ", text)


def content_terms(text: str) -> Counter[str]:
    """Lower-cased, lightly stemmed content words (hashtags count as their word), stop words out.

    >>> sorted(content_terms("Gunmen attack Moscow concert hall, killing dozens #Moscow").items())
    [('attack', 1), ('concert', 1), ('dozen', 1), ('gunmen', 1), ('hall', 1), ('killing', 1), ('moscow', 2)]
    """
    return _count_terms(tokens(text))


def _count_terms(raw_tokens: list[str]) -> Counter[str]:
    counts = Counter(filter(None, map(_term, raw_tokens)))
    if len(counts) > MAX_TERMS:
        counts = Counter(dict(counts.most_common(MAX_TERMS)))
    return counts


@lru_cache(maxsize=1 << 16)
def _term(raw: str) -> str:
    """The content term a raw token counts as, or "" (a mention, a stop word, a number, too short)."""
    if raw[0] == "@":
        return ""
    term = _normalise(raw.lstrip("#"))
    if len(term) < 3 or term in STOP_WORDS or term.isdigit():
        return ""
    return term


def _is_title_case(words: list[str]) -> bool:
    alpha = [w for w in words if w[:1].isalpha() and w.lower() not in STOP_WORDS]
    return bool(alpha) and sum(w[0].isupper() for w in alpha) >= 0.8 * len(alpha) and len(alpha) > 2


def _name_runs(chunk: str, accept: Callable[[str, bool], bool]) -> list[str]:
    """Maximal runs of adjacent accepted capitalised words, as lower-case phrases.

    A run may start with a sentence-initial capital when the next word continues the name
    ("Islamic State claimed" gives "islamic state"); alone, a sentence-initial capital says nothing.
    A word without an initial capital ends any run and any pending capital, whatever precedes it:
    such words (most of a body) skip the look at the gap before them. ``chunk`` comes with its
    links blanked (:func:`_unlinked`), so words and the gaps between them are read in one text (a
    link shortens it: gaps read in the original were shifted after one, and "the Clutha Bar" after
    a link lost "clutha").
    """
    phrases: list[str] = []
    run: list[str] = []
    pending = ""  # a sentence-initial capital that may open a multi-word name
    prev_end = -1  # where the previous word ended; -1 before the first
    for m in _TOKEN.finditer(chunk):
        word = m.group()
        if not word[0].isupper():
            if run:
                phrases.append(" ".join(run))
                run = []
            pending = ""
            prev_end = m.end()
            continue
        gap = chunk[prev_end : m.start()] if prev_end >= 0 else ". "
        if gap == " ":  # the usual gap: adjacent, inside a sentence
            sentence_start = False
        else:
            if prev_end < 0 or gap.strip(" -") != "":  # not adjacent to the previous word
                if run:
                    phrases.append(" ".join(run))
                run, pending = [], ""
            sentence_start = prev_end < 0 or _SENTENCE_MARK.search(gap) is not None
        prev_end = m.end()
        norm = _name_norm(word)
        capital = norm not in STOP_WORDS and len(norm) >= 3
        if capital and accept(word, sentence_start):
            if pending and not run:
                run.append(pending)
            run.append(norm)
            pending = ""
        else:
            if run:
                phrases.append(" ".join(run))
            run = []
            pending = norm if capital and sentence_start else ""
    if run:
        phrases.append(" ".join(run))
    return phrases


def entities(title: str, text: str = "") -> set[str]:
    """Names an article mentions, as phrases: capitalised runs inside sentences, hashtags, acronyms.

    Multi-word names stay whole, so "Kansas City" and "Crocus City Hall" share nothing. A capital
    at the start of a sentence says nothing on its own. Title-case headlines capitalise everything,
    so their capitals only count when the body also capitalises the same word.

    >>> sorted(entities("Islamic State claims responsibility for Crocus City Hall shooting"))
    ['crocus city hall', 'islamic state']
    >>> sorted(entities("Gunmen kill 2 at Kansas City parade", "Police in Missouri said the FBI helps."))
    ['fbi', 'kansas city', 'missouri']
    """
    title, text = _unlinked(title), _unlinked(text)
    return _entities(title, text, _TOKEN.findall(title), _TOKEN.findall(text))


def terms_and_entities(title: str, text: str) -> tuple[Counter[str], set[str]]:
    """:func:`content_terms` of the title and body together and their :func:`entities`, reading
    each of them once (the embed stage featurises every article; the body is most of its cost).

    >>> terms, names = terms_and_entities("Gunmen attack Moscow concert hall", "Crowds in Moscow heard Putin.")
    >>> terms["moscow"], sorted(names)
    (2, ['moscow', 'putin'])
    """
    title, text = _unlinked(title), _unlinked(text)  # once each: the body is most of the cost
    title_tokens, text_tokens = _TOKEN.findall(title), _TOKEN.findall(text)
    return _count_terms(title_tokens + text_tokens), _entities(title, text, title_tokens, text_tokens)


def _entities(title: str, text: str, title_tokens: list[str], text_tokens: list[str]) -> set[str]:
    """Names in ``title`` and ``text`` (links blanked) and their tokens."""
    found: set[str] = set()
    for word in title_tokens + text_tokens:
        if word[0] == "#" and len(word) > 3:
            found.add(_name_norm(word[1:]))
    title_case = _is_title_case(title_tokens)
    body_caps = {_name_norm(w) for w in text_tokens if w[0].isupper()}

    def in_title(word: str, sentence_start: bool) -> bool:
        if title_case:
            return _name_norm(word) in body_caps and bool(text)
        return word.isupper() or not sentence_start

    def in_text(word: str, sentence_start: bool) -> bool:
        return word.isupper() or not sentence_start

    found.update(_name_runs(title, in_title))
    found.update(_name_runs(text, in_text))
    return {e for e in found if e not in STOP_WORDS and len(e) >= 3}
