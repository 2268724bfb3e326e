"""Hot swap: a worker replaces its model without losing or double-scoring a post.

The submit stage takes the serving model from `ServingModel` once per batch (`checkout`), and the batch keeps it
until its probabilities are back: batches submitted before a swap finish on the old model and their results carry
its id, later ones the new model's. Nothing is re-consumed or skipped, since offsets and acks do not change.
The old model is closed (its process ended) once no batch it took is still in flight.

Triggers (`ModelSwitch`): SIGHUP re-reads the checkpoint the worker serves (the file at that path may have been
replaced, a volume update) and swaps only if its model id changed; and the model control topic
(`core.streaming.model_control`), whose latest record for the worker's role names the checkpoint to serve, and for
a challenger the share of posts to shadow-score. A candidate is loaded and probed off the event loop
(`workers.inference.swap`); one that fails is refused, logged and counted, and the old model keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future

from core import metrics
from core.logging import get_logger
from core.settings import Settings
from core.streaming.model_control import follow_assignments, in_share, read_assignments
from schemas import ModelAssignment, ModelRole, Post
from workers.inference.model import Decoded
from workers.inference.predictor import Predictor
from workers.inference.swap import (
    ModelRefused,
    checkpoint_holds,
    close_model,
    fit_images,
    load_candidate,
    open_model,
)
from workers.radm import RADMConfig

log = get_logger(__name__)

STARTUP_READ_TIMEOUT_S = 20.0
RETIRE_TIMEOUT_S = 300.0
FOLLOW_RETRY_S = 5.0


class ServingModel:
    """The model the submit stage scores with now, and how many batches each model still has in flight.

    Also what triage decodes with (`decode`, `config`): decoding follows the serving model, and a batch decoded
    just before a swap is fitted to the new model's image size at submit (`fit_images`)."""

    def __init__(self, model: Predictor) -> None:
        self.current = model
        self._lock = threading.Lock()
        self._in_flight: dict[int, int] = {}

    @property
    def config(self) -> RADMConfig:
        return self.current.config

    def decode(self, post: Post, max_pixels: int) -> Decoded:
        return self.current.decode(post, max_pixels)

    def submit(self, decoded: Sequence[Decoded]) -> tuple[Predictor, Future[list[list[float]]]]:
        """Queue a batch on the serving model; returns that model (the batch's results carry its id) and the
        batch's probabilities. The model counts the batch as in flight until the future resolves."""
        with self._lock:
            model = self.current
            self._in_flight[id(model)] = self._in_flight.get(id(model), 0) + 1
        try:
            future = model.submit(fit_images(decoded, model.config.image_size))
        except BaseException:
            self._release(model)
            raise
        future.add_done_callback(lambda _: self._release(model))
        return model, future

    def _release(self, model: Predictor) -> None:
        with self._lock:
            left = self._in_flight[id(model)] - 1
            if left:
                self._in_flight[id(model)] = left
            else:
                del self._in_flight[id(model)]

    def busy(self, model: Predictor) -> bool:
        """Whether a batch submitted to `model` has not been answered yet."""
        with self._lock:
            return id(model) in self._in_flight

    def replace(self, model: Predictor) -> Predictor:
        """Serve `model` from the next batch on; returns the model it replaces."""
        with self._lock:
            old, self.current = self.current, model
        return old


