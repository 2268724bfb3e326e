"""The inference agent: posts in micro-batches -> RADM -> sentiment; bad input -> DLQ with a reason.

Batches flow through `workers.agent.batching.BatchPipeline` in five stages, each on its own batch at a time:
prepare (parse and decode on a thread pool, where libjpeg-turbo and PIL release the GIL, so images decode in
parallel), fetch (the images posts link to, `workers.agent.image_fetch`; nothing to do for most batches), submit
(hand the batch to the model), produce (await its probabilities, hand results and dead letters to the
producer, one record batch per partition: `workers.agent.delivery`) and confirm (await the broker's
acknowledgements, then ack), so a committed offset always means "its results are in `sentiment`", the
model never waits for a decode or a produce round trip (with the model in its own process, batch N+1 is
already queued there while batch N is scored), and batch N+1's results are on their way while the
broker acknowledges batch N's.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import faust
import numpy as np

from core import metrics
from core.logging import get_logger
from core.settings import Settings
from core.streaming.dead_letters import dead_letter
from core.streaming.topics import Topics
from schemas import DeadLetter, Post, SentimentResult
from schemas.reasons import BadInput
from workers.agent.batching import BatchPipeline
from workers.agent.delivery import BatchSender
from workers.agent.image_fetch import FetchFailed, ImageFetcher
from workers.agent.posts import parse_post
from workers.enrich.language import LanguageDetector
from workers.enrich.ocr import ImageTextReader, add_image_text
from workers.inference.child import ModelProcess, ModelProcessDied
from workers.inference.model import Decoded, SentimentModel, load_worker_model, sentiment_results
from workers.media.images import thumbnail_jpeg, upright_aspect

log = get_logger(__name__)

LAG_INTERVAL_S = 5.0

T = TypeVar("T")


Ready = tuple[Post, Decoded, bytes | None, str | None]
"""A post ready for the model: the post, its text and pixels, its image's thumbnail (if any), its language."""


@dataclass
class Prepared:
    """A batch after triage: the events that carry a usable post (aligned with posts, decoded and thumbnails),
    the dead letters of the others, and, until their images are fetched (`Triage.add_linked`), the events whose
    post links to its image."""

    usable: list[faust.EventT] = field(default_factory=list)
    posts: list[Post] = field(default_factory=list)
    decoded: list[Decoded] = field(default_factory=list)
    thumbnails: list[bytes | None] = field(default_factory=list)
    languages: list[str | None] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    linked: list[tuple[faust.EventT, Post]] = field(default_factory=list)
    fetching: asyncio.Future[list[bytes | FetchFailed]] | None = None
    """The linked images on their way (`Triage.start_fetching`)."""

    def add(self, event: faust.EventT, outcome: Ready | str) -> None:
        if isinstance(outcome, str):
            self.dead.append(dead_letter(event, outcome))
            return
        self.usable.append(event)
        self.posts.append(outcome[0])
        self.decoded.append(outcome[1])
        self.thumbnails.append(outcome[2])
        self.languages.append(outcome[3])


@dataclass
class Submitted:
    """A batch in the model's hands: `probabilities` resolves when it is scored (None: nothing to score)."""

    prepared: Prepared
    probabilities: Future[list[list[float]]] | None
    started: float


@dataclass
class Produced:
    """A batch whose results and dead letters are with the producer: `pending` resolve on the broker's acks."""

    pending: list[Awaitable]
    scored: int
    dead: list[DeadLetter]
    started: float


def explained(work: Callable[..., T], *args: Any) -> T | str:
    """`work(*args)`, or why it failed: a bad input's reason, or an unexpected error's, logged. A decoder or validator
    bug must cost one post (in the DLQ), not the worker."""
    try:
        return work(*args)
    except BadInput as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - see above
        log.exception("unexpected error preparing a post")
        return f"internal error preparing the post: {exc!r}"


