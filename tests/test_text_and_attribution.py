from models.attribution import attributions
from models.text import content_terms, entities


def test_terms_drop_urls_stopwords_and_merge_hashtags():
    terms = content_terms("Floods in #Manila: the river rises http://t.co/abc Manila floods")
    assert terms == {"flood": 2, "manila": 2, "river": 1, "rise": 1}


def test_entities_ignore_sentence_initial_capitals_but_keep_names():
    found = entities("Mourners gather in Moscow", "Flowers were laid at Crocus City Hall. Putin spoke.")
    assert {"moscow", "crocus city hall"} <= found
    assert "mourner" not in found and "flower" not in found


def test_title_case_headline_names_confirmed_by_body():
    found = entities("Neil Young Announces Launch Of PonoMusic", "The service from Neil Young streams music.")
    assert "neil young" in found and "launch" not in found


def test_a_link_before_a_name_does_not_break_it():
    plain = entities("", "Helicopter crash at the Clutha Bar in Glasgow tonight")
    assert entities("", "Helicopter crash http://t.co/abcdefghij at the Clutha Bar in Glasgow tonight") == plain
    assert plain == {"clutha bar", "glasgow"}


def test_multi_word_names_stay_whole():
    assert entities("Gunmen kill 2 at Kansas City parade") == {"kansas city"}
    assert entities("Mourners at Crocus City Hall", "Flowers at Crocus City Hall.") == {"crocus city hall"}


def test_seed_attributions_claim_blame_denial():
    text = (
        "Islamic State claimed responsibility for the attack in a statement. "
        "Putin pointed the finger of blame at Ukraine. Ukraine has vehemently denied any link to the attack."
    )
    got = {(a.kind, a.actor, a.speaker) for a in attributions("Moscow attack", text)}
    assert got == {("claim", "islamic state", ""), ("blame", "ukraine", "putin"), ("denial", "ukraine", "")}


def test_no_attribution_in_plain_news():
    assert attributions("Bank of Japan ends negative rates", "The central bank raised its policy rate.") == []


def test_every_attribution_pattern_is_found_in_a_body_among_unrelated_sentences():
    """Sentences are only tried against a pattern when they hold its trigger word: none may be lost."""
    filler = "Officials gave no figure. Roads in the City Centre stayed closed on Monday. "
    body = (
        filler
        + "The bombing was claimed by Al Shabaab. "
        + filler
        + "Hamas accused Israel of the strike. Moscow rejected claims of involvement. "
        + "The Taliban took full responsibility."
    )
    got = {(a.kind, a.actor, a.speaker) for a in attributions("Blast hits market", body)}
    assert got == {
        ("claim", "al shabaab", ""),
        ("blame", "israel", "hamas"),
        ("denial", "russia", ""),
        ("claim", "taliban", ""),
    }
    assert attributions("Blast hits market", filler * 3) == []
