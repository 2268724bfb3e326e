"""Hostile and mistaken input against the real app, PostgreSQL and Redis: every one a clear 4xx, never a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import structlog
from sqlalchemy import delete

from monitor.alerts.tables import alert_rule
from monitor.api.errors import ValidationProblem
from monitor.store.brands import TrackedBrand, add_brand
from tests.integration.api_helpers import api_client, labelled, seed, unique_brand

pytestmark = pytest.mark.integration

READ, ADMIN = "valid-read", "valid-admin"
AS_ADMIN = {"Authorization": f"Bearer {ADMIN}"}


@pytest.fixture(autouse=True)
def _schema(engine):
    """The session's migrated database (the `engine` fixture upgrades it)."""


@pytest.fixture(scope="module")
async def seen(engine) -> str:
    """A brand with trend buckets that nobody tracks (producers' tags need no tracking)."""
    brand = unique_brand("seen")
    await seed(engine, labelled(brand, {"positive": 2}))
    return brand


@pytest.fixture(scope="module")
async def tracked(engine) -> str:
    """A tracked brand with no data yet."""
    return (await add_brand(engine, TrackedBrand(name=unique_brand("tracked")))).name


def assert_invalid(response, loc: list | None = None, says: str = "") -> None:
    assert response.status_code == 422, response.text
    body = ValidationProblem.model_validate(response.json())  # the declared 422 schema, custom errors included
    if loc is not None:
        assert any(error.loc == loc for error in body.detail), body
    assert says in response.text


@pytest.mark.parametrize(("path", "loc"), [
    ("/api/compare?brands=a%00b", ["query", "brands", 0]),
    ("/api/brands/a%00b/trends", ["path", "brand"]),
    ("/api/brands/a%00b/posts", ["path", "brand"]),
    ("/api/alerts?brand=a%00b", ["query", "brand"]),
    ("/api/alert-rules?brand=a%00b", ["query", "brand"]),
    ("/api/posts/a%00b/thumbnail", ["path", "post_id"]),
    ("/api/live?brand=a%00b", ["query", "brand", 0]),
])
async def test_a_nul_byte_in_a_parameter_is_a_422(settings, path, loc):
    async with api_client(settings) as client:
        assert_invalid(await client.get(path), loc, "NUL")


async def test_nul_bytes_and_lone_surrogates_in_bodies_are_422s(settings):
    brand = unique_brand("body")
    bodies = [
        ("PUT", f"/api/brands/{brand}", b'{"aliases": ["ok", "a\\u0000b"]}', "NUL"),
        ("PUT", f"/api/brands/{brand}", b'{"aliases": ["\\ud800"]}', ""),
        ("PUT", f"/api/brands/{brand}", b'{"keywords": ["x\\udfffy"]}', ""),
        ("POST", "/api/alert-rules", b'{"brand": "a\\u0000b", "kind": "volume_spike", "threshold": 3}', "NUL"),
        ("POST", "/api/alert-rules", b'{"brand": "\\ud83d", "kind": "volume_spike", "threshold": 3}', ""),
    ]
    async with api_client(settings, api_admin_token=ADMIN) as client:
        for method, path, body, says in bodies:
            response = await client.request(method, path, content=body,
                                            headers={**AS_ADMIN, "Content-Type": "application/json"})
            assert_invalid(response, says=says)
        assert_invalid(await client.put("/api/brands/a%00b", json={}, headers=AS_ADMIN), ["path", "name"], "NUL")
        assert_invalid(await client.delete("/api/brands/a%00b", headers=AS_ADMIN), ["path", "name"], "NUL")
        assert (await client.get(f"/api/brands/{brand}/trends")).status_code == 404  # nothing was stored


async def test_integers_bound_for_integer_columns(settings):
    brand = unique_brand("ints")
    rule = {"brand": brand, "kind": "negative_share", "threshold": 0.5}
    async with api_client(settings, api_admin_token=ADMIN) as client:
        too_big = await client.post("/api/alert-rules", json={**rule, "min_volume": 2**31}, headers=AS_ADMIN)
        largest = await client.post("/api/alert-rules", json={**rule, "min_volume": 2**31 - 1}, headers=AS_ADMIN)
        rule_id = largest.json()["id"]
        patched = await client.patch(f"/api/alert-rules/{rule_id}", json={"min_volume": 2**40}, headers=AS_ADMIN)
        huge_id = await client.delete(f"/api/alert-rules/{2**31}", headers=AS_ADMIN)
        await client.delete(f"/api/alert-rules/{rule_id}", headers=AS_ADMIN)
    assert_invalid(too_big, ["body", "min_volume"])
    assert largest.status_code == 201 and largest.json()["min_volume"] == 2**31 - 1
    assert_invalid(patched, ["body", "min_volume"])
    assert_invalid(huge_id, ["path", "rule_id"])


