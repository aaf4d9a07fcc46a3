import json

import pytest

from models.article import MAX_TEXT_CHARS, ArticleError, parse_article

BASE = {"id": "a1", "title": "Quake hits Chile", "published_at": "2024-03-22T18:00:00+01:00"}


def test_valid_article_normalises_time_to_utc_and_keeps_unknown_fields():
    a = parse_article({**BASE, "body": "Strong quake.", "section": "world"})
    assert a.published_at.isoformat() == "2024-03-22T17:00:00+00:00"
    assert a.text == "Strong quake."  # `body` is accepted for `text`
    assert a.model_extra == {"section": "world"}


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b"\xff\xfe not utf8", "not UTF-8"),
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (json.dumps({"title": "x", "published_at": "2024-01-01"}).encode(), "missing field 'id'"),
        (json.dumps({**BASE, "published_at": "yesterday"}).encode(), "field 'published_at'"),
        (json.dumps({**BASE, "title": 42}).encode(), "field 'title': Value error, must be a string"),
        (json.dumps({**BASE, "title": "   "}).encode(), "field 'title'"),
    ],
)
def test_invalid_input_gets_a_reason(raw: bytes, reason: str):
    with pytest.raises(ArticleError) as err:
        parse_article(raw)
    assert reason in err.value.reason


def test_oversized_text_is_truncated_with_a_flag_not_rejected():
    a = parse_article({**BASE, "text": "x" * (MAX_TEXT_CHARS * 3)})
    assert a.truncated and len(a.text) == MAX_TEXT_CHARS


def test_nul_bytes_are_removed():
    assert parse_article({**BASE, "title": "Quake\x00 hits"}).title == "Quake hits"
