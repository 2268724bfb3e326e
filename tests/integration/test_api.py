"""The HTTP API against the real embedded PostgreSQL and Redis: series, comparison, drill-down, health, headers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.api_helpers import api_client, labelled, seed, unique_brand

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _schema(engine):
    """The session's migrated database (the `engine` fixture upgrades it)."""


@pytest.fixture(scope="module")
async def brands(engine):
    """Two fresh brands: `a` with 6 neg / 2 neu / 4 pos, `b` with 1 neg / 3 pos (one with an image URL)."""
    a, b = unique_brand(), unique_brand()
    await seed(engine, labelled(a, {"negative": 6, "neutral": 2, "positive": 4}, image_ref="sha256:" + "ab" * 32))
    await seed(engine, labelled(b, {"negative": 1, "positive": 3}, image_ref="https://img.example/p.jpg"))
    return a, b


async def test_brand_list_includes_brands_with_trends(settings, brands):
    async with api_client(settings) as client:
        response = await client.get("/api/brands")
    assert response.status_code == 200
    listed = {row["name"]: row for row in response.json()}
    assert listed[brands[0]]["volume"] == 12 and listed[brands[0]]["tracked"] is False
    assert listed[brands[1]]["volume"] == 4


async def test_brand_volumes_over_a_window(settings, brands):
    """Volumes over the UTC days a window touches, so the share-of-voice ranking is the range's."""
    now = datetime.now(UTC)
    async with api_client(settings) as client:
        recent = {r["name"]: r["volume"] for r in (await client.get(
            "/api/brands", params={"since": (now - timedelta(hours=1)).isoformat()})).json()}
        long_ago = {r["name"]: r["volume"] for r in (await client.get(
            "/api/brands", params={"until": (now - timedelta(days=3)).isoformat()})).json()}
        inverted = await client.get("/api/brands", params={"since": now.isoformat(),
                                                            "until": (now - timedelta(days=1)).isoformat()})
    assert (recent[brands[0]], recent[brands[1]]) == (12, 4)
    assert brands[0] not in long_ago and brands[1] not in long_ago  # untracked, no posts then
    assert inverted.status_code == 422


async def test_brand_volumes_over_the_widest_window(settings, brands):
    """The first and last instants a datetime holds: no arithmetic on them overflows (schemathesis found one)."""
    async with api_client(settings) as client:
        widest = await client.get("/api/brands", params={"since": "0001-01-01T00:00:04Z",
                                                          "until": "9999-12-31T23:59:59Z"})
    assert widest.status_code == 200
    assert {r["name"]: r["volume"] for r in widest.json()}[brands[0]] == 12


async def test_trend_series_from_postgres_then_redis(settings, brands):
    a, _ = brands
    async with api_client(settings) as client:
        first = (await client.get(f"/api/brands/{a.upper()}/trends", params={"granularity": "minute"})).json()
        again = (await client.get(f"/api/brands/{a}/trends", params={"granularity": "minute"})).json()
        hourly = (await client.get(f"/api/brands/{a}/trends", params={"granularity": "hour"})).json()
    assert first["brand"] == a and first["source"] == "postgres"  # cold: read PostgreSQL, then warm Redis
    assert again["source"] == "redis" and again["points"] == first["points"]
    for series in (first, hourly):
        assert sum(p["volume"] for p in series["points"]) == 12
        assert sum(p["negative"] for p in series["points"]) == 6
    point = hourly["points"][-1] if len(hourly["points"]) == 1 else None
    if point:
        assert point["net_sentiment"] == pytest.approx((4 - 6) / 12)


async def test_trend_window_bounds(settings, brands):
    a, _ = brands
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    two_days_ago = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    async with api_client(settings) as client:
        empty = (await client.get(f"/api/brands/{a}/trends", params={"since": future})).json()
        old = await client.get(f"/api/brands/{a}/trends", params={"granularity": "minute", "since": two_days_ago})
    assert empty["points"] == []
    assert old.status_code == 200 and old.json()["source"] == "postgres"  # older than the hot window
    assert sum(point["volume"] for point in old.json()["points"]) == 12


async def test_minute_buckets_older_than_their_retention_are_refused_not_empty(settings, brands):
    a, _ = brands
    before_retention = (datetime.now(UTC) - timedelta(days=61)).isoformat()
    async with api_client(settings) as client:
        refused = [await client.get(path, params={"granularity": "minute", "since": before_retention, **params})
                   for path, params in ((f"/api/brands/{a}/trends", {}), ("/api/compare", {"brands": a}))]
        hourly = await client.get(f"/api/brands/{a}/trends", params={"granularity": "hour", "since": before_retention})
    async with api_client(settings, retention_minute_buckets_days=0) as client:
        kept_forever = await client.get(f"/api/brands/{a}/trends", params={"since": "2000-01-01T00:00:00Z"})
    for response in refused:
        assert response.status_code == 422, response.text
        [error] = response.json()["detail"]
        assert error["loc"] == ["query", "since"] and "minute buckets are kept for 60 days" in error["msg"]
    assert hourly.status_code == 200 and kept_forever.status_code == 200
    assert sum(point["volume"] for point in kept_forever.json()["points"]) == 12


