"""Brand matching: whole words, hashtags and mentions, case-insensitive, several brands per post."""

import pytest

from monitor.store.brand_rules import BrandMatcher, BrandRule, normalise_term
from monitor.store.brands import TrackedBrand

ACME = BrandRule("acme", keywords=("road runner",), aliases=("acme corp",), hashtags=("acmelove",),
                 handles=("acme_help",))


@pytest.mark.parametrize("text", ["Acme!", "I love ACME.", "#acme rocks", "thanks @acme", "(acme)", "acme",
                                  "bought from Acme   Corp", "beep beep, Road Runner", "#AcmeLove", "cc @Acme_Help"])
def test_matches(text):
    assert BrandMatcher([ACME]).match(text) == {"acme"}


@pytest.mark.parametrize("text", ["acmeville", "xacme", "acme_help without the at", "acmecorp", "roadrunner",
                                  "#acmeloves", "email me at x@acme_helpdesk", "ac me"])
def test_does_not_match(text):
    assert BrandMatcher([ACME]).match(text) == set()


def test_keywords_of_the_post_count_too():
    assert BrandMatcher([ACME]).match("nothing here", keywords=["acme"]) == {"acme"}
    assert BrandMatcher([ACME]).match("nothing here", keywords=["acmeville"]) == set()


def test_one_post_counts_for_several_brands_and_keeps_producer_tags():
    matcher = BrandMatcher([ACME, BrandRule("globex", hashtags=("globexfan",))])
    assert matcher.brands_for("Acme vs #GlobexFan", [], ["Initech"]) == ["acme", "globex", "initech"]
    assert matcher.brands_for("no brands", [], ["acme"]) == ["acme"]


def test_regex_characters_in_terms_are_literal():
    matcher = BrandMatcher([BrandRule("at&t"), BrandRule("c++", keywords=("a.b",))])
    assert matcher.match("switching from AT&T today") == {"at&t"}
    assert matcher.match("axb") == set()
    assert matcher.match("a.b is out") == {"c++"}


def test_unicode_word_boundaries():
    matcher = BrandMatcher([BrandRule("café")])
    assert matcher.match("Café!") == {"café"}
    assert matcher.match("cafés") == set()


def test_terms_are_normalised():
    brand = TrackedBrand(name="  Acme ", hashtags=["#AcmeLove", "acmelove"], handles=["@Acme_Help"],
                         aliases=["Acme   Corp"])
    assert (brand.name, brand.hashtags, brand.handles, brand.aliases) == ("acme", ["acmelove"], ["acme_help"],
                                                                          ["acme corp"])
    assert normalise_term("#x", "#") == "x"
