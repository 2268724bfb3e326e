"""The inference agent without a broker: Faust's test_context() feeds events directly."""

import asyncio
import io
from datetime import UTC, datetime

import faust
import pytest
from PIL import Image

from core.settings import Settings
from core.streaming.topics import create_topics
from schemas import DeadLetter, Post, SentimentResult
from tests.http_helpers import serving
from workers.agent.agent import register_inference_agent
from workers.inference.model import SentimentModel


@pytest.fixture
def harness():
    return make_harness()


def make_harness(**overrides):
    settings = Settings(kafka_bootstrap="localhost:1", worker_max_batch=4, worker_max_wait_s=0.01, **overrides)
    app = faust.App("agent-test", broker="kafka://localhost:1", store="memory://", web_enabled=False)
    topics = create_topics(app, settings)
    sent: dict[str, list] = {"sentiment": [], "dlq": [], "shadow": [], "sentiment-records": [], "dlq-records": [],
                             "shadow-records": []}
    names = {settings.kafka.sentiment_topic: "sentiment", settings.kafka.dlq_topic: "dlq",
             settings.kafka.shadow_topic: "shadow"}

    class Recorder:
        """Stands in for BatchSender (no broker): records what the agent hands it, acknowledged at once."""

        async def start(self):
            pass

        async def stop(self):
            pass

        async def send(self, topic, records, headers=None):
            sent[names[topic]] += [value for _, value in records]
            sent[f"{names[topic]}-records"] += [(key, dict(h)) for (key, _), h in
                                                zip(records, headers or [[]] * len(records), strict=True)]
            done = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return [done]

    agent = register_inference_agent(app, topics, SentimentModel.load(None, "cpu"), settings, Recorder())
    return agent, sent


async def wait_for(predicate, timeout_s=10.0):
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_valid_posts_become_results_and_bad_ones_dead_letters(harness):
    agent, sent = harness
    good = [Post(post_id=f"p{i}", created_at=datetime.now(UTC), text=f"post {i}", brands=["acme"]) for i in range(5)]
    async with agent.test_context() as context:
        for post in good:
            await context.put(post.model_dump_json().encode())
        await context.put(b"{broken json")
        await context.put(b'{"post_id": "no-time", "text": "x"}')
        await wait_for(lambda: len(sent["sentiment"]) == 5 and len(sent["dlq"]) == 2)

    results = [SentimentResult.model_validate_json(raw) for raw in sent["sentiment"]]
    assert sorted(r.post_id for r in results) == sorted(p.post_id for p in good)
    assert all(r.brands == ["acme"] and abs(sum(r.probabilities.values()) - 1) < 1e-5 for r in results)
    letters = [DeadLetter.model_validate_json(raw) for raw in sent["dlq"]]
    assert {letter.payload for letter in letters} == {b"{broken json", b'{"post_id": "no-time", "text": "x"}'}
    assert all(letter.reason.startswith("invalid post") for letter in letters)


async def test_a_dead_letter_keeps_the_original_key_and_says_where_it_came_from(harness):
    """One bad producer's messages stay on one DLQ partition, in order; headers route without parsing."""
    agent, sent = harness
    async with agent.test_context() as context:
        await context.put(b"{broken json", key=b"producer-7")
        await wait_for(lambda: len(sent["dlq"]) == 1)
    [(key, headers)] = sent["dlq-records"]
    letter = DeadLetter.model_validate_json(sent["dlq"][0])
    assert key == letter.key == b"producer-7"
    assert headers["reason.code"] == b"invalid_post" and letter.code == "invalid_post"
    assert headers["source.topic"] == letter.topic.encode()
    assert headers["source.offset"] == str(letter.offset).encode()


def jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 20, 20)).save(buffer, "JPEG")
    return buffer.getvalue()


async def test_image_posts_are_scored_with_a_thumbnail_and_bad_images_dead_lettered(harness):
    agent, sent = harness
    now = datetime.now(UTC)
    posts = [Post(post_id="img", created_at=now, text="new logo!", image=jpeg_bytes()),
             Post(post_id="img-only", created_at=now, image=jpeg_bytes()),
             Post(post_id="bad-img", created_at=now, text="x", image=b"not an image")]
    async with agent.test_context() as context:
        for post in posts:
            await context.put(post.model_dump_json().encode())
        await wait_for(lambda: len(sent["sentiment"]) == 2 and len(sent["dlq"]) == 1)

    results = {r.post_id: r for r in (SentimentResult.model_validate_json(raw) for raw in sent["sentiment"])}
    assert set(results) == {"img", "img-only"}
    assert results["img"].image_ref.startswith("sha256:")
    with Image.open(io.BytesIO(results["img"].thumbnail)) as thumb:  # the tiny model decodes at 32 px
        assert thumb.format == "JPEG" and thumb.size == (32, 24)
    assert DeadLetter.model_validate_json(sent["dlq"][0]).reason.startswith("undecodable image")