async def test_comparison_share_of_voice_and_net_sentiment(settings, brands):
    a, b = brands
    async with api_client(settings) as client:
        response = await client.get("/api/compare", params={"brands": [f"{a},{b}"], "granularity": "hour"})
    assert response.status_code == 200
    body = response.json()
    rows = {row["brand"]: row for row in body["brands"]}
    assert body["total_volume"] == 16
    assert rows[a]["share_of_voice"] == pytest.approx(12 / 16)
    assert rows[b]["share_of_voice"] == pytest.approx(4 / 16)
    assert rows[a]["net_sentiment"] == pytest.approx(-2 / 12)
    assert rows[b]["net_sentiment"] == pytest.approx(2 / 4)


async def test_example_posts_drill_down(settings, brands):
    a, b = brands
    async with api_client(settings) as client:
        negative = (await client.get(f"/api/brands/{a}/posts", params={"label": "negative", "limit": 4})).json()
        with_url = (await client.get(f"/api/brands/{b}/posts")).json()
        none = (await client.get(f"/api/brands/{a}/posts", params={"until": "2001-01-01T00:00:00Z"})).json()
    assert len(negative) == 4 and {p["label"] for p in negative} == {"negative"}
    assert all(p["confidence"] == pytest.approx(0.8) and p["text_excerpt"] for p in negative)
    assert negative[0]["image_ref"].startswith("sha256:")
    assert [p["created_at"] for p in negative] == sorted((p["created_at"] for p in negative), reverse=True)
    assert len(with_url) == 4 and with_url[0]["image_ref"] == "https://img.example/p.jpg"
    assert none == []


async def test_an_inline_images_thumbnail_is_listed_and_served_as_a_jpeg(settings, engine):
    brand = unique_brand()
    jpeg = b"\xff\xd8\xff\xe0 a tiny jpeg"
    posts = labelled(brand, {"positive": 2}, image_ref="sha256:" + "cd" * 32, prefix=f"{brand}/odd id?")
    await seed(engine, [posts[0].model_copy(update={"thumbnail": jpeg}), posts[1]])
    async with api_client(settings) as client:
        listed = {p["post_id"]: p for p in (await client.get(f"/api/brands/{brand}/posts")).json()}
        url = listed[posts[0].post_id]["thumbnail_url"]
        served = await client.get(url)
        missing = await client.get(f"/api/posts/{posts[1].post_id}/thumbnail")
    assert listed[posts[1].post_id]["thumbnail_url"] is None
    assert url.startswith("/api/posts/") and "/odd" not in url  # the id is one escaped path segment
    assert served.status_code == 200 and served.content == jpeg
    assert served.headers["content-type"] == "image/jpeg" and "immutable" in served.headers["cache-control"]
    assert missing.status_code == 404


