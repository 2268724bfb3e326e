"""The model in a process of its own, so it never waits for the GIL.

A worker's event loop (Faust, aiokafka) and its decode threads hold the GIL much of the time, and a
PyTorch forward pass takes and releases the GIL around every operator, so a small model in the
worker's process spends much of its time waiting (docs/performance.md). Here
the model runs in a spawned child process joined to the worker by two pipes: the worker sends each
batch's texts and decoded images (uint8, see `decode_image`) and gets label probabilities
back, then assembles the results itself.

Batches are pipelined: `submit` writes a batch to the pipe and returns a future at once, so the worker
can hand over batch N+1 while the child still scores batch N, and the child starts on it without
waiting for the worker between batches (for its reply to be read, the results built and the next batch
sent, each behind the worker's GIL); on a GPU it encodes and queues N+1 before it collects N (`answer`).
One reply thread reads the probabilities back in the order the batches went in. On a small CPU host the
cores are the limit and this gains nothing (docs/performance.md); the idle gaps it removes matter where the
model is a GPU's.
A `ProcessPoolExecutor` would hand every batch through two more threads (its queue manager and its
feeder), each of which must win the GIL first.
The child ignores SIGINT/SIGTERM/SIGHUP: the worker finishes its in-flight batches and then closes the request
pipe. If the worker is SIGKILLed, the kernel closes its end of the pipe and the child exits on the EOF.
The pipes are one-way each, so closing the request pipe never races the reply thread's blocked read: the
child's exit closes the reply pipe, which ends that thread.
If the child dies, every pending future (and any later `submit`) raises `ModelProcessDied` and the
worker crashes (it is restarted and its uncommitted posts are redelivered) instead of dead-lettering
good posts.
"""

from __future__ import annotations

import atexit
import multiprocessing
import signal
import threading
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from multiprocessing.connection import Connection
from typing import Any

import torch

from core.logging import configure_logging, get_logger
from core.settings import ModelSettings
from schemas import Post, SentimentResult
from workers.inference.model import (
    Decoded,
    Queued,
    SentimentModel,
    decode_post,
    schema_labels,
    sentiment_results,
)
from workers.inference.runtime import load_worker_model
from workers.radm import RADMConfig

log = get_logger(__name__)

JOIN_TIMEOUT_S = 10.0


class ModelProcessDied(RuntimeError):
    """The model process is gone (killed, out of memory, failed to load): the worker must crash, not
    dead-letter the batch."""


Outcome = Queued | Exception
"""A batch in the child: its work queued on the device, or why it could not be."""


def _serve(requests: Connection, replies: Connection, settings: ModelSettings, log_level: str,
           log_json: bool) -> None:
    """The child: load the model, then `answer` batches until the request pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker decides when this process stops
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # SIGHUP is the worker's: reload its checkpoint
    configure_logging(log_level, log_json)
    try:
        model = load_worker_model(settings)
    except Exception as exc:  # noqa: BLE001 - reported to the worker, which fails to start with it
        replies.send(("failed", f"{exc!r}"))
        return
    replies.send(("ok", {"config": model.config.to_dict(), "version": model.version, "device": str(model.device),
                      "threads": torch.get_num_threads()}))
    answer(requests, replies, model)


def answer(requests: Connection, replies: Connection, model: SentimentModel) -> None:
    """Answer the batches in order until the request pipe closes (or the reply pipe breaks).

    On a GPU, while the device computes a batch, the next one, if already in the pipe, is encoded and queued
    behind it (`SentimentModel.start`) before the first is collected: the GPU does not idle while the host
    tokenises. With nothing waiting, or on a CPU (where queueing a batch is computing it), a batch is answered
    at once.
    """
    queued: Outcome | None = None
    while True:
        if queued is not None and not (model.asynchronous and requests.poll()):
            if not _reply(replies, model, queued):
                return
            queued = None
            continue
        try:
            decoded: list[Decoded] = requests.recv()
        except (EOFError, OSError):  # the worker closed the pipe, or died
            if queued is not None:
                _reply(replies, model, queued)
            return
        try:
            started: Outcome = model.start(decoded)
        except Exception as exc:  # noqa: BLE001 - one batch's failure is the worker's to handle (DLQ)
            started = exc
        if queued is not None and not _reply(replies, model, queued):
            return
        queued = started


def _reply(replies: Connection, model: SentimentModel, outcome: Outcome) -> bool:
    """Send a batch's probabilities (or its error) to the worker; False when the worker is gone."""
    reply: tuple[str, Any] = ("error", f"{outcome!r}")
    if not isinstance(outcome, Exception):
        try:
            reply = ("ok", model.collect(outcome).tolist())
        except Exception as exc:  # noqa: BLE001 - one batch's failure is the worker's to handle (DLQ)
            reply = ("error", f"{exc!r}")
    try:
        replies.send(reply)
    except (BrokenPipeError, OSError):
        return False
    return True


