"""The model in a process of its own, so it never waits for the GIL.

A worker's event loop (Faust, aiokafka) and its decode threads hold the GIL much of the time, and a
PyTorch forward pass takes and releases the GIL around every operator, so a small model in the
worker's process spends much of its time waiting (README, "Performance": 1.11x from moving it). Here
the model runs in a spawned child process joined to the worker by one pipe: the worker sends each
batch's texts and decoded images (uint8, see `decode_image`) and gets label probabilities
back, then assembles the results itself. The calling thread writes and reads the pipe itself: a
`ProcessPoolExecutor` would hand every batch through two more threads (its queue manager and its
feeder), each of which must win the GIL back from the busy event loop first (README, "Performance").
The child ignores SIGINT/SIGTERM: the worker finishes its in-flight batches and then closes the pipe.
If the worker is SIGKILLed, the kernel closes its end of the pipe and the child exits on the EOF.
If the child dies, `predict` raises `ModelProcessDied` and the worker crashes (it is restarted and
its uncommitted posts are redelivered) instead of dead-lettering good posts.
"""

from __future__ import annotations

import atexit
import multiprocessing
import signal
import threading
import time
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

import torch

from monitor.logging import configure_logging, get_logger
from monitor.settings import Settings
from schemas import Post, SentimentResult
from workers.inference import (
    Decoded,
    decode_post,
    load_worker_model,
    schema_labels,
    sentiment_results,
)
from workers.radm import RADMConfig

log = get_logger(__name__)

JOIN_TIMEOUT_S = 10.0


class ModelProcessDied(RuntimeError):
    """The model process is gone (killed, out of memory, failed to load): the worker must crash, not
    dead-letter the batch."""


def _serve(conn: Connection, settings: Settings) -> None:
    """The child's main loop: load the model, then answer one batch at a time until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker decides when this process stops
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    configure_logging(settings.log_level, settings.log_json)
    try:
        model = load_worker_model(settings)
    except Exception as exc:  # noqa: BLE001 - reported to the worker, which fails to start with it
        conn.send(("failed", f"{exc!r}"))
        return
    conn.send(("ok", {"config": model.config.to_dict(), "version": model.version, "device": str(model.device),
                      "threads": torch.get_num_threads()}))
    while True:
        try:
            decoded: list[Decoded] = conn.recv()
        except (EOFError, OSError):  # the worker closed the pipe, or died
            return
        try:
            reply: tuple[str, Any] = ("ok", model.score(decoded))
        except Exception as exc:  # noqa: BLE001 - one batch's failure is the worker's to handle (DLQ)
            reply = ("error", f"{exc!r}")
        try:
            conn.send(reply)
        except (BrokenPipeError, OSError):
            return


class ModelProcess:
    """What the worker needs of a model (config, labels, version, device, decode, predict), served by a child
    process that owns the network."""

    def __init__(self, settings: Settings) -> None:
        started = time.perf_counter()
        context = multiprocessing.get_context("spawn")
        self.conn, child_end = context.Pipe()
        self.process = context.Process(target=_serve, args=(child_end, settings), name="radm-model")
        self.process.start()
        child_end.close()  # only the child holds it now: its death reads as EOF here
        self.lock = threading.Lock()
        """One batch on the pipe at a time, whichever thread asks."""
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
        log.info("model process ready", seconds=round(time.perf_counter() - started, 1), threads=info["threads"],
                 pid=self.process.pid)

    def _died(self) -> ModelProcessDied:
        self.process.join(1.0)  # reap it, for the exit code (negative: the signal that killed it)
        return ModelProcessDied(f"the model process exited (exit code {self.process.exitcode})")

    def _receive(self) -> Any:
        try:
            status, payload = self.conn.recv()
        except (EOFError, OSError):
            raise self._died() from None
        if status != "ok":
            raise RuntimeError(payload)
        return payload

    def decode(self, post: Post, max_pixels: int) -> Decoded:
        return decode_post(post, self.config.image_size, max_pixels)

    def predict(self, posts: Sequence[Post], decoded: Sequence[Decoded]) -> list[SentimentResult]:
        """Raises ModelProcessDied if the child is gone, RuntimeError if it failed on this batch."""
        started = time.perf_counter()
        with self.lock:
            try:
                self.conn.send(list(decoded))
            except (BrokenPipeError, OSError):
                raise self._died() from None
            probabilities = self._receive()
        return sentiment_results(posts, probabilities, self.labels, self.version, started)

    def close(self) -> None:
        """Close the pipe (the child exits on the EOF, after the batch it is on) and wait for the child."""
        atexit.unregister(self.close)
        self.conn.close()
        self.process.join(JOIN_TIMEOUT_S)
        if self.process.is_alive():
            log.warning("model process did not exit in time; killing it", pid=self.process.pid)
            self.process.kill()
            self.process.join()