@pytest.mark.parametrize(("path", "params"), [
    ("/api/brands/x/trends", {"granularity": "week"}),
    ("/api/brands/x/trends", {"since": "yesterday"}),
    ("/api/brands/x/trends", {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}),
    ("/api/brands/x/posts", {"limit": 0}),
    ("/api/brands/x/posts", {"label": "angry"}),
    ("/api/compare", {}),
    ("/api/compare", {"brands": ",".join(f"b{i}" for i in range(13))}),
    (f"/api/brands/{'x' * 65}/trends", {}),
])
async def test_bad_input_is_a_422_with_a_json_reason(settings, path, params):
    async with api_client(settings) as client:
        response = await client.get(path, params=params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["detail"]


async def test_health_reports_database_redis_and_model(settings, brands):
    async with api_client(settings) as client:
        body = (await client.get("/api/health")).json()
    assert body["status"] == "ok"
    assert body["redis"]["ok"] and body["database"]["ok"]
    assert body["database"]["latest_processed_at"]
    assert "test" in {v["model_version"] for v in body["database"]["model_versions"]}


async def test_redis_down_falls_back_to_postgres(settings, brands):
    """A Redis nobody listens on: series still come from PostgreSQL; health says degraded."""
    a, _ = brands
    async with api_client(settings, redis_url="redis://127.0.0.1:1/0") as client:
        series = (await client.get(f"/api/brands/{a}/trends")).json()
        health = (await client.get("/api/health")).json()
    assert series["source"] == "postgres" and sum(p["volume"] for p in series["points"]) == 12
    assert health["status"] == "degraded" and health["redis"]["ok"] is False


async def test_dashboard_docs_and_security_headers(settings):
    async with api_client(settings) as client:
        page = await client.get("/")
        chart = await client.get("/static/vendor/chart.umd.min.js")
        docs = await client.get("/docs")
        schema = await client.get("/openapi.json")
        data = await client.get("/api/brands")
    assert page.status_code == 200 and "/static/vendor/chart.umd.min.js" in page.text
    assert chart.status_code == 200 and "Chart.js" in chart.text[:200]
    assert docs.status_code == 200 and "/static/vendor/swagger-ui-bundle.js" in docs.text
    assert {"/api/brands", "/api/live", "/api/alert-rules"} <= set(schema.json()["paths"])
    for response in (page, data):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self';" in csp and "frame-ancestors 'none'" in csp


async def test_cors_only_for_configured_origins(settings):
    async with api_client(settings, api_cors_origins="https://dash.example.com") as client:
        allowed = await client.options("/api/brands", headers={"Origin": "https://dash.example.com",
                                                               "Access-Control-Request-Method": "GET"})
        other = await client.get("/api/brands", headers={"Origin": "https://evil.example"})
    assert allowed.headers["access-control-allow-origin"] == "https://dash.example.com"
    assert "access-control-allow-origin" not in other.headers


async def test_posts_in_other_languages_are_listed_by_language_and_marked(settings, engine):
    brand = unique_brand()
    english, german = labelled(brand, {"positive": 1, "negative": 1})
    await seed(engine, [english.model_copy(update={"language": "en"}),
                        german.model_copy(update={"language": "de", "language_supported": False})])
    async with api_client(settings) as client:
        listed = (await client.get(f"/api/brands/{brand}/posts", params={"language": "de"})).json()
        bad = await client.get(f"/api/brands/{brand}/posts", params={"language": "german"})
        trend = (await client.get(f"/api/brands/{brand}/trends")).json()
    assert [(p["language"], p["language_supported"]) for p in listed] == [("de", False)]
    assert bad.status_code == 422
    assert sum(p["volume"] for p in trend["points"]) == 1  # the German post is not counted


async def test_trends_by_language_and_the_languages_left_out(settings, engine):
    brand = unique_brand()
    english = labelled(brand, {"positive": 1, "negative": 1}, prefix=f"{brand}-en")
    german = labelled(brand, {"negative": 2, "neutral": 1}, prefix=f"{brand}-de")
    unknown = labelled(brand, {"neutral": 1}, prefix=f"{brand}-und")
    await seed(engine, [*(r.model_copy(update={"language": "en"}) for r in english),
                        *(r.model_copy(update={"language": "de", "language_supported": False}) for r in german),
                        *unknown])
    async with api_client(settings) as client:
        default = (await client.get(f"/api/brands/{brand}/trends")).json()
        in_german = (await client.get(f"/api/brands/{brand}/trends", params={"language": "de"})).json()
        in_english = (await client.get(f"/api/brands/{brand}/trends", params={"language": "en"})).json()
        in_french = (await client.get(f"/api/brands/{brand}/trends", params={"language": "fr"})).json()
        compared = (await client.get("/api/compare", params={"brands": brand, "language": "de"})).json()
        languages = (await client.get(f"/api/brands/{brand}/languages")).json()
        unknown_posts = (await client.get(f"/api/brands/{brand}/posts", params={"language": "und"})).json()
        refused = [await client.get(path, params={"language": value})
                   for path in (f"/api/brands/{brand}/trends", "/api/compare?brands=" + brand)
                   for value in ("german", "DE", "undx", "")]
        missing = await client.get("/api/brands/no-such-brand-x/languages")
    assert (default["language"], default["language_supported"]) == (None, None)
    assert sum(p["volume"] for p in default["points"]) == 3  # English and unknown: as before
    assert (in_german["source"], in_german["language"], in_german["language_supported"]) == ("postgres", "de", False)
    assert [(p["negative"], p["neutral"], p["positive"]) for p in in_german["points"]] == [(2, 1, 0)]
    assert in_english["language_supported"] is True and sum(p["volume"] for p in in_english["points"]) == 2
    assert (in_french["points"], in_french["language_supported"]) == ([], None)
    assert (compared["language"], compared["language_supported"], compared["total_volume"]) == ("de", False, 3)
    assert (languages["total_volume"], languages["unsupported_volume"]) == (6, 3)
    assert [(r["language"], r["language_supported"], r["volume"]) for r in languages["languages"]] == [
        ("de", False, 3), ("en", True, 2), ("und", True, 1)]
    assert languages["languages"][0]["share"] == pytest.approx(0.5)
    assert languages["since"] and languages["until"] is None
    assert [p["language"] for p in unknown_posts] == [None]
    assert [r.status_code for r in refused] == [422] * len(refused)
    assert missing.status_code == 404