class Triage:
    """Parse and decode a batch on a thread pool, with a thumbnail of each image; fetch the images posts link
    to; split usable posts from dead letters.

    The pool lives as long as the process: its idle threads cost nothing and exit with the interpreter."""

    def __init__(self, model: SentimentModel | ModelProcess, settings: Settings) -> None:
        self.model, self.settings = model, settings
        self.threads = settings.worker_decode_threads
        self.pool = ThreadPoolExecutor(self.threads, thread_name_prefix="decode")
        self.fetcher = ImageFetcher(settings.worker_image_timeout_s, settings.max_message_bytes,
                                    settings.worker_image_connections, settings.worker_image_private_hosts,
                                    ) if settings.worker_fetch_images else None
        self.reader = ImageTextReader() if settings.worker_ocr else None
        self.languages = LanguageDetector()

    def one(self, raw: bytes | None) -> Ready | Post | str:
        """Ready, a post whose linked image must be fetched first, or why the message cannot be used."""

        def triaged() -> Ready | Post:
            post = parse_post(raw, self.settings.max_message_bytes)
            if post.image is None and post.image_url is not None and self.fetcher is not None:
                return post
            return self.ready(post)

        return explained(triaged)

    def ready(self, post: Post, image: bytes | None = None) -> Ready:
        """The post decoded with its inline image, or with `image` fetched for it; raises BadInput."""
        with_image = post if image is None else post.model_copy(update={"image": image})
        decoded = add_image_text(self.model.decode(with_image, self.settings.max_image_pixels), with_image.image,
                                 self.reader, self.settings.max_image_pixels)
        return post, decoded, self.thumbnail(with_image, decoded[1]), self.language(post, decoded[0])

    def language(self, post: Post, text: str) -> str | None:
        """The producer's `lang` (e.g. a Mastodon status's language) when it gives one, else detected."""
        declared = (post.lang or "").split("-")[0].strip().lower()
        return declared if len(declared) == 2 and declared.isalpha() else self.languages.detect(text)

    def thumbnail(self, post: Post, pixels: np.ndarray | None) -> bytes | None:
        """The dashboard's JPEG of the image the model sees; a post is scored without one rather than lost."""
        if pixels is None or post.image is None or not self.settings.worker_thumbnail_px:
            return None
        try:
            return thumbnail_jpeg(pixels, upright_aspect(post.image), self.settings.worker_thumbnail_px)
        except Exception:  # noqa: BLE001 - the image decoded: whatever fails here is not worth the post
            log.exception("no thumbnail for a post", post_id=post.post_id)
            return None

    def many(self, raws: Sequence[bytes | None]) -> list[Ready | Post | str]:
        return [self.one(raw) for raw in raws]

    def __call__(self, events: Sequence[faust.EventT]) -> Prepared:
        """One slice of the batch per thread: a task per post would cost a future, a queue hand-off and a
        thread wake-up each, all under the GIL."""
        raws = [event.message.value for event in events]
        size = -(-len(raws) // self.threads)
        outcomes = [o for part in self.pool.map(self.many, [raws[i:i + size] for i in range(0, len(raws), size)])
                    for o in part]
        prepared = Prepared()
        for event, outcome in zip(events, outcomes, strict=True):
            if isinstance(outcome, Post):
                prepared.linked.append((event, outcome))
            else:
                prepared.add(event, outcome)
        return prepared

    def start_fetching(self, prepared: Prepared) -> None:
        """Start fetching the batch's linked images, all at once, on this event loop: they travel while the
        batch waits for the fetch stage, and while the batches before it are fetched."""
        if prepared.linked and self.fetcher is not None:
            prepared.fetching = asyncio.ensure_future(
                self.fetcher.fetch_all([str(post.image_url) for _, post in prepared.linked]))

    async def add_linked(self, prepared: Prepared) -> None:
        """Await the batch's linked images, then decode them on a thread. A post whose image cannot be fetched
        or decoded is scored on its text: a remote image, which its producer may not control, never costs a
        post its text. Without text there is nothing to score: it goes to the DLQ."""
        if prepared.fetching is None:
            return
        linked, prepared.linked = prepared.linked, []
        fetched = await prepared.fetching
        outcomes = await asyncio.to_thread(
            lambda: [explained(self.ready, post, got) if isinstance(got, bytes) else str(got)
                     for (_, post), got in zip(linked, fetched, strict=True)])
        for (event, post), outcome in zip(linked, outcomes, strict=True):
            metrics.LINKED_IMAGES.labels("failed" if isinstance(outcome, str) else "used").inc()
            if isinstance(outcome, str):
                log.info("linked image not used", post_id=post.post_id, url=str(post.image_url).split("?")[0],
                         reason=outcome)  # no query string: signed URLs carry their credentials there
                outcome = explained(self.ready, post) if post.text.strip() else f"linked image unusable: {outcome}"
            prepared.add(event, outcome)


def register_inference_agent(app: faust.App, topics: Topics, model: SentimentModel | ModelProcess,
                             settings: Settings, sender: BatchSender | None = None):
    """Attach the agent to `app`. Events are acked (offsets committable) only after results are delivered
    (by `sender`, by default a `BatchSender` the agent starts and stops)."""
    triage = Triage(model, settings)
    sender = sender or BatchSender(settings)
    processed: dict = {}  # TP -> next offset to process, for the lag gauge

    async def prepare(events: Sequence[faust.EventT], _: None) -> Prepared:
        metrics.observe_queue_wait(metrics.QUEUE_WAIT, events, time.time())
        metrics.BATCH_SIZE.observe(len(events))
        with metrics.DECODE_SECONDS.time():
            prepared = await asyncio.to_thread(triage, events)
        triage.start_fetching(prepared)
        return prepared

    async def fetch(events: Sequence[faust.EventT], prepared: Prepared) -> Prepared:
        """The batch's linked images, arrived and decoded: a stage of its own, so that the network overlaps the
        next batches' parsing, decoding and fetching. Batches without links pass straight through."""
        await triage.add_linked(prepared)
        return prepared

    def submit(events: Sequence[faust.EventT], prepared: Prepared) -> Submitted:
        """Hand the usable posts to the model: returns once the batch is queued there (in its own process) or
        scored (in this one)."""
        started = time.perf_counter()
        return Submitted(prepared, model.submit(prepared.decoded) if prepared.posts else None, started)

    async def scored(submitted: Submitted) -> tuple[list[SentimentResult], list[DeadLetter]]:
        prepared = submitted.prepared
        if submitted.probabilities is None:
            return [], prepared.dead
        try:
            probabilities = await asyncio.wrap_future(submitted.probabilities)
        except ModelProcessDied:
            raise  # the model process died: crash and restart, never dead-letter good posts for it
        except Exception as exc:  # noqa: BLE001 - a raising batch would be acked and lost; keep it in the DLQ
            log.exception("inference failed for a batch")
            return [], prepared.dead + [dead_letter(e, f"inference failed: {exc!r}") for e in prepared.usable]
        metrics.MODEL_SECONDS.observe(time.perf_counter() - submitted.started)
        return sentiment_results(prepared.posts, probabilities, model.labels, model.version, submitted.started,
                                 prepared.thumbnails, prepared.languages, model.config.languages), prepared.dead

    async def produce(events: Sequence[faust.EventT], submitted: Submitted) -> Produced:
        """Await the batch's probabilities, then hand its results and dead letters to the producer; the next
        stage awaits the broker."""
        results, dead = await scored(submitted)
        started = time.perf_counter()
        pending = await sender.send(topics.sentiment.get_topic_name(),
                                    [(r.post_id.encode(), r.model_dump_json().encode()) for r in results])
        pending += await sender.send(topics.dlq.get_topic_name(),
                                     [(d.topic.encode(), d.model_dump_json().encode()) for d in dead])
        return Produced(pending, len(results), dead, started)

    async def confirm(events: Sequence[faust.EventT], produced: Produced) -> None:
        """Await the broker's acknowledgements, then ack the events: only now may their offsets be committed."""
        await asyncio.gather(*produced.pending)
        metrics.DELIVERY_SECONDS.observe(time.perf_counter() - produced.started)
        for event in events:
            event.ack()
            processed[event.message.tp] = max(processed.get(event.message.tp, 0), event.message.offset + 1)
        metrics.POSTS.labels("scored").inc(produced.scored)
        metrics.POSTS.labels("dead_letter").inc(len(produced.dead))
        for letter in produced.dead:
            metrics.DEAD_LETTERS.labels(metrics.reason_label(letter.reason)).inc()
            log.warning("post sent to dead-letter topic", reason=letter.reason, partition=letter.partition,
                        offset=letter.offset)
        log.debug("batch done", results=produced.scored, dead=len(produced.dead))

    @app.agent(topics.posts, name="infer")
    async def infer(stream: faust.StreamT) -> None:
        stages = [prepare, fetch, submit, produce, confirm]
        pipeline = BatchPipeline(settings.worker_max_batch, settings.worker_max_wait_s, stages, metrics.observe_stage)
        await sender.start()
        try:
            await pipeline.run(stream.noack().events())
        finally:
            await sender.stop()
            if triage.fetcher is not None:
                await triage.fetcher.close()

    @app.timer(LAG_INTERVAL_S)
    async def report_lag() -> None:
        """The partitions of `posts` this process owns, and per partition the high watermark minus the next
        offset to process."""
        assigned = [tp for tp in app.consumer.assignment() if tp.topic == settings.posts_topic]
        metrics.ASSIGNED.clear()
        for tp in assigned:
            metrics.ASSIGNED.labels(tp.topic, str(tp.partition)).set(1)
        for tp in assigned:
            highwater = app.consumer.highwater(tp)
            if highwater is not None and highwater >= 0 and tp in processed:
                metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(0, highwater - processed[tp]))

    return infer


def load_model(settings: Settings) -> SentimentModel | ModelProcess:
    """In a process of its own (MODEL_PROCESS, the default: no GIL shared with Kafka and decoding) or here."""
    if settings.model_process:
        return ModelProcess(settings)
    return load_worker_model(settings)


def build_worker_app(settings: Settings) -> faust.App:
    from core.streaming.app import create_app
    from core.streaming.topics import create_topics

    # The decode threads let go of the GIL for every image (libjpeg-turbo, PIL) and must win it back from a
    # busy event loop: 1 ms instead of Python's 5 gave the tiny model's worker 1.05-1.06x posts/s in three pairs.
    sys.setswitchinterval(settings.worker_gil_switch_ms / 1000)
    app = create_app(settings.worker_group, settings)
    model = load_model(settings)
    log.info("model loaded", version=model.version, device=str(model.device), compiled=settings.model_compile,
             own_process=settings.model_process)
    metrics.MODEL_INFO.labels(model.version, str(model.device)).set(1)
    register_inference_agent(app, create_topics(app, settings), model, settings)
    return app