async def test_a_failing_thumbnail_leaves_the_post_scored_without_one(harness, monkeypatch):
    from workers.agent import triage as agent_module

    def broken(*args):
        raise RuntimeError("encoder bug")

    monkeypatch.setattr(agent_module, "thumbnail_jpeg", broken)
    agent, sent = harness
    post = Post(post_id="img", created_at=datetime.now(UTC), text="new logo!", image=jpeg_bytes())
    async with agent.test_context() as context:
        await context.put(post.model_dump_json().encode())
        await wait_for(lambda: len(sent["sentiment"]) == 1)
    result = SentimentResult.model_validate_json(sent["sentiment"][0])
    assert result.thumbnail is None and result.image_ref.startswith("sha256:") and sent["dlq"] == []


async def test_an_unexpected_decoder_error_dead_letters_the_post_and_the_worker_goes_on(harness, monkeypatch):
    agent, sent = harness
    model = SentimentModel  # the harness's model is an instance of it; break decode for one post only
    original = model.decode

    def flaky(self, post, max_pixels):
        if post.post_id == "boom":
            raise ZeroDivisionError("decoder bug")
        return original(self, post, max_pixels)

    monkeypatch.setattr(model, "decode", flaky)
    async with agent.test_context() as context:
        for post_id in ("ok-1", "boom", "ok-2"):
            post = Post(post_id=post_id, created_at=datetime.now(UTC), text="fine")
            await context.put(post.model_dump_json().encode())
        await wait_for(lambda: len(sent["sentiment"]) == 2 and len(sent["dlq"]) == 1)
    (letter,) = [DeadLetter.model_validate_json(raw) for raw in sent["dlq"]]
    assert letter.reason.startswith("internal error preparing the post") and "decoder bug" in letter.reason


async def test_an_unexpected_parser_error_dead_letters_the_message_and_the_worker_goes_on(harness, monkeypatch):
    from workers.agent import triage as agent_module

    original = agent_module.parse_post

    def flaky(raw, max_bytes):
        if b"boom" in raw:
            raise LookupError("validator bug")
        return original(raw, max_bytes)

    monkeypatch.setattr(agent_module, "parse_post", flaky)
    agent, sent = harness
    async with agent.test_context() as context:
        for post_id in ("ok-1", "boom", "ok-2"):
            await context.put(Post(post_id=post_id, created_at=datetime.now(UTC), text="x").model_dump_json().encode())
        await wait_for(lambda: len(sent["sentiment"]) == 2 and len(sent["dlq"]) == 1)
    (letter,) = [DeadLetter.model_validate_json(raw) for raw in sent["dlq"]]
    assert letter.reason.startswith("internal error preparing the post") and "validator bug" in letter.reason


def test_a_crashing_agent_takes_its_process_down():
    """Faust's default supervisor leaves the process running with a dead agent (checked by hand against the
    embedded broker: 25 s alive, nothing processed); CrashingSupervisor exits so it gets restarted."""
    import mode

    from core.streaming.app import create_app

    app = create_app("supervisor-test", Settings(kafka_bootstrap="localhost:1"))
    assert app.conf.agent_supervisor is mode.CrashingSupervisor


async def test_a_failing_model_dead_letters_every_usable_post_once(harness, monkeypatch):
    agent, sent = harness

    def broken(self, decoded):
        raise RuntimeError("CUDA error: device-side assert")

    monkeypatch.setattr(SentimentModel, "score", broken)
    async with agent.test_context() as context:
        for i in range(3):
            post = Post(post_id=f"f{i}", created_at=datetime.now(UTC), text="fine")
            await context.put(post.model_dump_json().encode())
        await context.put(b"not json")
        await wait_for(lambda: len(sent["dlq"]) == 4)
    letters = [DeadLetter.model_validate_json(raw) for raw in sent["dlq"]]
    assert sent["sentiment"] == []
    assert sorted(letter.reason.split(":")[0] for letter in letters) == ["inference failed"] * 3 + ["invalid post"]
    assert len({letter.offset for letter in letters}) == 4  # each message once


