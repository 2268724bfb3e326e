"""Tracked brands: the CLI manages them, and the sink applies a change to the very next batch."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from monitor.sink.writer import write_results
from monitor.store.brands import BrandRuleCache, TrackedBrand, add_brand, get_brand, list_brands, remove_brand
from monitor.store.db import post_sentiment
from monitor.store.trends import read_trends
from tests.integration.cli_helpers import monitor
from tests.integration.trend_helpers import result

pytestmark = pytest.mark.integration
T0 = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)


def test_brands_cli_add_list_remove(stack, engine):  # engine: the schema is migrated
    added = monitor(stack, "brands", "add", "Quuxly", "--keyword", "quux phone", "--alias", "Quuxly Inc",
                    "--hashtag", "#QuuxLove", "--handle", "@quuxly_help")
    assert added.returncode == 0, added.stderr
    assert "tracking quuxly" in added.stdout
    assert monitor(stack, "brands", "add", "quuxly", "--keyword", "quuxpad").returncode == 0  # adds, keeps the rest
    listed = monitor(stack, "brands", "list", "--format", "json")
    (brand,) = [b for b in json.loads(listed.stdout) if b["name"] == "quuxly"]
    assert brand["keywords"] == ["quux phone", "quuxpad"]
    assert (brand["aliases"], brand["hashtags"], brand["handles"]) == (["quuxly inc"], ["quuxlove"], ["quuxly_help"])
    table = monitor(stack, "brands", "list")
    assert "#quuxlove" in table.stdout and "@quuxly_help" in table.stdout

    assert monitor(stack, "brands", "remove", "quuxly").returncode == 0
    again = monitor(stack, "brands", "remove", "quuxly")
    assert again.returncode != 0 and "not tracked" in again.stderr


async def test_replace_overwrites_terms(engine):
    await add_brand(engine, TrackedBrand(name="replacebrand", keywords=["a1", "a2"]))
    saved = await add_brand(engine, TrackedBrand(name="replacebrand", hashtags=["b1"]), replace=True)
    assert (saved.keywords, saved.hashtags) == ([], ["b1"])
    assert await remove_brand(engine, "replacebrand")
    assert await get_brand(engine, "replacebrand") is None


async def test_rule_added_while_the_sink_runs_applies_to_later_posts(engine):
    rules = BrandRuleCache()  # the sink keeps one of these for its lifetime
    text = "Just tried the Zephyrco blender!"
    await write_results(engine, [result("rule-1", [], T0, "positive", text=text)], rules)
    await add_brand(engine, TrackedBrand(name="zephyrco", hashtags=["zephyrlove"]))
    try:
        await write_results(engine, [result("rule-2", [], T0, "positive", text=text),
                                     result("rule-3", ["tagged"], T0, "negative", text="#ZephyrLove"),
                                     result("rule-4", [], T0, "negative", text="zephyrcoville is a town"),
                                     result("rule-5", [], T0, "neutral", text="x", keywords=["zephyrco"])], rules)
        await write_results(engine, [result("rule-1", [], T0, "positive", text=text)], rules)  # redelivered: stays
    finally:
        await remove_brand(engine, "zephyrco")
    await write_results(engine, [result("rule-6", [], T0, "positive", text=text)], rules)  # removed: no longer

    async with engine.connect() as conn:
        rows = await conn.execute(select(post_sentiment.c.post_id, post_sentiment.c.brands)
                                  .where(post_sentiment.c.post_id.like("rule-%")))
        brands = {post_id: stored for post_id, stored in rows}
    assert brands == {"rule-1": [], "rule-2": ["zephyrco"], "rule-3": ["tagged", "zephyrco"], "rule-4": [],
                      "rule-5": ["zephyrco"], "rule-6": []}
    (bucket,) = await read_trends(engine, "zephyrco", "day")
    assert (bucket.negative, bucket.neutral, bucket.positive) == (1, 1, 1)


async def test_no_test_leaves_tracked_brands_behind(engine):
    """Other tests share this database: a leftover rule would change their counts."""
    assert [b.name for b in await list_brands(engine) if b.name in {"quuxly", "zephyrco", "replacebrand"}] == []