class ModelProcess:
    """What the worker needs of a model (config, labels, version, device, decode, predict), served by a child
    process that owns the network."""

    def __init__(self, settings: ModelSettings, log_level: str = "INFO", log_json: bool = False) -> None:
        """Only the model's settings (and how to log) cross into the child: nothing else of the worker's."""
        started = time.perf_counter()
        context = multiprocessing.get_context("spawn")
        child_requests, self.requests = context.Pipe(duplex=False)
        self.replies, child_replies = context.Pipe(duplex=False)
        self.process = context.Process(target=_serve, name="radm-model",
                                       args=(child_requests, child_replies, settings, log_level, log_json))
        self.process.start()
        child_requests.close()  # only the child holds these now: its death reads as EOF here, and ours there
        child_replies.close()
        self.lock = threading.Lock()
        """One writer at a time, so `pending` is in the order the batches enter the pipe."""
        self.pending: deque[Future[list[list[float]]]] = deque()
        """Futures of the batches in the pipe or in the child, oldest first: replies come back in this order."""
        self.dead: ModelProcessDied | None = None
        atexit.register(self.close)  # before multiprocessing's own exit hook, which would wait for the child
        try:
            info = self._receive()
        except RuntimeError as exc:
            self.close()
            raise ModelProcessDied(f"the model process failed to load the model: {exc}") from None
        self.config = RADMConfig.from_dict(info["config"])
        self.labels = schema_labels(self.config)
        self.version: str = info["version"]
        self.device = torch.device(info["device"])
        self.reader = threading.Thread(target=self._read_replies, name="radm-model-replies", daemon=True)
        self.reader.start()
        log.info("model process ready", seconds=round(time.perf_counter() - started, 1), threads=info["threads"],
                 pid=self.process.pid)

    def _died(self) -> ModelProcessDied:
        """The error for a child that is gone, with its exit code (negative: the signal that killed it)."""
        self.process.join(1.0)  # reap it, for the exit code
        deadline = time.monotonic() + 1.0
        while self.process.exitcode is None and time.monotonic() < deadline:
            time.sleep(0.01)  # another thread's join reaped it first: its exit code lands in a moment
        return ModelProcessDied(f"the model process exited (exit code {self.process.exitcode})")

    def _receive(self) -> Any:
        try:
            status, payload = self.replies.recv()
        except (EOFError, OSError):
            raise self._died() from None
        if status != "ok":
            raise RuntimeError(payload)
        return payload

    def _read_replies(self) -> None:
        """Resolve the oldest pending future with each reply; when the child is gone, fail every pending one."""
        while True:
            try:
                status, payload = self.replies.recv()
            except (EOFError, OSError):
                break
            future = self.pending.popleft()
            if status == "ok":
                future.set_result(payload)
            else:
                future.set_exception(RuntimeError(payload))
        died = self._died()
        with self.lock:
            self.dead = died
            while self.pending:
                self.pending.popleft().set_exception(died)

    def decode(self, post: Post, max_pixels: int) -> Decoded:
        return decode_post(post, self.config.image_size, max_pixels)

    def submit(self, decoded: Sequence[Decoded]) -> Future[list[list[float]]]:
        """Hand a batch to the child; the future resolves to its label probabilities (RuntimeError if the child
        failed on it, ModelProcessDied if the child is gone). Blocks only while the pipe is full."""
        future: Future[list[list[float]]] = Future()
        with self.lock:
            if self.dead is not None:
                raise self.dead
            self.pending.append(future)  # before the send: the reply may come back before send returns
            try:
                self.requests.send(list(decoded))
            except (BrokenPipeError, OSError):
                self.pending.remove(future)
                raise self._died() from None
        return future

    def predict(self, posts: Sequence[Post], decoded: Sequence[Decoded]) -> list[SentimentResult]:
        """Raises ModelProcessDied if the child is gone, RuntimeError if it failed on this batch."""
        started = time.perf_counter()
        probabilities = self.submit(decoded).result()
        return sentiment_results(posts, probabilities, self.labels, self.version, started)

    def close(self) -> None:
        """Close the request pipe (the child exits on the EOF, after the batches already in it) and wait for
        the child, then for the reply thread, which its exit ends."""
        atexit.unregister(self.close)
        self.requests.close()
        self.process.join(JOIN_TIMEOUT_S)
        if self.process.is_alive():
            log.warning("model process did not exit in time; killing it", pid=self.process.pid)
            self.process.kill()
            self.process.join()
        if hasattr(self, "reader"):  # not started when the model failed to load
            self.reader.join(JOIN_TIMEOUT_S)
        self.replies.close()