@pytest.fixture
async def image_server():
    """A local HTTP server with one JPEG (`/photo.jpg`); every other path is a 404."""
    from aiohttp import web

    app = web.Application()
    app.router.add_get("/photo.jpg", lambda request: web.Response(body=jpeg_bytes(), content_type="image/jpeg"))
    async with serving(app) as base_url:
        yield base_url


async def test_linked_images_are_fetched_and_scored_and_a_missing_one_costs_only_the_image(image_server):
    agent, sent = make_harness(worker_image_private_hosts=True, worker_image_timeout_s=2.0)
    now = datetime.now(UTC)
    posts = [Post(post_id="linked", created_at=now, text="new logo!", image_url=f"{image_server}/photo.jpg"),
             Post(post_id="gone", created_at=now, text="where is it?", image_url=f"{image_server}/gone.jpg"),
             Post(post_id="gone-no-text", created_at=now, image_url=f"{image_server}/gone.jpg"),
             Post(post_id="inline", created_at=now, text="inline", image=jpeg_bytes())]
    async with agent.test_context() as context:
        for post in posts:
            await context.put(post.model_dump_json().encode())
        await wait_for(lambda: len(sent["sentiment"]) == 3 and len(sent["dlq"]) == 1)

    results = {r.post_id: r for r in (SentimentResult.model_validate_json(raw) for raw in sent["sentiment"])}
    assert results["linked"].image_ref == f"{image_server}/photo.jpg"
    assert results["linked"].thumbnail is not None  # made from the fetched pixels: the model saw the image
    assert results["gone"].thumbnail is None and results["gone"].image_ref.endswith("/gone.jpg")  # its text
    assert results["inline"].thumbnail is not None
    (letter,) = [DeadLetter.model_validate_json(raw) for raw in sent["dlq"]]
    assert letter.reason == "linked image unusable: HTTP 404"


async def test_linked_images_are_left_alone_when_fetching_is_off(image_server):
    agent, sent = make_harness(worker_fetch_images=False, worker_image_private_hosts=True)
    post = Post(post_id="linked", created_at=datetime.now(UTC), text="hi", image_url=f"{image_server}/photo.jpg")
    async with agent.test_context() as context:
        await context.put(post.model_dump_json().encode())
        await wait_for(lambda: len(sent["sentiment"]) == 1)
    assert SentimentResult.model_validate_json(sent["sentiment"][0]).thumbnail is None


def test_text_inside_an_image_reaches_the_model_with_the_post_text():
    from workers.agent.triage import Triage
    from workers.evaluation.render import render_text_photo

    settings = Settings(kafka_bootstrap="localhost:1")
    triage = Triage(SentimentModel.load(None, "cpu"), settings)
    meme = render_text_photo("Worst customer service ever", 2)
    post = Post(post_id="m1", created_at=datetime.now(UTC), text="look at this", image=meme)
    ready = triage.one(post.model_dump_json().encode())
    assert not isinstance(ready, str), ready
    text, pixels = ready[1]
    assert text.lower().startswith("look at this worst customer service")
    assert pixels is not None

    without = Triage(SentimentModel.load(None, "cpu"), Settings(kafka_bootstrap="localhost:1", worker_ocr=False))
    assert without.one(post.model_dump_json().encode())[1][0] == "look at this"


async def test_emoji_only_url_only_and_foreign_posts_are_scored_with_their_language(harness):
    agent, sent = harness
    now = datetime.now(UTC)
    posts = [Post(post_id="emoji", created_at=now, text="😍😍😍"),
             Post(post_id="url", created_at=now, text="https://t.co/abc @user"),
             Post(post_id="en", created_at=now, text="This is the worst customer service I have ever had"),
             Post(post_id="de", created_at=now, text="Das ist wirklich das beste Handy, das ich je hatte")]
    async with agent.test_context() as context:
        for post in posts:
            await context.put(post.model_dump_json().encode())
        await wait_for(lambda: len(sent["sentiment"]) == 4)
    results = {r.post_id: r for r in (SentimentResult.model_validate_json(raw) for raw in sent["sentiment"])}
    assert {k: (r.language, r.language_supported) for k, r in results.items()} == {
        "emoji": (None, True), "url": (None, True), "en": ("en", True), "de": ("de", False)}
    assert sent["dlq"] == []
