"""The keyphrase tables against real PostgreSQL: each post's terms counted once per brand, hour, day and label,
out again when the post is deleted, and a term that rises against the window before shows it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, func, select, text

from monitor.sink.writer import write_results
from monitor.store.db import keyphrase_bucket, keyphrase_post, monitor_state
from monitor.store.deletions import write_deletions
from monitor.store.keyphrases import HORIZON_STATE, count_keyphrases, source_volumes, top_keyphrases
from monitor.store.terms import post_terms
from schemas import PostDeletion
from tests.integration.api_helpers import api_client, labelled, seed, unique_brand
from tests.integration.trend_helpers import result, settle_keyphrases

pytestmark = pytest.mark.integration
DAY = datetime(2026, 7, 1, tzinfo=UTC)


def post(post_id: str, brand: str, label: str, text_: str, hours: float):
    return result(post_id, [brand], DAY + timedelta(hours=hours), label, text=text_)


async def counts(engine, brand: str, granularity: str = "day") -> dict:
    kb = keyphrase_bucket.c
    async with engine.connect() as conn:
        rows = await conn.execute(select(kb.label, kb.phrase, func.sum(kb.posts).label("posts"))
                                  .where(kb.brand == brand, kb.granularity == granularity)
                                  .group_by(kb.label, kb.phrase).having(func.sum(kb.posts) != 0))
        return {(r.label, r.phrase): r.posts for r in rows}


@pytest.fixture
async def clean(engine):
    async with engine.begin() as conn:  # the pass reads every stored post: start from a known horizon
        await conn.execute(delete(monitor_state).where(monitor_state.c.key == HORIZON_STATE))
    await settle_keyphrases(engine)


def test_terms_leave_out_stop_words_and_the_brand():
    terms = post_terms("The Acme battery caught fire! Battery fire at acme store", ["acme"])
    assert terms[:3] == ["battery", "caught", "fire"]
    assert "battery fire" in terms and not any("acme" in t for t in terms) and "the" not in terms
    assert len(terms) == len(set(terms))


async def test_each_post_counts_once_and_deletions_take_it_out(engine, clean):
    brand = "kpbrand"
    posts = [post("kp-1", brand, "negative", "battery fire again", 1),
             post("kp-2", brand, "negative", "battery fire at the store", 2),
             post("kp-3", brand, "positive", "great battery life", 3)]
    await write_results(engine, posts)
    await settle_keyphrases(engine)
    await write_results(engine, posts)  # redelivered: not stored again, not counted again
    await settle_keyphrases(engine)
    day = await counts(engine, brand)
    assert day[("negative", "battery fire")] == 2 and day[("negative", "battery")] == 2
    assert day[("positive", "battery")] == 1 and day[("positive", "battery life")] == 1
    assert (await counts(engine, brand, "hour"))[("negative", "fire")] == 2  # summed over the two hours

    await write_deletions(engine, [PostDeletion(post_id="kp-2", deleted_at=DAY, source="test")])
    await settle_keyphrases(engine)
    day = await counts(engine, brand)
    assert day[("negative", "battery fire")] == 1 and ("negative", "store") not in day
    async with engine.connect() as conn:
        assert (await conn.scalar(select(keyphrase_post.c.post_id).where(keyphrase_post.c.post_id == "kp-2"))) is None


async def test_a_transaction_still_running_is_counted_by_a_later_pass(engine, clean):
    async with engine.connect() as slow:
        await slow.execute(text("BEGIN"))
        await slow.execute(text("SELECT 1"))  # a transaction open before the post below is written
        await write_results(engine, [post("kp-late", "kplate", "neutral", "opening hours changed", 5)])
        assert (await count_keyphrases(engine)).counted == 0  # the horizon stops at the open transaction
        await slow.execute(text("ROLLBACK"))
    await settle_keyphrases(engine)
    assert (await counts(engine, "kplate"))[("neutral", "opening hours")] == 1


async def test_top_keyphrases_per_label_with_what_is_rising(engine, clean):
    brand = "kprise"
    before = [post(f"kr-b{i}", brand, "negative", "slow delivery", -20 + i) for i in range(4)]
    now = [post(f"kr-n{i}", brand, "negative", "slow delivery" if i < 2 else "battery recall", 1 + i)
           for i in range(6)]
    await write_results(engine, before + now)
    await settle_keyphrases(engine)
    found = await top_keyphrases(engine, brand, "hour", DAY, DAY + timedelta(days=1), label="negative", top=3)
    by_phrase = {k.phrase: k for k in found}
    assert list(by_phrase)[0] in {"battery recall", "battery", "recall"}  # 4 posts, ahead of delivery's 2
    recall = by_phrase[list(by_phrase)[0]]
    assert recall.posts == 4 and recall.previous_posts == 0 and recall.share == pytest.approx(4 / 6)
    assert recall.rising is not None and recall.rising > 0


async def test_keyphrase_endpoint(settings, engine, clean):
    brand = unique_brand()
    await seed(engine, labelled(brand, {"negative": 3, "positive": 1}))  # "<label> post <i> about <brand>"
    await settle_keyphrases(engine)
    async with api_client(settings) as client:
        listed = (await client.get(f"/api/brands/{brand}/keyphrases")).json()
        negative = (await client.get(f"/api/brands/{brand}/keyphrases",
                                     params={"label": "negative", "granularity": "day", "top": 2})).json()
        unknown = await client.get("/api/brands/no-such-brand-kp/keyphrases")
        too_long = await client.get(f"/api/brands/{brand}/keyphrases",
                                    params={"since": "2020-01-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"})
    assert listed["granularity"] == "hour" and {p["label"] for p in listed["phrases"]} <= {"negative", "positive"}
    assert listed["phrases"] and all(p["posts"] >= 1 for p in listed["phrases"])
    assert len(negative["phrases"]) <= 2 and {p["label"] for p in negative["phrases"]} == {"negative"}
    assert negative["phrases"][0]["posts"] == 3 and negative["phrases"][0]["share"] == pytest.approx(1.0)
    assert unknown.status_code == 404 and too_long.status_code == 422


async def test_sources_are_counted_per_bucket_and_deletions_leave(engine, clean):
    brand = "kpsource"
    posts = [post(f"ks-{i}", brand, "neutral", "opening hours", i).model_copy(
        update={"source": "bluesky" if i % 3 else "rss"}) for i in range(6)]
    await write_results(engine, posts)
    await settle_keyphrases(engine)
    until = DAY + timedelta(days=1)
    assert await source_volumes(engine, brand, DAY, until) == [{"source": "bluesky", "posts": 4},
                                                               {"source": "rss", "posts": 2}]
    assert await source_volumes(engine, brand, DAY, DAY + timedelta(days=40)) == [  # day buckets for long windows
        {"source": "bluesky", "posts": 4}, {"source": "rss", "posts": 2}]
    assert await source_volumes(engine, brand, DAY + timedelta(hours=3), until) == [
        {"source": "bluesky", "posts": 2}, {"source": "rss", "posts": 1}]  # the hours from 03:00
    await write_deletions(engine, [PostDeletion(post_id="ks-0", deleted_at=DAY, source="test")])
    await settle_keyphrases(engine)
    assert await source_volumes(engine, brand, DAY, until) == [{"source": "bluesky", "posts": 4},
                                                               {"source": "rss", "posts": 1}]
