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

The model can be replaced while the worker runs (`workers.agent.model_switch`): each batch is scored by the model
that serves when it is submitted, and its results carry that model's id. A challenger worker (MODEL_ROLE) scores
only its share of posts, into the shadow topic, and writes no dead letters.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

import faust

from core import metrics
from core.logging import get_logger
from core.settings import Settings
from core.streaming.dead_letters import dead_letter, dead_letter_headers
from core.streaming.topics import Topics
from schemas import DeadLetter, SentimentResult
from schemas.reasons import ReasonCode
from workers.agent.batching import BatchPipeline
from workers.agent.delivery import BatchSender
from workers.agent.model_switch import ModelSwitch
from workers.agent.triage import Prepared, Triage
from workers.inference.child import ModelProcessDied
from workers.inference.model import sentiment_results
from workers.inference.predictor import Predictor

log = get_logger(__name__)

LAG_INTERVAL_S = 5.0


@dataclass
class Submitted:
    """A batch in the model's hands: `probabilities` resolves when it is scored (None: nothing to score)."""

    prepared: Prepared
    probabilities: Future[list[list[float]]] | None
    started: float
    model: Predictor | None = None
    """The model the batch was submitted to: its results carry its id, whatever serves by then."""


@dataclass
class Produced:
    """A batch whose results and dead letters are with the producer: `pending` resolve on the broker's acks."""

    pending: list[Awaitable]
    scored: int
    dead: list[DeadLetter]
    started: float
    skipped: int = 0


