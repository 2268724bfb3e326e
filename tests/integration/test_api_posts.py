"""Analysts' post reads against the real PostgreSQL: filters, full-text search (hostile input too), keyset pages,
and CSV/Parquet exports read back and compared with the stored rows."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pyarrow.parquet as pq
import pytest
from sqlalchemy import literal, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import Text

from monitor.store.db import post_sentiment
from tests.integration.api_helpers import api_client, labelled, seed, unique_brand
from tests.integration.trend_helpers import result, settle_keyphrases

pytestmark = pytest.mark.integration

HOSTILE = ["'); drop table post_sentiment--", "&&&", "!!!", "(", ":*", "\"unclosed", "a <-> b", "or", "-",
           "\\", "%", "_", "' OR 1=1 --", "ü" * 200, "x" * 200, "🙂 refund 🙂", "a & | ! b"]


@pytest.fixture(autouse=True)
def _schema(engine):
    """The session's migrated database (the `engine` fixture upgrades it)."""


@pytest.fixture(scope="module")
async def corpus(engine):
    """One brand, 30 posts a minute apart (newest first: index 0 is a minute ago): mixed labels, two sources, two
    languages, searchable words, one long text (full_text), one deleted."""
    brand = unique_brand("analyst")
    now = datetime.now(UTC).replace(microsecond=0)
    made = []
    for i in range(30):
        label = ("negative", "neutral", "positive")[i % 3]
        words = "refund delayed again" if i % 5 == 0 else "lovely weather today"
        text = f"post {i} {words}" + (" padding" * 60 + " needle" if i == 7 else "")
        r = result(f"{brand}-{i:02d}", [brand], now - timedelta(minutes=1 + i), label, text=text)
        made.append(r.model_copy(update={"source": "bluesky" if i % 2 else "mastodon",
                                         "language": "de" if i % 4 == 0 else "en"}))
    await seed(engine, made)
    async with engine.begin() as conn:
        await conn.execute(post_sentiment.update().where(post_sentiment.c.post_id == f"{brand}-29")
                           .values(deleted_at=now))
    await settle_keyphrases(engine)  # the source counts
    return brand


async def stored(engine, brand: str) -> dict[str, dict]:
    ps = post_sentiment.c
    query = select(post_sentiment).where(ps.brands.op("@>")(literal([brand], ARRAY(Text))), ps.deleted_at.is_(None))
    async with engine.connect() as conn:
        return {row["post_id"]: dict(row) for row in (await conn.execute(query)).mappings()}