class ModelSwitch:
    """Which model a worker serves, and the triggers that change it: SIGHUP and its role's control records.

    `applied` is the control record the serving model came from (None: MODEL_CHECKPOINT); `checkpoint` and
    `expected_id` are what SIGHUP re-reads and requires. A challenger's `share` follows its records at once."""

    def __init__(self, model: Predictor, settings: Settings, checkpoint: str | None = None,
                 applied: ModelAssignment | None = None, follow: bool = False) -> None:
        self.serving = ServingModel(model)
        self.settings = settings
        self.role = ModelRole(settings.model.role)
        self.checkpoint = checkpoint or settings.model.checkpoint
        self.applied = applied
        self.expected_id = applied.model_id if applied is not None else None
        self.last_seen = applied
        """The last record for this role acted on (applied or refused): a record seen again changes nothing."""
        self.share = settings.model.shadow_share
        if applied is not None and applied.share is not None:
            self.share = applied.share
        self.follow = follow
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task] = set()
        self._follower: asyncio.Task | None = None
        self._previous_sighup: signal.Handlers | Callable | int | None = None
        self._report_serving()

    @property
    def challenger(self) -> bool:
        return self.role is ModelRole.CHALLENGER

    def selects(self, post: Post) -> bool:
        """A challenger scores only its share of posts (by post id); see `core.streaming.model_control.in_share`."""
        return in_share(post.post_id, self.share)

    def _report_serving(self) -> None:
        model = self.serving.current
        metrics.SERVING_MODEL.clear()
        metrics.SERVING_MODEL.labels(self.role.value, model.version).set(1)
        metrics.MODEL_INFO.clear()
        metrics.MODEL_INFO.labels(model.version, str(model.device)).set(1)
        metrics.SHADOW_SHARE.set(self.share if self.challenger else 1.0)

    async def start(self) -> None:
        """On the worker's event loop: SIGHUP reloads, and the control topic is followed (with `follow`)."""
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread, or Windows
            previous = signal.getsignal(signal.SIGHUP)
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._on_sighup)
            self._previous_sighup = previous
        if self.follow:
            self._follower = asyncio.create_task(self._follow(), name="model-control")

    async def stop(self) -> None:
        """Stop following; wait for old models to be closed (they finish their batches first)."""
        if self._previous_sighup is not None:  # not the default action back: a late SIGHUP must not kill the worker
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
                signal.signal(signal.SIGHUP, self._previous_sighup)
            self._previous_sighup = None
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=RETIRE_TIMEOUT_S)

    def _spawn(self, coroutine) -> asyncio.Task:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _on_sighup(self) -> None:
        log.info("SIGHUP: re-reading the model checkpoint", checkpoint=self.checkpoint)
        self._spawn(self.reload("SIGHUP"))

    async def _follow(self) -> None:
        """Apply this role's control records for as long as the worker runs; a lost broker is retried."""
        while True:
            try:
                async for assignments in follow_assignments(self.settings):
                    if self.role in assignments:
                        await self.apply(assignments[self.role])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - following must outlive a broker restart
                log.warning("model control topic unreadable; retrying", error=repr(exc), retry_s=FOLLOW_RETRY_S)
                await asyncio.sleep(FOLLOW_RETRY_S)

    async def apply(self, assignment: ModelAssignment) -> str:
        """Serve what a control record for this role says: its share at once, its checkpoint once loaded and
        checked (`swap_to`'s outcome). A record already acted on changes nothing, and one naming the model already
        serving (its file unchanged) is adopted without loading it."""
        if assignment == self.last_seen:
            return "seen"
        self.last_seen = assignment
        if self.challenger and assignment.share is not None and assignment.share != self.share:
            log.info("shadow share changed", old=self.share, new=assignment.share)
            self.share = assignment.share
            metrics.SHADOW_SHARE.set(self.share)
        current = self.serving.current.version
        if assignment.model_id in (None, current) and await asyncio.to_thread(
                checkpoint_holds, assignment.checkpoint, current):
            self.applied, self.checkpoint, self.expected_id = assignment, assignment.checkpoint, assignment.model_id
            metrics.MODEL_SWAPS.labels("unchanged").inc()
            log.info("assigned model already serving", role=self.role.value, checkpoint=assignment.checkpoint,
                     model_id=current)
            return "unchanged"
        outcome = await self.swap_to(assignment.checkpoint, assignment.model_id, "control topic")
        if outcome != "refused":
            self.applied = assignment
        return outcome

    async def reload(self, reason: str) -> str:
        """Re-read the checkpoint served now; swap only if the file holds another model (`swap_to`'s outcome)."""
        if await asyncio.to_thread(checkpoint_holds, self.checkpoint, self.serving.current.version):
            metrics.MODEL_SWAPS.labels("unchanged").inc()
            log.info("model checkpoint unchanged; nothing to swap", reason=reason, checkpoint=self.checkpoint,
                     model_id=self.serving.current.version)
            return "unchanged"
        return await self.swap_to(self.checkpoint, self.expected_id, reason)

    async def swap_to(self, checkpoint: str, expected_id: str | None, reason: str) -> str:
        """Load and check `checkpoint` on a thread, then serve it from the next batch on and retire the old model.
        Returns `swapped`, `unchanged` (it holds the model already serving) or `refused` (logged, counted)."""
        async with self._lock:
            old = self.serving.current
            settings = self.settings
            try:
                new = await asyncio.to_thread(load_candidate, settings.model, checkpoint, expected_id,
                                              settings.worker.max_image_pixels, settings.runtime.log_level,
                                              settings.runtime.log_json)
            except ModelRefused as exc:
                metrics.MODEL_SWAPS.labels("refused").inc()
                log.error("model swap refused; the old model keeps serving", reason=reason, checkpoint=checkpoint,
                          expected_id=expected_id, serving=old.version, error=str(exc))
                return "refused"
            self.checkpoint, self.expected_id = checkpoint, expected_id
            if new.version == old.version:
                metrics.MODEL_SWAPS.labels("unchanged").inc()
                log.info("the checkpoint holds the model already serving; kept", reason=reason,
                         checkpoint=checkpoint, model_id=old.version)
                await asyncio.to_thread(close_model, new)
                return "unchanged"
            self.serving.replace(new)
            metrics.MODEL_SWAPS.labels("swapped").inc()
            self._report_serving()
            log.info("model swapped", reason=reason, role=self.role.value, old=old.version, new=new.version,
                     checkpoint=checkpoint)
            self._spawn(self._retire(old))
            return "swapped"

    async def _retire(self, model: Predictor) -> None:
        """Close `model` once every batch it took is answered (their results carry its id)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RETIRE_TIMEOUT_S
        while self.serving.busy(model) and loop.time() < deadline:
            await asyncio.sleep(0.05)
        if self.serving.busy(model):
            log.warning("old model still has batches in flight; closing it anyway", model_id=model.version)
        await asyncio.to_thread(close_model, model)
        log.info("old model closed", model_id=model.version)


def serving_at_start(settings: Settings) -> ModelSwitch:
    """The model a worker starts with: its role's latest control record if there is one (so a restart does not
    undo a promotion), else MODEL_CHECKPOINT. A control topic that cannot be read, or a record whose checkpoint is
    refused, leaves MODEL_CHECKPOINT serving (logged); the follower applies the record once it can."""
    role = ModelRole(settings.model.role)
    assignment: ModelAssignment | None = None
    try:
        assignment = asyncio.run(asyncio.wait_for(read_assignments(settings, STARTUP_READ_TIMEOUT_S),
                                                  2 * STARTUP_READ_TIMEOUT_S)).get(role)
    except Exception as exc:  # noqa: BLE001 - a worker must start without the control topic
        log.warning("model control topic unreadable at start; serving MODEL_CHECKPOINT", error=repr(exc))
    log_level, log_json = settings.runtime.log_level, settings.runtime.log_json
    if assignment is not None:
        try:
            model = load_candidate(settings.model, assignment.checkpoint, assignment.model_id,
                                   settings.worker.max_image_pixels, log_level, log_json)
        except ModelRefused as exc:
            metrics.MODEL_SWAPS.labels("refused").inc()
            log.error("assigned model refused at start; serving MODEL_CHECKPOINT", role=role.value,
                      checkpoint=assignment.checkpoint, expected_id=assignment.model_id, error=str(exc))
        else:
            log.info("serving the control topic's assignment", role=role.value, checkpoint=assignment.checkpoint,
                     model_id=model.version)
            return ModelSwitch(model, settings, assignment.checkpoint, assignment, follow=True)
    switch = ModelSwitch(open_model(settings.model, log_level, log_json), settings, follow=True)
    switch.last_seen = assignment  # a refused record is not retried until a new one arrives
    if assignment is not None and assignment.share is not None and switch.challenger:
        switch.share = assignment.share
        switch._report_serving()
    return switch
