"""The connectors' protocol-free parts: filters, cursor file, backoff, the acknowledgement order, and turning each
source's events into posts (shapes taken from the sources' public documentation)."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, datetime

import pytest

from connectors.backoff import Backoff
from connectors.bluesky import JetstreamSource
from connectors.cursor import CursorStore
from connectors.feeds import entry_key
from connectors.filters import PostFilter, parse_terms
from connectors.mastodon import MastodonSource, status_order
from connectors.runner import _Acknowledgements
from connectors.text import html_to_text, post_id
from schemas import Post, PostDeletion

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def post(text: str, lang: str | None = "en") -> Post:
    return Post(post_id="p", created_at=NOW, text=text, lang=lang)


def test_terms_parse_from_commas_and_repeats():
    assert parse_terms(["Acme, #acme", "acme phone,,"]) == ("acme", "#acme", "acme phone")
    assert parse_terms(None) == ()


@pytest.mark.parametrize(("text", "kept"), [
    ("I love ACME's new phone", ["acme"]),
    ("acmeville is a town", None),
    ("deal at #Acme today", ["#acme"]),
    ("the acme phone broke", ["acme phone"]),  # the longest term wins where terms overlap
    ("nothing here", None),
])
def test_track_matches_whole_words_phrases_and_hashtags(text, kept):
    matched = PostFilter(track=("acme", "#acme", "acme phone")).matches(post(text))
    assert (sorted(matched) if matched else matched) == (sorted(kept) if kept else kept)


def test_hashtags_from_the_source_match_without_the_text():
    assert PostFilter(track=("#acme",)).matches(post("look at this"), frozenset({"acme"})) == ["#acme"]


def test_languages_drop_other_and_unlabelled_posts():
    wanted = PostFilter(languages=frozenset({"de"}))
    assert wanted.matches(post("hallo", "de-AT")) == []
    assert wanted.matches(post("hello", "en")) is None
    assert wanted.matches(post("hm", None)) is None


def test_apply_adds_matches_to_keywords_and_tags_brands():
    kept = PostFilter(track=("acme",)).apply(post("acme rocks"), brands=("acme-brand",))
    assert (kept.keywords, kept.brands) == (["acme"], ["acme-brand"])
    assert PostFilter().apply(post("anything")) == post("anything")


def test_cursor_round_trips_and_replaces_atomically(tmp_path):
    store = CursorStore(tmp_path / "state" / "c.json")
    assert store.load() is None
    store.save({"time_us": 1})
    store.save({"time_us": 2})
    assert store.load() == {"time_us": 2}
    assert [p.name for p in (tmp_path / "state").iterdir()] == ["c.json"]  # no temporary file left behind
    (tmp_path / "state" / "c.json").write_text("{half")
    with pytest.raises(RuntimeError, match="not JSON"):
        store.load()


def test_backoff_grows_with_full_jitter_and_resets():
    backoff = Backoff(0.5, 8.0, random.Random(1))
    waits = [backoff.next() for _ in range(10)]
    assert all(0 <= w <= min(8.0, 0.5 * 2 ** i) for i, w in enumerate(waits))
    assert max(waits[5:]) > 2.0
    backoff.reset()
    assert backoff.next() <= 0.5


async def test_the_cursor_advances_only_over_acknowledged_records():
    acks = _Acknowledgements()
    loop = asyncio.get_running_loop()
    first, second = loop.create_future(), loop.create_future()
    acks.add(first, {"n": 1})
    acks.add(None, {"n": 2})
    acks.add(None, {"n": 3})  # skipped records share one entry
    acks.add(second, {"n": 4})
    second.set_result(None)
    acks.advance()
    assert acks.acknowledged is None  # the second is acked, but the first is not
    first.set_result(None)
    acks.advance()
    assert (acks.acknowledged, acks.in_flight) == ({"n": 4}, 0)
    failed = loop.create_future()
    acks.add(failed, {"n": 5})
    failed.set_exception(RuntimeError("broker said no"))
    with pytest.raises(RuntimeError):
        acks.advance()
    assert acks.acknowledged == {"n": 4}


def jetstream(kind="commit", **commit) -> str:
    event = {"did": "did:plc:abc", "time_us": 1_725_911_162_329_308, "kind": kind}
    if kind == "commit":
        event["commit"] = {"rev": "r", "operation": "create", "collection": "app.bsky.feed.post", "rkey": "3l3q",
                           "cid": "bafy", **commit}
    return json.dumps(event)


def test_jetstream_post_becomes_a_post_with_image_url_and_hashtags():
    record = {"$type": "app.bsky.feed.post", "text": "new #Acme phone", "createdAt": "2026-06-01T10:00:00.000Z",
              "langs": ["en"], "facets": [{"features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "Acme"}]}],
              "embed": {"$type": "app.bsky.embed.images", "images": [{"alt": "", "image": {
                  "$type": "blob", "ref": {"$link": "bafkimg"}, "mimeType": "image/jpeg", "size": 10}}]}}
    source = JetstreamSource("ws://localhost:1", image_cdn="http://cdn.test")
    got, time_us = source.record(jetstream(record=record))
    assert time_us == 1_725_911_162_329_308 and got.offset == {"time_us": time_us}
    assert got.value.post_id == "at://did:plc:abc/app.bsky.feed.post/3l3q"
    assert str(got.value.image_url) == "http://cdn.test/img/feed_fullsize/plain/did:plc:abc/bafkimg@jpeg"
    assert (got.value.lang, got.hashtags, got.value.created_at) == ("en", frozenset({"acme"}),
                                                                    datetime(2026, 6, 1, 10, tzinfo=UTC))


def test_jetstream_delete_other_kinds_and_garbage():
    source = JetstreamSource()
    deleted, _ = source.record(jetstream(operation="delete"))
    assert isinstance(deleted.value, PostDeletion) and deleted.value.post_id.endswith("/3l3q")
    identity, _ = source.record(jetstream(kind="identity"))
    assert identity.value is None and identity.offset is not None and identity.malformed is None
    garbage, time_us = source.record("{nope")
    assert garbage.malformed and time_us is None
    broken, _ = source.record(jetstream(record="not an object"))
    assert broken.malformed and broken.offset is not None


def test_mastodon_status_text_image_language_and_delete():
    source = MastodonSource("https://mastodon.test")
    status = {"id": "1100", "created_at": "2026-06-01T10:00:00.000Z", "language": "de", "spoiler_text": "",
              "content": "<p>Neues <a href=\"https://m.test/tags/acme\">#<span>acme</span></a> Telefon</p><p>super"
                         "&amp;toll</p>", "tags": [{"name": "Acme", "url": "u"}], "reblog": None,
              "media_attachments": [{"type": "image", "url": "https://f/full.jpg", "preview_url": "https://f/s.jpg"}]}
    got = source.record("update", json.dumps(status))
    assert got.value.text == "Neues #acme Telefon\nsuper&toll"
    assert (got.value.lang, str(got.value.image_url), got.hashtags) == ("de", "https://f/s.jpg", frozenset({"acme"}))
    assert got.value.post_id == "https://mastodon.test/api/v1/statuses/1100" and got.offset == {"last_id": "1100"}
    assert source.record("update", json.dumps(status)) is None  # not newer than what was given
    deleted = source.record("delete", "1100")
    assert deleted.value.post_id == got.value.post_id
    assert source.record("update", "{bad").malformed
    assert source.record("notification", "{}") is None


def test_mastodon_ids_order_by_length_then_text():
    assert sorted(["99", "100", "1000", "101"], key=status_order) == ["99", "100", "101", "1000"]


def test_feed_entry_keys_are_stable_and_qualified():
    assert entry_key("https://f/rss", {"id": "urn:uuid:1"}) == "urn:uuid:1"
    assert entry_key("https://f/rss", {"id": "42"}) == "https://f/rss#42"
    assert entry_key("https://f/rss", {"link": "https://f/a"}) == "https://f/a"
    assert entry_key("u", {"title": "t"}) == entry_key("u", {"title": "t"})


def test_text_helpers():
    assert html_to_text("<p>a<br>b</p><p>c &lt;3</p>") == "a\nb\nc <3"
    assert post_id("x" * 128) == "x" * 128
    assert post_id("x" * 129).startswith("sha256:") and len(post_id("x" * 129)) == 71