async def page(client, brand: str, **params) -> dict:
    response = await client.get(f"/api/brands/{brand}/posts/page", params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_filters_select_the_matching_posts(settings, corpus):
    async with api_client(settings) as client:
        every = await page(client, corpus, limit=200)
        negative = await page(client, corpus, label="negative", limit=200)
        german = await page(client, corpus, language="de", limit=200)
        bluesky = await page(client, corpus, source="bluesky", limit=200)
        combined = await page(client, corpus, source="mastodon", label="negative", language="de", limit=200)
        sources = (await client.get(f"/api/brands/{corpus}/sources")).json()
    ids = lambda body: {int(p["post_id"].rsplit("-", 1)[1]) for p in body["posts"]}  # noqa: E731
    assert ids(every) == set(range(29))  # the deleted post never shows
    assert ids(negative) == {i for i in range(29) if i % 3 == 0}
    assert ids(german) == {i for i in range(29) if i % 4 == 0}
    assert {p["language"] for p in german["posts"]} == {"de"}
    assert ids(bluesky) == {i for i in range(29) if i % 2}
    assert {p["source"] for p in bluesky["posts"]} == {"bluesky"}
    assert ids(combined) == {0, 12, 24}
    assert every["next_cursor"] is None and every["brand"] == corpus
    assert sources == [{"source": "mastodon", "posts": 15}, {"source": "bluesky", "posts": 14}]


async def test_full_text_search_uses_web_search_syntax(settings, corpus):
    async with api_client(settings) as client:
        refund = await page(client, corpus, q="refund", limit=200)
        phrase = await page(client, corpus, q='"refund delayed"', limit=200)
        excluded = await page(client, corpus, q="refund -again", limit=200)
        either = await page(client, corpus, q="needle or refund", limit=200)
        long_text = await page(client, corpus, q="needle", limit=200)
        upper = await page(client, corpus, q="REFUND", limit=200)
        blank = await page(client, corpus, q="   ", limit=200)
    ids = lambda body: {int(p["post_id"].rsplit("-", 1)[1]) for p in body["posts"]}  # noqa: E731
    refunds = {i for i in range(29) if i % 5 == 0}
    assert ids(refund) == ids(phrase) == ids(upper) == refunds
    assert ids(excluded) == set()
    assert ids(long_text) == {7}  # a word past the excerpt, in full_text
    assert ids(either) == refunds | {7}
    assert len(blank["posts"]) == 29  # only spaces: no search


async def test_hostile_search_input_gives_results_or_a_4xx_never_a_5xx(settings, corpus, engine):
    async with api_client(settings) as client:
        answers = [await client.get(f"/api/brands/{corpus}/posts/page", params={"q": q}) for q in HOSTILE]
        nul = await client.get(f"/api/brands/{corpus}/posts/page", params={"q": "refund\x00"})
        surrogate = await client.get(f"/api/brands/{corpus}/posts/page?q=%ED%A0%80")
        too_long = await client.get(f"/api/brands/{corpus}/posts/page", params={"q": "x" * 201})
        huge = await client.get(f"/api/brands/{corpus}/posts/page", params={"q": "refund " * 2000})
        export = await client.get(f"/api/brands/{corpus}/posts/export", params={"q": HOSTILE[0]})
    for q, response in zip(HOSTILE, answers, strict=True):
        assert response.status_code == 200, (q, response.text)
        assert isinstance(response.json()["posts"], list)
    for response in (nul, too_long, huge):
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"] == ["query", "q"]
    assert surrogate.status_code < 500  # decoded with a replacement character, or refused
    assert export.status_code == 200 and export.text.startswith("post_id,")
    assert len(await stored(engine, corpus)) == 29  # and the table is still there


async def test_keyset_pages_walk_every_post_once_newest_first(settings, corpus):
    async with api_client(settings) as client:
        pages, cursor = [], None
        while True:
            body = await page(client, corpus, limit=7, **({"cursor": cursor} if cursor else {}))
            pages.append(body["posts"])
            cursor = body["next_cursor"]
            if cursor is None:
                break
        filtered = await page(client, corpus, limit=3, label="positive")
        second = await page(client, corpus, limit=3, label="positive", cursor=filtered["next_cursor"])
        bad = [await client.get(f"/api/brands/{corpus}/posts/page", params={"cursor": token})
               for token in ("nonsense", "e30", "W10", "x" * 401, "WyIyMDI2IiwxXQ")]
    walked = [p["post_id"] for posts in pages for p in posts]
    assert [len(posts) for posts in pages] == [7, 7, 7, 7, 1]
    assert walked == [f"{corpus}-{i:02d}" for i in range(29)]  # newest first, none twice, none missed
    assert [p["label"] for p in filtered["posts"] + second["posts"]] == ["positive"] * 6
    assert {p["post_id"] for p in filtered["posts"]}.isdisjoint(p["post_id"] for p in second["posts"])
    for response in bad:
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"] == ["query", "cursor"]


async def test_windows_are_bounded(settings, corpus):
    now = datetime.now(UTC)
    async with api_client(settings) as client:
        recent = await page(client, corpus, since=(now - timedelta(minutes=10, seconds=30)).isoformat(),
                            until=(now - timedelta(minutes=4, seconds=30)).isoformat())
        too_long = await client.get(f"/api/brands/{corpus}/posts/page", params={
            "since": "2024-01-01T00:00:00Z", "until": "2025-03-01T00:00:00Z"})
        too_long_export = await client.get(f"/api/brands/{corpus}/posts/export", params={
            "since": (now - timedelta(days=401)).isoformat()})
        inverted = await client.get(f"/api/brands/{corpus}/posts/page", params={
            "since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"})
        unknown = await client.get("/api/brands/no-such-brand-zz/posts/page")
        unknown_export = await client.get("/api/brands/no-such-brand-zz/posts/export")
    assert [p["post_id"] for p in recent["posts"]] == [f"{corpus}-{i:02d}" for i in range(4, 10)]
    for response in (too_long, too_long_export, inverted):
        assert response.status_code == 422, response.text
    assert "400 days" in too_long.json()["detail"][0]["msg"]
    assert unknown.status_code == unknown_export.status_code == 404


async def test_csv_export_matches_the_stored_rows(settings, corpus, engine):
    async with api_client(settings) as client:
        response = await client.get(f"/api/brands/{corpus}/posts/export", params={"format": "csv"})
        capped = await client.get(f"/api/brands/{corpus}/posts/export", params={"limit": 5, "label": "neutral"})
        empty = await client.get(f"/api/brands/{corpus}/posts/export", params={"q": "nothingmatches"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith(f'attachment; filename="{corpus}-posts-')
    rows = list(csv.DictReader(io.StringIO(response.text)))
    expected = await stored(engine, corpus)
    assert [r["post_id"] for r in rows] == [f"{corpus}-{i:02d}" for i in range(29)]
    for row in rows:
        db = expected[row["post_id"]]
        assert datetime.fromisoformat(row["created_at"]) == db["created_at"]
        assert (row["label"], row["source"], row["language"]) == (db["label"], db["source"], db["language"])
        assert row["text_excerpt"] == db["text_excerpt"] and row["model_version"] == db["model_version"]
        assert float(row["p_negative"]) == pytest.approx(db["p_negative"])
        assert float(row["confidence"]) == pytest.approx(max(db["p_negative"], db["p_neutral"], db["p_positive"]))
        assert row["language_supported"] == "true" and row["image_ref"] == ""
    assert [r["label"] for r in csv.DictReader(io.StringIO(capped.text))] == ["neutral"] * 5
    assert capped.headers["x-row-cap"] == "5"
    assert empty.text.strip().split(",")[0] == "post_id" and len(empty.text.strip().splitlines()) == 1


async def test_parquet_export_matches_the_stored_rows(settings, corpus, engine):
    async with api_client(settings) as client:
        response = await client.get(f"/api/brands/{corpus}/posts/export",
                                    params={"format": "parquet", "source": "bluesky"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.apache.parquet"
    assert response.headers["content-disposition"].endswith('.parquet"')
    table = pq.read_table(io.BytesIO(response.content))
    expected = {k: v for k, v in (await stored(engine, corpus)).items() if v["source"] == "bluesky"}
    records = table.to_pylist()
    assert [r["post_id"] for r in records] == sorted(expected, key=lambda k: expected[k]["created_at"], reverse=True)
    assert str(table.schema.field("created_at").type) == "timestamp[us, tz=UTC]"
    for record in records:
        db = expected[record["post_id"]]
        for column in ("created_at", "processed_at", "label", "source", "language", "text_excerpt", "polarity",
                       "language_supported", "image_ref"):
            assert record[column] == db[column], column


async def test_trend_export_as_csv_and_parquet(settings, engine):
    brand = unique_brand()
    await seed(engine, labelled(brand, {"negative": 3, "positive": 1}))
    async with api_client(settings) as client:
        as_csv = await client.get(f"/api/brands/{brand}/trends/export", params={"granularity": "hour"})
        as_parquet = await client.get(f"/api/brands/{brand}/trends/export", params={"format": "parquet"})
        series = (await client.get(f"/api/brands/{brand}/trends", params={"granularity": "hour"})).json()
        bad = await client.get(f"/api/brands/{brand}/trends/export", params={"format": "xlsx"})
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in as_csv.headers["content-disposition"]
    [row] = list(csv.DictReader(io.StringIO(as_csv.text)))
    [point] = series["points"]
    assert datetime.fromisoformat(row["bucket_start"]) == datetime.fromisoformat(point["bucket_start"])
    assert (int(row["negative"]), int(row["positive"]), int(row["volume"])) == (3, 1, 4)
    assert float(row["net_sentiment"]) == pytest.approx(point["net_sentiment"])
    [record] = pq.read_table(io.BytesIO(as_parquet.content)).to_pylist()
    assert (record["brand"], record["granularity"], record["volume"]) == (brand, "minute", 4)
    assert bad.status_code == 422
