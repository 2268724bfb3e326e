"""The model in its own process: the same results as in this one, and every way it can fail is told apart
(a batch it cannot score, a model it cannot load, a process that died)."""

import multiprocessing
from datetime import UTC, datetime

import numpy as np
import pytest

from core.settings import ModelSettings
from monitor.devstack.samples import sample_images
from schemas import Post
from workers.inference.child import ModelProcess, ModelProcessDied, answer
from workers.inference.model import SentimentModel
from workers.inference.predictor import Predictor

from .model_helpers import RecordingModel


@pytest.fixture(scope="module")
def model_process():
    process = ModelProcess(ModelSettings(checkpoint="untrained", device="cpu"))
    yield process
    process.close()


def test_both_models_are_predictors(model_process):
    """The worker takes either through one protocol: neither may lose a member it uses."""
    assert isinstance(model_process, Predictor)
    assert isinstance(SentimentModel.load("untrained", "cpu"), Predictor)
    assert not isinstance(object(), Predictor)


def test_same_results_as_the_model_in_this_process(model_process):
    local = SentimentModel.load("untrained", "cpu")
    images = sample_images()
    posts = [Post(post_id=f"p{i}", created_at=datetime(2026, 1, 1, tzinfo=UTC), text=f"post number {i} " * (1 + i % 4),
                  image=images[i % len(images)] if i % 2 else None, brands=["acme"]) for i in range(9)]
    decoded = [local.decode(post, 40_000_000) for post in posts]
    remote = model_process.predict(posts, [model_process.decode(post, 40_000_000) for post in posts])
    here = local.predict(posts, decoded)
    assert model_process.version == local.version and model_process.labels == local.labels
    assert [r.post_id for r in remote] == [p.post_id for p in posts]
    for a, b in zip(remote, here, strict=True):
        assert a.label == b.label and a.image_ref == b.image_ref and a.brands == b.brands
        assert a.probabilities == pytest.approx(b.probabilities, abs=1e-5)


def test_a_batch_it_cannot_score_raises_and_the_process_serves_the_next(model_process):
    post = Post(post_id="p", created_at=datetime(2026, 1, 1, tzinfo=UTC), text="fine")
    with pytest.raises(RuntimeError, match="images must be uint8") as raised:
        model_process.predict([post], [("fine", np.zeros((4, 4, 3), dtype=np.float32))])
    assert not isinstance(raised.value, ModelProcessDied)  # the worker dead-letters this batch and goes on
    assert [r.post_id for r in model_process.predict([post], [("fine", None)])] == ["p"]


def test_a_killed_model_process_raises_model_process_died():
    process = ModelProcess(ModelSettings(checkpoint="untrained", device="cpu"))
    try:
        process.process.kill()
        process.process.join()
        post = Post(post_id="p", created_at=datetime(2026, 1, 1, tzinfo=UTC), text="fine")
        with pytest.raises(ModelProcessDied, match=r"exited \(exit code -9\)"):
            process.predict([post], [("fine", None)])
    finally:
        process.close()


def test_a_model_that_cannot_load_fails_the_start(tmp_path):
    with pytest.raises(ModelProcessDied, match="failed to load"):
        ModelProcess(ModelSettings(checkpoint=str(tmp_path / "missing.pt"), device="cpu"))


def test_the_model_process_exits_when_its_worker_is_killed(tmp_path):
    """SIGKILL gives the worker no chance to stop its child: the child must notice on its own."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "worker.py"
    script.write_text(
        "import os, sys, time\n"
        "from core.settings import ModelSettings\n"
        "from workers.inference.child import ModelProcess\n"
        "if __name__ == '__main__':\n"
        "    process = ModelProcess(ModelSettings(checkpoint='untrained', device='cpu'))\n"
        "    print('child', process.process.pid, flush=True)\n"
        "    time.sleep(600)\n")
    worker = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    child = next(int(line.split()[1]) for line in worker.stdout if line.startswith("child "))
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.kill(child, signal.SIGKILL)
    pytest.fail("the model process outlived its killed worker")


def test_batches_submitted_back_to_back_come_back_in_their_own_order(model_process):
    """The worker queues batch N+1 while N is scored: each future gets its own batch's probabilities."""
    local = SentimentModel.load("untrained", "cpu")
    batches = [[(f"post {i} " * (1 + j), None) for j in range(1 + i)] for i in range(6)]  # sizes 1..6
    futures = [model_process.submit(batch) for batch in batches]
    for future, batch in zip(futures, batches, strict=True):
        np.testing.assert_allclose(future.result(timeout=30), local.score(batch), atol=1e-5)  # shapes too


def test_every_batch_pending_when_the_process_dies_fails_with_model_process_died():
    import os
    import signal

    process = ModelProcess(ModelSettings(checkpoint="untrained", device="cpu"))
    try:
        os.kill(process.process.pid, signal.SIGSTOP)  # nothing is scored: all three stay pending
        futures = [process.submit([("fine", None)]) for _ in range(3)]
        process.process.kill()
        for future in futures:
            with pytest.raises(ModelProcessDied, match=r"exited \(exit code -9\)"):
                future.result(timeout=30)
        with pytest.raises(ModelProcessDied):
            process.submit([("fine", None)])
    finally:
        process.close()


@pytest.mark.parametrize(("overlap", "expected"), [
    (True, ["start a", "start b", "collect", "start c", "collect"]),  # b fails to start: nothing to collect
    (False, ["start a", "collect", "start b", "start c", "collect"]),
])
def test_batches_are_answered_in_order_and_on_a_gpu_the_next_is_started_first(overlap, expected):
    """With every batch already in the pipe, a GPU's child starts batch N+1 before it collects batch N; a CPU's
    answers each batch before starting the next. Either way the replies come in the batches' order, a batch
    that fails in between included."""
    model = RecordingModel(overlap)
    batches = [[("a", None), ("a longer text", None)], [("b", np.zeros((4, 4, 3), dtype=np.float32))],
               [("c", None)]]
    requests_out, requests_in = multiprocessing.Pipe(duplex=False)
    replies_out, replies_in = multiprocessing.Pipe(duplex=False)
    for batch in batches:
        requests_in.send(batch)
    requests_in.close()
    answer(requests_out, replies_in, model)
    replies = [replies_out.recv() for _ in batches]
    assert model.events == expected
    assert [status for status, _ in replies] == ["ok", "error", "ok"]
    assert "images must be uint8" in replies[1][1]
    for (_, got), batch in ((replies[0], batches[0]), (replies[2], batches[2])):
        np.testing.assert_allclose(got, model.score(batch), atol=1e-6)
