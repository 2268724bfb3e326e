"""Access control: read token for data and the live feed, admin token for writes, refused when unset."""

from __future__ import annotations

import pytest

from monitor.store.brands import TrackedBrand, add_brand
from tests.integration.api_helpers import api_client, unique_brand

pytestmark = pytest.mark.integration

READ, ADMIN = "read-secret", "admin-secret"


@pytest.fixture(autouse=True)
def _schema(engine):
    """The session's migrated database (the `engine` fixture upgrades it)."""


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_open_reads_when_no_read_token(settings):
    async with api_client(settings, api_read_token=None) as client:
        assert (await client.get("/api/brands")).status_code == 200


@pytest.fixture(scope="module")
async def tracked(engine) -> str:
    """A tracked brand without data: known, so its reads answer 200 (an unknown one is a 404)."""
    return (await add_brand(engine, TrackedBrand(name=unique_brand("authread")))).name


@pytest.mark.parametrize("path", ["/api/brands", "/api/health", "/api/alerts", "/api/alert-rules",
                                  "/api/compare?brands={brand}", "/api/brands/{brand}/trends",
                                  "/api/brands/{brand}/posts"])
async def test_read_endpoints_need_the_read_token(settings, tracked, path):
    path = path.format(brand=tracked)
    async with api_client(settings, api_read_token=READ, api_admin_token=ADMIN) as client:
        missing = await client.get(path)
        wrong = await client.get(path, headers=bearer("nope"))
        query = await client.get(path + ("&" if "?" in path else "?") + f"token={READ}")
        read = await client.get(path, headers=bearer(READ))
        admin = await client.get(path, headers=bearer(ADMIN))
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert missing.json() == {"detail": "a bearer token is required (API_READ_TOKEN)"}
    assert wrong.status_code == 403 and wrong.json()["detail"] == "invalid token"
    assert query.status_code == 401  # only the live feed takes ?token= (EventSource cannot send headers)
    assert read.status_code == 200 and admin.status_code == 200


async def test_thumbnails_need_the_read_token(settings):
    async with api_client(settings, api_read_token=READ) as client:
        missing = await client.get("/api/posts/any-post/thumbnail")
        read = await client.get("/api/posts/any-post/thumbnail", headers=bearer(READ))
    assert missing.status_code == 401
    assert read.status_code == 404  # let in; this post has none


async def test_page_and_liveness_are_open_but_hold_no_data(settings):
    async with api_client(settings, api_read_token=READ) as client:
        assert (await client.get("/")).status_code == 200
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        assert (await client.get("/api/live", params={"token": "nope"})).status_code == 403


async def test_writes_refused_without_an_admin_token_configured(settings):
    rule = {"brand": unique_brand(), "kind": "negative_share", "threshold": 0.5}
    async with api_client(settings, api_read_token=READ, api_admin_token=None) as client:
        for token in (None, READ, "anything"):
            headers = bearer(token) if token else {}
            response = await client.post("/api/alert-rules", json=rule, headers=headers)
            assert response.status_code == 403, token
            assert "API_ADMIN_TOKEN is not set" in response.json()["detail"]
        assert (await client.put(f"/api/brands/{rule['brand']}", json={}, headers=bearer(READ))).status_code == 403


async def test_writes_need_the_admin_token(settings):
    name = unique_brand("authbrand")
    async with api_client(settings, api_read_token=READ, api_admin_token=ADMIN) as client:
        missing = await client.put(f"/api/brands/{name}", json={"keywords": ["x"]})
        as_reader = await client.put(f"/api/brands/{name}", json={"keywords": ["x"]}, headers=bearer(READ))
        as_admin = await client.put(f"/api/brands/{name}", json={"keywords": ["Road Runner"]}, headers=bearer(ADMIN))
        listed = (await client.get("/api/brands", headers=bearer(READ))).json()
        removed = await client.delete(f"/api/brands/{name}", headers=bearer(ADMIN))
        gone = await client.delete(f"/api/brands/{name}", headers=bearer(ADMIN))
    assert missing.status_code == 401
    assert as_reader.status_code == 403 and as_reader.json()["detail"] == "invalid admin token"
    assert as_admin.status_code == 200 and as_admin.json()["keywords"] == ["road runner"]
    assert {"name": name, "tracked": True}.items() <= next(b for b in listed if b["name"] == name).items()
    assert removed.status_code == 204 and gone.status_code == 404
