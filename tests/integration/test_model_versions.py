"""Model versions in the store, against real PostgreSQL: buckets per model, `monitor recompute` into a model's own
series without touching the live counts, deletions out of every version, and a challenger's shadow agreement."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image

from monitor.recompute.runner import recompute
from monitor.sink.writer import write_results
from monitor.store.deletions import write_deletions
from monitor.store.shadow import compare_shadow, write_shadow_results
from monitor.store.trends import read_trends
from schemas import Label, PostDeletion
from tests.integration.api_helpers import api_client, labelled, seed, unique_brand
from tests.integration.cli_helpers import monitor
from tests.integration.trend_helpers import result
from workers.inference.model import SentimentModel

pytestmark = pytest.mark.integration
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
T1 = datetime(2026, 6, 3, 12, 0, tzinfo=UTC)


def versioned(post_id: str, brand: str, label: str, model: str, minutes: int = 0, text: str = "fine",
              at: datetime = T0):
    return result(post_id, [brand], at + timedelta(minutes=minutes), label, text=text).model_copy(
        update={"model_version": model})


@pytest.fixture(scope="module")
def challenger() -> SentimentModel:
    return SentimentModel.load("untrained", "cpu")


def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (48, 32), (200, 30, 30)).save(buffer, "JPEG")
    return buffer.getvalue()


async def test_trend_buckets_carry_the_model_and_a_version_can_be_read_alone(engine):
    await write_results(engine, [versioned("mv-1", "mvbrand", "positive", "m-a@1"),
                                 versioned("mv-2", "mvbrand", "negative", "m-b@2"),
                                 versioned("mv-3", "mvbrand", "positive", "m-b@2")])
    [live] = await read_trends(engine, "mvbrand", "hour")
    assert (live.positive, live.negative) == (2, 1)  # the live figures: every model's posts, once
    [b_only] = await read_trends(engine, "mvbrand", "hour", model="m-b@2")
    assert (b_only.positive, b_only.negative) == (1, 1)
    assert await read_trends(engine, "mvbrand", "hour", model="nobody@0") == []


async def test_recompute_fills_a_models_series_once_and_leaves_live_counts_alone(engine, challenger):
    version, at = challenger.version, T1
    posts = [versioned(f"rc-{i}", "rcbrand", "positive", "live@1", minutes=i, text=f"post number {i} " * 30, at=at)
             for i in range(40)]
    posts.append(versioned("rc-mine", "rcbrand", "negative", version, minutes=5, at=at))  # scored live by it
    posts.append(versioned("rc-late", "rcbrand", "neutral", "live@1", minutes=600, at=at))  # outside the range
    await write_results(engine, posts)
    image_post = versioned("rc-img", "rcbrand", "positive", "live@1", minutes=7, text="", at=at)
    await write_results(engine, [image_post.model_copy(update={"thumbnail": jpeg(), "image_ref": "sha256:x"})])
    live_before = await read_trends(engine, "rcbrand", "day")

    report = await recompute(engine, challenger, at, at + timedelta(hours=2), batch_size=16)
    assert report.candidates == report.rescored == 41  # 40 text posts and the image-only one; not rc-mine
    assert report.from_thumbnail == 1 and report.from_excerpt == 0
    assert await read_trends(engine, "rcbrand", "day") == live_before  # live counts untouched
    [series] = await read_trends(engine, "rcbrand", "day", model=version)
    assert series.volume == 42  # 41 re-scored + the one it scored live, each once

    again = await recompute(engine, challenger, at, at + timedelta(hours=2))
    assert (again.candidates, again.rescored) == (0, 0)  # a repeated run counts nothing twice

    await write_deletions(engine, [PostDeletion(post_id="rc-3", deleted_at=at, source="test")])
    [series] = await read_trends(engine, "rcbrand", "day", model=version)
    assert (series.volume, series.removed) == (41, 1)  # deleted from the re-scored series too
    [live] = await read_trends(engine, "rcbrand", "day")
    assert live.volume == live_before[0].volume - 1


def test_recompute_command(stack, engine):
    done = monitor(stack, "recompute", "--model", "untrained", "--since", "2026-06-01T00:00:00",
                   "--until", "2026-06-01T00:00:01")
    assert done.returncode == 0, done.stderr
    assert "re-scored 0 of 0 posts" in done.stdout and "monitor trends --model" in done.stdout
    refused = monitor(stack, "recompute", "--model", "/no/such/checkpoint.pt", "--since", "2026-06-01")
    assert refused.returncode != 0 and "cannot load --model" in refused.stderr


async def test_shadow_results_are_compared_with_the_champions(engine):
    champion = [versioned(f"sh-{i}", "shbrand", label, "champ@1", minutes=i)
                for i, label in enumerate(["positive", "positive", "negative", "neutral"])]
    await write_results(engine, champion)
    shadow = [versioned(f"sh-{i}", "shbrand", label, "chall@2", minutes=i)
              for i, label in enumerate(["positive", "negative", "negative", "neutral"])]
    shadow.append(versioned("sh-waiting", "shbrand", "positive", "chall@2"))  # no champion result yet
    assert await write_shadow_results(engine, shadow + shadow[:2]) == 5  # redeliveries change nothing
    assert await write_shadow_results(engine, shadow) == 0

    [comparison] = await compare_shadow(engine, challenger="chall@2")
    assert comparison.compared == 4 and comparison.waiting == 1
    assert comparison.agreement == pytest.approx(0.75)
    assert comparison.champions == {"champ@1": 4}
    assert comparison.confusion["positive"] == {"negative": 1, "neutral": 0, "positive": 1}
    assert [b.volume for b in await read_trends(engine, "shbrand", "hour", model="chall@2")] == []  # never counted


async def test_api_lists_models_reads_one_models_series_and_shows_shadow_agreement(settings, engine):
    brand = unique_brand()
    posts = labelled(brand, {"negative": 2, "positive": 3})
    champion = [p.model_copy(update={"model_version": "api-champ@1" if i < 4 else "api-champ@0"})
                for i, p in enumerate(posts)]
    await seed(engine, champion)
    await write_shadow_results(engine, [p.model_copy(update={"model_version": "api-chall@9", "label": Label.POSITIVE})
                                        for p in champion])
    async with api_client(settings) as client:
        listed = {m["model_version"]: m for m in (await client.get("/api/models")).json()}
        one = (await client.get(f"/api/brands/{brand}/trends", params={"model": "api-champ@1"})).json()
        live = (await client.get(f"/api/brands/{brand}/trends")).json()
        shadow = (await client.get("/api/models/shadow", params={"challenger": "api-chall@9"})).json()
        too_long = await client.get(f"/api/brands/{brand}/trends", params={"model": "m" * 65})
    assert listed["api-champ@1"]["live_counts"] == 4 and listed["api-champ@0"]["live_counts"] == 1  # one brand each
    assert listed["api-champ@1"]["last_day"] is not None and listed["api-champ@1"]["rescored_counts"] == 0
    assert one["model"] == "api-champ@1" and sum(p["volume"] for p in one["points"]) == 4
    assert sum(p["volume"] for p in live["points"]) == 5 and live["model"] is None
    [agreement] = shadow
    assert agreement["compared"] == 5 and agreement["agreement"] == pytest.approx(3 / 5)
    assert agreement["confusion"]["negative"]["positive"] == 2
    assert agreement["champions"] == {"api-champ@1": 4, "api-champ@0": 1}
    assert too_long.status_code == 422