async def test_thresholds_are_bounded_per_kind(settings, engine):
    brand = unique_brand("thresholds")
    spike = {"brand": brand, "kind": "volume_spike"}
    share = {"brand": brand, "kind": "negative_share"}
    async with api_client(settings, api_admin_token=ADMIN) as client:
        refused = [await client.post("/api/alert-rules", json={**body, "threshold": t}, headers=AS_ADMIN)
                   for body, t in ((spike, 0.35), (spike, 1), (spike, 1e308), (spike, 1000.5), (share, 1.01),
                                   (share, 0))]
        accepted = [await client.post("/api/alert-rules", json={**body, "threshold": t}, headers=AS_ADMIN)
                    for body, t in ((spike, 1.01), (spike, 1000), (spike, 3), (share, 1), (share, 0.35))]
        spike_id = accepted[2].json()["id"]
        patched = await client.patch(f"/api/alert-rules/{spike_id}", json={"threshold": 0.5}, headers=AS_ADMIN)
        for response in accepted:
            await client.delete(f"/api/alert-rules/{response.json()['id']}", headers=AS_ADMIN)
    assert_invalid(refused[0], ["body"], "a volume_spike threshold is a factor in (1, 1000], not 0.35")
    assert_invalid(refused[1], ["body"], "factor in (1, 1000]")
    for response in refused[2:4]:
        assert_invalid(response, ["body", "threshold"], "less than or equal to 1000")
    assert_invalid(refused[4], ["body"], "a negative_share threshold is a fraction in (0, 1], not 1.01")
    assert_invalid(refused[5], ["body", "threshold"])
    assert [r.status_code for r in accepted] == [201] * 5, [r.text for r in accepted]
    assert_invalid(patched, ["body"], "factor in (1, 1000], not 0.5")


async def test_a_rule_stored_before_the_limits_still_lists_and_can_be_fixed(settings, engine):
    brand = unique_brand("legacy")
    async with engine.begin() as conn:
        rule_id = (await conn.execute(alert_rule.insert().values(
            brand=brand, kind="volume_spike", threshold=0.35, window_minutes=15, baseline_minutes=120,
            min_volume=10, cooldown_minutes=15, enabled=True).returning(alert_rule.c.id))).scalar_one()
    try:
        async with api_client(settings, api_admin_token=ADMIN) as client:
            listed = await client.get("/api/alert-rules", params={"brand": brand})
            fixed = await client.patch(f"/api/alert-rules/{rule_id}", json={"threshold": 2}, headers=AS_ADMIN)
        assert listed.status_code == 200 and listed.json()[0]["threshold"] == 0.35
        assert fixed.status_code == 200 and fixed.json()["threshold"] == 2
    finally:
        async with engine.begin() as conn:
            await conn.execute(delete(alert_rule).where(alert_rule.c.id == rule_id))


async def test_unknown_brands_are_404s_that_name_them(settings, seen, tracked):
    typo, other = unique_brand("typo"), unique_brand("nope")
    async with api_client(settings) as client:
        missing = [await client.get(f"/api/brands/{typo}/trends"), await client.get(f"/api/brands/{typo}/posts")]
        compared = await client.get("/api/compare", params={"brands": f"{seen},{typo},{other}"})
        known = [await client.get(f"/api/brands/{name.upper()}/{what}") for name in (seen, tracked)
                 for what in ("trends", "posts")]
        both = await client.get("/api/compare", params={"brands": [seen, tracked]})
    for response in missing:
        assert response.status_code == 404 and response.json()["detail"].startswith(f"unknown brand: {typo} ")
    assert compared.status_code == 404 and f"unknown brands: {typo}, {other} " in compared.json()["detail"]
    assert [r.status_code for r in known] == [200] * 4
    assert sum(p["volume"] for p in known[0].json()["points"]) == 2 and known[2].json()["points"] == []
    assert both.status_code == 200 and [b["volume"] for b in both.json()["brands"]] == [2, 0]


