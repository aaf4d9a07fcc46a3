"""Who is said to be responsible: claims, blame and denials, read off each article's sentences.

A dispute is a story whose sources name different responsible actors (Islamic State claims the
Crocus City Hall attack; Putin points at Ukraine; Kyiv denies). Patterns are deliberately narrow:
a missed attribution costs one weaker dispute signal, a false one costs a false alert.

>>> [a.summary() for a in attributions("Islamic State claims responsibility for Crocus City Hall shooting")]
['claim: islamic state']
>>> text = "Putin pointed the finger of blame at Ukraine. Ukraine has vehemently denied any link to it."
>>> [a.summary() for a in attributions("", text)]
['blame: ukraine (by putin)', 'denial: ukraine']
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Literal

Kind = Literal["claim", "blame", "denial"]

_ACTOR = r"((?:[Tt]he\s+)?(?:so-called\s+)?(?:[A-Z][\w.'’-]*)(?:\s+(?:of\s+)?[A-Z][\w.'’-]*){0,3})"
_ADVERB = r"(?:\s+(?:has|have|had|was|were|is|also|later|quickly|vehemently|firmly|strongly|flatly|\w+ly))*"
_PATTERNS: list[tuple[Kind, re.Pattern[str], int, int | None]] = [
    # kind, pattern, group of the responsible actor, group of the speaker
    (
        "claim",
        re.compile(
            _ACTOR
            + r"(?:\s+group)?"
            + _ADVERB
            + r"\s+(?:claim(?:s|ed)?|took|takes|accepted)\s+(?:full\s+)?responsibility"
        ),
        1,
        None,
    ),
    ("claim", re.compile(r"(?:attack|bombing|shooting|assault)\s+(?:was\s+)?claimed\s+by\s+" + _ACTOR), 1, None),
    (
        "blame",
        re.compile(
            _ACTOR
            + _ADVERB
            + r"\s+(?:blame[sd]?|accuse[sd]?|point(?:s|ed)?\s+(?:the\s+)?finger(?:\s+of\s+blame)?\s+at)\s+"
            + _ACTOR
        ),
        2,
        1,
    ),
    (
        "denial",
        re.compile(
            _ACTOR
            + _ADVERB
            + r"\s+(?:den(?:y|ies|ied)|reject(?:s|ed)?)\s+(?:any\s+)?"
            + r"(?:link|involvement|responsibility|role|claims?|accusations?)"
        ),
        1,
        None,
    ),
]
_ALIASES = {
    "is": "islamic state",
    "isis": "islamic state",
    "isil": "islamic state",
    "daesh": "islamic state",
    "islamic state group": "islamic state",
    "isis-k": "islamic state",
    "kyiv": "ukraine",
    "kiev": "ukraine",
    "kremlin": "russia",
    "moscow": "russia",
    "washington": "united states",
    "us": "united states",
    "u.s.": "united states",
    "usa": "united states",
}
# A word each pattern above cannot match without (same order): most sentences have none of them,
# and the patterns, which may start at any capital, cost most of the time of featurising a body.
_TRIGGERS = [re.compile(t) for t in ("responsibility", "claimed", "blame|accuse|finger", "den(?:y|ies|ied)|reject")]
_ANY_TRIGGER = re.compile("|".join(t.pattern for t in _TRIGGERS))
_NOT_ACTORS = {"it", "he", "she", "they", "this", "that", "police", "officials", "the"}
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")


def normalise_actor(name: str) -> str:
    """One spelling per actor, so "ISIS", "IS" and "the so-called Islamic State group" agree.

    >>> normalise_actor("the so-called Islamic State group"), normalise_actor("Kyiv")
    ('islamic state', 'ukraine')
    """
    name = re.sub(r"^(?:the\s+)?(?:so-called\s+)?", "", name.strip(), flags=re.I).lower().strip(" .'’")
    name = re.sub(r"\s+group$", "", name)
    return _ALIASES.get(name, name)


@dataclass(frozen=True, slots=True)
class Attribution:
    kind: Kind
    actor: str
    speaker: str = ""
    evidence: str = ""

    def summary(self) -> str:
        by = f" (by {self.speaker})" if self.speaker else ""
        return f"{self.kind}: {self.actor}{by}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Attribution:
        return cls(**data)


def attributions(title: str, text: str = "") -> list[Attribution]:
    """All claims, blame and denials in an article, in reading order, without repeats."""
    found: list[Attribution] = []
    if not _ANY_TRIGGER.search(title) and not _ANY_TRIGGER.search(text):
        return found
    for sentence in [title, *_SENTENCE.split(text)]:
        for (kind, pattern, actor_group, speaker_group), trigger in zip(_PATTERNS, _TRIGGERS):
            if not trigger.search(sentence):
                continue
            for match in pattern.finditer(sentence):
                actor = normalise_actor(match.group(actor_group))
                speaker = normalise_actor(match.group(speaker_group)) if speaker_group else ""
                if actor in _NOT_ACTORS or not actor:
                    continue
                item = Attribution(kind, actor, speaker, sentence.strip()[:300])
                if all((f.kind, f.actor, f.speaker) != (item.kind, item.actor, item.speaker) for f in found):
                    found.append(item)
    return found
