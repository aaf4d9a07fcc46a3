"""The static embedder's own tokenising and pooling must give model2vec's vectors exactly: the join
model was trained on those, and a changed last bit can flip a borderline decision."""

import json

import numpy as np

from models.embedders.base import normalise_rows
from tests.conftest import SAMPLE, SEED_STREAM

AWKWARD = [
    "",
    "   ",
    "!!! ... ???",
    "x" * 150,  # longer than WordPiece's longest word: [UNK], which model2vec drops
    "Crocus City Hall — Москва, 22 March",  # Cyrillic: the tokeniser's path
    "tab\there\x0bcontrol",  # a control character the normaliser deletes
    "Café naïve résumé",  # accents the normaliser strips
    "don't_stop 3.5% #Moscow @user http://t.co/x",
    "Price £5 or €6 ©2024",  # symbols that stay inside a word
    "Quotes ‘single’ “double” – dash — dash… «guillemets» • bullet\u00a0nbsp",
    "A literal [UNK] and [CLS] in text",  # special tokens the tokeniser matches as such
    "word " * 1000,  # more than model2vec's character and token limits
]


def _texts() -> list[str]:
    texts = list(AWKWARD)
    for path in (SAMPLE, SEED_STREAM):
        for line in path.read_text().splitlines():
            a = json.loads(line)
            texts.append(f"{a['title']}\n{a.get('text', '')}".strip())
    return texts


def test_static_vectors_are_model2vecs_to_the_bit(static):
    texts = _texts()
    model = static._model
    for i in range(0, len(texts), 64):
        batch = texts[i : i + 64]
        expected = normalise_rows(model.encode(batch))
        got = static.encode(batch)
        assert got.dtype == np.float32 and got.shape == expected.shape
        assert np.array_equal(got, expected), [batch[j][:60] for j in np.flatnonzero((got != expected).any(axis=1))]


def test_static_token_ids_are_the_tokenisers_whatever_the_word_cache_holds(static):
    texts = _texts()
    cut = [t[: static._max_chars] for t in texts]
    expected = static._model.tokenize(cut)
    static._pieces.clear()
    assert static.token_ids(texts) == expected  # every word new
    assert static.token_ids(texts) == expected  # every word remembered
    static._pieces.update({"moscow": [5]})  # a stale entry would show: the cache is really read
    assert static.token_ids(["Moscow"]) == [[5]]
    static._pieces.clear()