async def test_a_500_is_short_json_with_the_security_headers_and_one_log_line(settings):
    """PostgreSQL unreachable: an unexpected error in a handler."""
    async with api_client(settings, database_url="postgresql+psycopg://nobody:secret@127.0.0.1:1/none") as client:
        with structlog.testing.capture_logs() as logs:
            response = await client.get("/api/brands")
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error"}
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'self'" in response.headers["content-security-policy"]
    [line] = [entry for entry in logs if entry["event"] == "request failed"]
    assert line["log_level"] == "error" and line["path"] == "/api/brands"
    assert line["error_type"] == "OperationalError" and line["error"] and "where" in line
    assert len(repr(line)) < 2000


async def test_a_body_over_the_limit_is_a_413(settings):
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"aliases": ["'
        for _ in range(100):
            yield b"x" * 10_000
        yield b'"]}'

    name = unique_brand("huge")
    async with api_client(settings, api_admin_token=ADMIN) as client:
        declared = await client.put(f"/api/brands/{name}", json={"aliases": ["x" * 50_000_000]}, headers=AS_ADMIN)
        streamed = await client.put(f"/api/brands/{name}", content=chunks(),
                                    headers={**AS_ADMIN, "Content-Type": "application/json"})
        gone = await client.get(f"/api/brands/{name}/trends")
    async with api_client(settings, api_admin_token=ADMIN, api_max_body_bytes=2_000_000) as client:
        raised = await client.put(f"/api/brands/{name}", content=chunks(),
                                  headers={**AS_ADMIN, "Content-Type": "application/json"})
    for response in (declared, streamed):
        assert response.status_code == 413, response.text
        assert response.json()["detail"] == "request body larger than 65536 bytes (API_MAX_BODY_BYTES)"
        assert response.headers["x-frame-options"] == "DENY"
    assert gone.status_code == 404
    assert raised.status_code == 422 and "200 characters" in raised.text  # read whole; the term is too long


@pytest.mark.parametrize("since", ["1700000000", "1700000000.5", "2026-01-01", "2026-01-01T00:00:00",
                                   "2026-01-01T00:00", "yesterday", "0001-01-01T00:00:00+01:00"])
async def test_since_and_until_are_rfc3339_date_times(settings, seen, since):
    async with api_client(settings) as client:
        for path in (f"/api/brands/{seen}/trends", f"/api/brands/{seen}/posts", "/api/alerts"):
            assert_invalid(await client.get(path, params={"since": since}), ["query", "since"])
        assert_invalid(await client.get(f"/api/brands/{seen}/posts", params={"until": since}), ["query", "until"])


async def test_rfc3339_date_times_with_any_offset_are_accepted(settings, seen):
    async with api_client(settings) as client:
        for since in ("2026-01-01T00:00:00Z", "2026-01-01T01:00:00.123456+01:00", "2026-01-01 00:00:00-05:30"):
            response = await client.get(f"/api/brands/{seen}/trends", params={"since": since, "granularity": "hour"})
            assert response.status_code == 200, (since, response.text)
        inverted = await client.get(f"/api/brands/{seen}/trends", params={
            "since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z", "granularity": "day"})
    assert_invalid(inverted, ["query", "until"], "`since` must be before `until`")


@pytest.mark.parametrize("read_token", [None, READ])
async def test_openapi_declares_the_bearer_scheme_and_the_error_responses(settings, read_token):
    async with api_client(settings, api_read_token=read_token, api_admin_token=ADMIN) as client:
        spec = (await client.get("/openapi.json")).json()
        wrong_method = await client.put("/api/alert-rules")
    scheme = spec["components"]["securitySchemes"]["bearer"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer" and "API_READ_TOKEN" in scheme["description"]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            declared = set(operation["responses"])
            assert {"401", "403", "422", "500"} <= declared, (method, path)
            assert {"bearer": []} in operation["security"]
            assert ({} in operation["security"]) == (method == "get" and read_token is None), (method, path)
            if "{" in path and method != "put":  # PUT /api/brands/{name} creates
                assert "404" in declared, (method, path)
            if "requestBody" in operation:
                assert {"400", "413"} <= declared, (method, path)
            for code in declared - {"200", "201", "204"}:
                schema = operation["responses"][code]["content"]["application/json"]["schema"]["$ref"]
                assert schema.endswith("/ValidationProblem" if code == "422" else "/Problem"), (method, path, code)
    assert {"404"} <= set(spec["paths"]["/api/compare"]["get"]["responses"])
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "GET, POST"