class InferenceAgent:
    """The worker's Faust agent: the stages of `BatchPipeline` as methods, and a timer that reports consumer lag.

    Events are acked (their offsets committable) only after their results and dead letters are delivered, by
    `sender` (by default a `BatchSender` the agent starts and stops).

    `switch` holds the serving model and what may replace it (SIGHUP, the control topic); without one the agent
    serves `model` for good."""

    def __init__(self, app: faust.App, topics: Topics, model: Predictor, settings: Settings,
                 sender: BatchSender | None = None, switch: ModelSwitch | None = None) -> None:
        self.app, self.topics, self.settings = app, topics, settings
        self.switch = switch or ModelSwitch(model, settings)
        self.serving = self.switch.serving
        self.challenger = self.switch.challenger
        self.results_topic = (topics.shadow if self.challenger else topics.sentiment).get_topic_name()
        self.triage = Triage(self.serving, settings, self.switch.selects if self.challenger else None)
        self.sender = sender or BatchSender(settings)
        self.processed: dict = {}
        """Per partition (TP), the next offset to process: the lag gauge's low end."""

    def register(self) -> faust.types.AgentT:
        """Attach the agent and the lag timer to the app; returns the Faust agent."""
        self.app.timer(LAG_INTERVAL_S)(self.report_lag)
        return self.app.agent(self.topics.posts, name="infer")(self.run)

    async def run(self, stream: faust.StreamT) -> None:
        stages = [self.prepare, self.fetch, self.submit, self.produce, self.confirm]
        pipeline = BatchPipeline(self.settings.worker.max_batch, self.settings.worker.max_wait_s, stages,
                                 metrics.observe_stage)
        await self.sender.start()
        await self.switch.start()
        try:
            await pipeline.run(stream.noack().events())
        finally:
            await self.switch.stop()
            await self.sender.stop()
            if self.triage.fetcher is not None:
                await self.triage.fetcher.close()

    async def prepare(self, events: Sequence[faust.EventT], _: None) -> Prepared:
        metrics.observe_queue_wait(metrics.QUEUE_WAIT, events, time.time())
        metrics.BATCH_SIZE.observe(len(events))
        with metrics.DECODE_SECONDS.time():
            prepared = await asyncio.to_thread(self.triage, events)
        self.triage.start_fetching(prepared)
        return prepared

    async def fetch(self, events: Sequence[faust.EventT], prepared: Prepared) -> Prepared:
        """The batch's linked images, arrived and decoded: a stage of its own, so that the network overlaps the
        next batches' parsing, decoding and fetching. Batches without links pass straight through."""
        await self.triage.add_linked(prepared)
        return prepared

    def submit(self, events: Sequence[faust.EventT], prepared: Prepared) -> Submitted:
        """Hand the usable posts to the model: returns once the batch is queued there (in its own process) or
        scored (in this one)."""
        started = time.perf_counter()
        if not prepared.posts:
            return Submitted(prepared, None, started)
        model, probabilities = self.serving.submit(prepared.decoded)
        return Submitted(prepared, probabilities, started, model)

    async def scored(self, submitted: Submitted) -> tuple[list[SentimentResult], list[DeadLetter]]:
        prepared = submitted.prepared
        if submitted.probabilities is None or submitted.model is None:
            return [], prepared.dead
        try:
            probabilities = await asyncio.wrap_future(submitted.probabilities)
        except ModelProcessDied:
            raise  # the model process died: crash and restart, never dead-letter good posts for it
        except Exception as exc:  # noqa: BLE001 - a raising batch would be acked and lost; keep it in the DLQ
            log.exception("inference failed for a batch")
            failed = [dead_letter(e, ReasonCode.INFERENCE_FAILED, f"inference failed: {exc!r}")
                      for e in prepared.usable]
            return [], prepared.dead + failed
        metrics.MODEL_SECONDS.observe(time.perf_counter() - submitted.started)
        model = submitted.model
        return sentiment_results(prepared.posts, probabilities, model.labels, model.version, submitted.started,
                                 prepared.thumbnails, prepared.languages, model.config.languages), prepared.dead

    async def produce(self, events: Sequence[faust.EventT], submitted: Submitted) -> Produced:
        """Await the batch's probabilities, then hand its results and dead letters to the producer; the next
        stage awaits the broker."""
        results, dead = await self.scored(submitted)
        started = time.perf_counter()
        pending = await self.sender.send(self.results_topic,
                                         [(r.post_id.encode(), r.model_dump_json().encode()) for r in results])
        if not self.challenger:  # the champion dead-letters every post; a challenger's letters would repeat them
            pending += await self.sender.send(self.topics.dlq.get_topic_name(),
                                              [(d.key, d.model_dump_json().encode()) for d in dead],
                                              [dead_letter_headers(d) for d in dead])
        return Produced(pending, len(results), dead, started, submitted.prepared.skipped)

    async def confirm(self, events: Sequence[faust.EventT], produced: Produced) -> None:
        """Await the broker's acknowledgements, then ack the events: only now may their offsets be committed."""
        await asyncio.gather(*produced.pending)
        metrics.DELIVERY_SECONDS.observe(time.perf_counter() - produced.started)
        for event in events:
            event.ack()
            tp = event.message.tp
            self.processed[tp] = max(self.processed.get(tp, 0), event.message.offset + 1)
        metrics.POSTS.labels("scored").inc(produced.scored)
        if self.challenger:
            metrics.POSTS.labels("skipped").inc(produced.skipped)
            metrics.POSTS.labels("dropped").inc(len(produced.dead))
            for letter in produced.dead:
                metrics.SHADOW_DEAD_LETTERS.labels(letter.code).inc()
                log.info("post not shadow-scored (the champion dead-letters it)", code=letter.code,
                         reason=letter.reason, partition=letter.partition, offset=letter.offset)
            log.debug("batch done", results=produced.scored, dropped=len(produced.dead), skipped=produced.skipped)
            return
        metrics.POSTS.labels("dead_letter").inc(len(produced.dead))
        for letter in produced.dead:
            metrics.DEAD_LETTERS.labels(letter.code).inc()
            log.warning("post sent to dead-letter topic", code=letter.code, reason=letter.reason,
                        partition=letter.partition, offset=letter.offset)
        log.debug("batch done", results=produced.scored, dead=len(produced.dead))

    async def report_lag(self) -> None:
        """The partitions of `posts` this process owns, and per partition the high watermark minus the next
        offset to process."""
        consumer = self.app.consumer
        assigned = [tp for tp in consumer.assignment() if tp.topic == self.settings.kafka.posts_topic]
        metrics.ASSIGNED.clear()
        for tp in assigned:
            metrics.ASSIGNED.labels(tp.topic, str(tp.partition)).set(1)
        for tp in assigned:
            highwater = consumer.highwater(tp)
            if highwater is not None and highwater >= 0 and tp in self.processed:
                metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(0, highwater - self.processed[tp]))


def register_inference_agent(app: faust.App, topics: Topics, model: Predictor, settings: Settings,
                             sender: BatchSender | None = None, switch: ModelSwitch | None = None
                             ) -> faust.types.AgentT:
    """Attach an `InferenceAgent` to `app`; returns the Faust agent."""
    return InferenceAgent(app, topics, model, settings, sender, switch).register()
