"""`GET /api/posts/{post_id}/explanation` on stored posts, explained by the seeded tiny model."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime

import httpx
import numpy as np
import pytest
from PIL import Image

from core.settings import Settings
from monitor.api.app import create_app
from monitor.store.deletions import write_deletions
from schemas import PostDeletion
from tests.integration.api_helpers import api_client, seed
from tests.integration.trend_helpers import result

pytestmark = pytest.mark.integration

TINY = "radm-tiny-1-untrained"
TEXT = "Battery  dies by noon,\nawful! #fail"


def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray((np.random.default_rng(0).random((40, 40, 3)) * 255).astype("uint8")).save(buffer, "JPEG")
    return buffer.getvalue()


def stored(text: str = TEXT, thumbnail: bytes | None = None, model_version: str = "test"):
    made = result(f"explain-{uuid.uuid4().hex[:8]}", ["explainco"], datetime.now(UTC), "negative", text=text)
    return made.model_copy(update={"thumbnail": thumbnail, "model_version": model_version})


async def test_explains_a_stored_post(settings: Settings, engine) -> None:
    post = stored()
    await seed(engine, [post])
    async with api_client(settings) as client:
        response = await client.get(f"/api/posts/{post.post_id}/explanation")
        assert response.status_code == 200, response.text
        body = response.json()
        assert [w["text"] for w in body["words"]] == TEXT.split()
        assert all(TEXT[w["start"]:w["end"]] == w["text"] for w in body["words"])
        assert max(abs(w["attribution"]) for w in body["words"]) == pytest.approx(1.0)
        assert body["modality"] is None and body["with_image"] is False
        assert body["explained_by"] == TINY and body["scored_by"] == "test" and body["stored_label"] == "negative"
        assert body["same_model"] is False and "came from model test" in body["note"]
        again = await client.get(f"/api/posts/{post.post_id}/explanation")
        assert again.json() == body


async def test_modality_balance_from_the_thumbnail(settings: Settings, engine) -> None:
    post = stored(thumbnail=jpeg(), model_version=TINY)
    await seed(engine, [post])
    async with api_client(settings) as client:
        body = (await client.get(f"/api/posts/{post.post_id}/explanation")).json()
    assert body["with_image"] is True and body["same_model"] is True and body["note"] is None
    balance = body["modality"]
    assert balance["both"] == pytest.approx(body["probabilities"][body["label"]])
    assert balance["image_text_disagree"] == (balance["text_label"] != balance["image_label"])


async def test_unknown_deleted_and_turned_off(settings: Settings, engine) -> None:
    post = stored()
    await seed(engine, [post])
    async with api_client(settings, api_explanations=False) as client:
        off = await client.get(f"/api/posts/{post.post_id}/explanation")
        assert off.status_code == 404 and "API_EXPLANATIONS=false" in off.json()["detail"]
    await write_deletions(engine, [PostDeletion(post_id=post.post_id, deleted_at=datetime.now(UTC))])
    async with api_client(settings) as client:
        for post_id in (post.post_id, "never-stored"):
            response = await client.get(f"/api/posts/{post_id}/explanation")
            assert response.status_code == 404 and "no such post" in response.json()["detail"]


async def test_model_loaded_once_and_failure_is_503(settings: Settings, engine) -> None:
    post = stored()
    await seed(engine, [post])
    loads = []

    def failing():
        loads.append(1)
        raise FileNotFoundError("no checkpoint here")

    app = create_app(settings, run_alerts=False, explainer=failing)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport,
                                                                   base_url="http://api.test") as client:
        for _ in range(2):
            response = await client.get(f"/api/posts/{post.post_id}/explanation")
            assert response.status_code == 503 and "could not be loaded" in response.json()["detail"]
    assert len(loads) == 2  # a failed load is tried again
