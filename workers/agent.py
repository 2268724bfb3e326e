"""The inference agent: posts in micro-batches -> RADM -> sentiment; bad input -> DLQ with a reason."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import faust

from monitor.logging import get_logger
from monitor.settings import Settings
from monitor.streaming import Topics
from schemas import DeadLetter, Post
from workers.inference import SentimentModel
from workers.preprocess import BadInput, parse_post

log = get_logger(__name__)


def dead_letter(event: faust.EventT, reason: str) -> DeadLetter:
    message = event.message
    return DeadLetter(reason=reason, topic=message.topic, partition=message.partition, offset=message.offset,
                      payload=message.value or b"")


def triage(
    events: Sequence[faust.EventT], model: SentimentModel, settings: Settings
) -> tuple[list[Post], list[tuple], list[DeadLetter]]:
    """Parse and decode a batch (CPU work, run off the event loop); split usable posts from dead letters."""
    posts, decoded, dead = [], [], []
    for event in events:
        try:
            post = parse_post(event.message.value, settings.max_message_bytes)
            decoded.append(model.decode(post, settings.max_image_pixels))
            posts.append(post)
        except BadInput as exc:
            dead.append(dead_letter(event, str(exc)))
    return posts, decoded, dead


def register_inference_agent(app: faust.App, topics: Topics, model: SentimentModel, settings: Settings):
    """Attach the agent to `app`. Events are acked (offsets committable) only after results are delivered."""

    @app.agent(topics.posts, name="infer")
    async def infer(stream: faust.StreamT) -> None:
        async for events in stream.take_events(settings.worker_max_batch, within=settings.worker_max_wait_s):
            posts, decoded, dead = await asyncio.to_thread(triage, events, model, settings)
            results = []
            if posts:
                try:
                    results = await asyncio.to_thread(model.predict, posts, decoded)
                except Exception as exc:  # noqa: BLE001 - a raising batch would be acked and lost; keep it in the DLQ
                    log.exception("inference failed for a batch")
                    dead += [dead_letter(e, f"inference failed: {exc!r}") for e in events
                             if e.message.value and not any(d.offset == e.message.offset for d in dead)]
            deliveries = [
                await topics.sentiment.send(key=r.post_id.encode(), value=r.model_dump_json().encode())
                for r in results
            ] + [await topics.dlq.send(key=d.topic.encode(), value=d.model_dump_json().encode()) for d in dead]
            await asyncio.gather(*deliveries)
            for letter in dead:
                log.warning("post sent to dead-letter topic", reason=letter.reason, partition=letter.partition,
                            offset=letter.offset)
            log.debug("batch done", posts=len(posts), dead=len(dead))

    return infer


def build_worker_app(settings: Settings) -> faust.App:
    from monitor.streaming import create_app, create_topics

    app = create_app("sentiment-worker", settings)
    model = SentimentModel.load(settings.model_checkpoint, settings.device)
    log.info("model loaded", version=model.version, device=str(model.device))
    register_inference_agent(app, create_topics(app, settings), model, settings)
    return app
