"""`monitor bench worker`: posts/s from Kafka to `sentiment` through a real `monitor worker` process.

Per run, fresh topics are filled with the same posts (JSON, 224 px JPEG photos on `image_share` of them:
inline, or with `linked_images` as links to an HTTP server on this host), then one worker process (the
production command) drains the backlog. Its rate is read from the broker timestamps of the results it
produced, between the 10th and the 90th percentile of them, so process start-up, model loading and the
group join are not counted. Measured in one run:

- the worker at `WORKER_MAX_BATCH=batch_size` against the same worker at batch size 1 (micro-batching);
- the model alone (`benchmarks.model.posts_per_s` on already-decoded posts, same batch size, in this process,
  while no worker runs) -> pipeline overhead = worker posts/s / model posts/s: what Kafka, JSON parsing
  and image decoding cost.

The worker is the production command, `monitor worker --concurrency N` (one host). The report also gives
its mean time per stage (decode, model, delivery per batch; queue wait per post) from its /metrics, and
the CPU milliseconds per post of its own processes, its model processes and the embedded broker over the
steady part of the run: when every core is busy, the ratio is bounded by those, not by any one stage.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil
import torch
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from tqdm import tqdm

from benchmarks.image_server import image_server
from benchmarks.model import PRESETS, bench_posts, checkpoint_file, load_model, load_onnx_model, posts_per_s
from benchmarks.report import (
    counts,
    device_name,
    host_info,
    pipeline_stage_ms,
    scrape,
    stage_means,
    write_report,
)
from core.logging import get_logger
from core.process import free_port
from core.settings import Settings
from core.streaming.topics import ensure_topics
from monitor.devstack.embedded.stack import TANSU_CONSUMER_ENV, broker_server
from schemas import Post

log = get_logger(__name__)

PARTITIONS = 4


def parse_cpus(text: str) -> frozenset[int]:
    """'1', '0,2' or '2-3' -> the CPU numbers (as `taskset -c` reads them)."""
    cpus: set[int] = set()
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        first, _, last = part.partition("-")
        cpus.update(range(int(first), int(last or first) + 1))
    return frozenset(cpus)


def pin_this_process(cpus: frozenset[int]) -> None:
    """Every thread of this process on `cpus`; processes started afterwards inherit it (Linux sets affinity per
    thread, so one call for the process would leave its other threads where they were)."""
    for thread in os.listdir("/proc/self/task"):
        with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
            os.sched_setaffinity(int(thread), cpus)


@contextlib.contextmanager
def broker(bootstrap: str | None, kind: str = "tansu",
           cpus: frozenset[int] | None = None) -> Iterator[tuple[str, int | None]]:
    """KAFKA_BOOTSTRAP when set, otherwise a private embedded broker of `kind` (EMBEDDED_BROKER: Tansu or Apache
    Kafka) for the benchmark's lifetime: (bootstrap address, the embedded broker's pid or None).

    With `cpus`, the broker runs on those CPUs and this process, the worker and its model processes on the others:
    as on a production host, where the brokers are other machines, so the worker's rate does not depend on how
    much CPU the broker itself burns."""
    if bootstrap:
        yield bootstrap, None
        return

    server = broker_server(kind, Path(tempfile.mkdtemp(prefix="bench-worker-")))
    if cpus:
        everything = frozenset(os.sched_getaffinity(0))
        rest = everything - cpus
        if not cpus <= everything or not rest:
            raise ValueError(f"--broker-cpus {sorted(cpus)}: must be some, not all, of this host's CPUs "
                             f"{sorted(everything)}")
        pin_this_process(cpus)
        try:
            server.start()
        finally:
            pin_this_process(rest)
    else:
        server.start()
    try:
        yield f"127.0.0.1:{server.port}", server.pid
    finally:
        server.stop()


class CpuMeter:
    """CPU seconds per post of each part of a run, between two marks: the worker's own processes (Faust,
    aiokafka, parsing, decoding, producing), its model processes, and the embedded broker. On a host whose
    cores are all busy, these say what the pipeline costs next to the model, whatever the wall clock says."""

    def __init__(self, worker_pid: int, broker_pid: int | None) -> None:
        self.worker = psutil.Process(worker_pid)
        self.broker = psutil.Process(broker_pid) if broker_pid else None
        self.marks: list[tuple[int, dict[str, float]]] = []

    def _cpu_seconds(self) -> dict[str, float]:
        parts = {"pipeline": 0.0, "model": 0.0}
        for process in [self.worker, *self.worker.children(recursive=True)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                times = process.cpu_times()
                # model processes are multiprocessing's spawned children (workers.inference.child)
                part = "model" if "multiprocessing.spawn" in " ".join(process.cmdline()) else "pipeline"
                parts[part] += times.user + times.system
        if self.broker is not None:
            times = self.broker.cpu_times()
            parts["broker"] = times.user + times.system
        return parts

    def mark(self, posts_done: int) -> None:
        self.marks.append((posts_done, self._cpu_seconds()))

    def ms_per_post(self, expected: int) -> dict[str, float]:
        """Over the steady part: from the first mark past 10% of the `expected` results to the first past 90%.
        When one fetch brought both (the embedded broker answers fetches on its own schedule), from the first
        results instead; empty (not measured) when every result came in one fetch."""
        start = next((mark for mark in self.marks if mark[0] > 0.1 * expected), None)
        end = next((mark for mark in self.marks if mark[0] > 0.9 * expected), None)
        if start is end and self.marks:
            start = self.marks[0]
        if start is None or end is None or end[0] <= start[0]:
            return {}
        (first_posts, first), (last_posts, last) = start, end
        return {part: round((last[part] - first[part]) * 1000 / (last_posts - first_posts), 3) for part in last}


async def produce(settings: Settings, payloads: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap, acks="all", linger_ms=5,
                                max_request_size=16 * 1024 * 1024)
    await producer.start()
    try:
        for i, payload in enumerate(payloads):
            await producer.send(settings.kafka.posts_topic, payload, partition=i % PARTITIONS)
        await producer.flush()
    finally:
        await producer.stop()


async def result_timestamps(settings: Settings, expected: int, worker: subprocess.Popen,
                            timeout_s: float, meter: CpuMeter) -> list[float]:
    """Broker timestamps (s) of the first `expected` results, read outside any consumer group; `meter` is
    marked when the first results, the 10th and the 90th percentile result arrive (see `CpuMeter.ms_per_post`)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap, enable_auto_commit=False)
    await consumer.start()
    stamps: list[float] = []
    try:
        partitions = [TopicPartition(settings.kafka.sentiment_topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + timeout_s
        edges = [0.0, 0.1, 0.9]  # shares of the results still to be marked when first passed
        with tqdm(total=expected, desc=f"worker batch {settings.worker.max_batch}", unit="post") as progress:
            while len(stamps) < expected:
                if worker.poll() is not None:
                    raise RuntimeError(f"worker exited with {worker.returncode}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{len(stamps)} of {expected} results after {timeout_s}s")
                batches = await consumer.getmany(timeout_ms=200)
                fresh = [m.timestamp / 1000 for batch in batches.values() for m in batch]
                stamps += fresh
                progress.update(len(fresh))
                if fresh and edges and len(stamps) > expected * edges[0]:
                    meter.mark(len(stamps))
                    edges = [edge for edge in edges if len(stamps) <= expected * edge]
    finally:
        await consumer.stop()
    return sorted(stamps)


async def message_count(settings: Settings, topic: str) -> int:
    """Messages in `topic` (end offsets: the benchmark's topics are fresh and never compacted)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(PARTITIONS)])
        return sum(ends.values())
    finally:
        await consumer.stop()


def steady_rate(stamps: list[float]) -> float:
    """Results per second between the 10th and 90th percentile result: the drained backlog's steady rate."""
    low, high = int(len(stamps) * 0.1), int(len(stamps) * 0.9) - 1
    return (high - low) / max(1e-9, stamps[high] - stamps[low])


@dataclass
class WorkerRun:
    posts_per_s: float
    mean_stage_s: dict[str, float]
    """Per post for the queue wait, per batch for the others, from the worker's /metrics."""
    cpu_ms_per_post: dict[str, float]
    stage_ms_per_post: dict[str, dict[str, float]]
    """Busy and blocked milliseconds per post of each pipeline stage (whole run), from the worker's /metrics."""
    linked_images: dict[str, int]
    """Linked images the worker used and failed to use (`monitor_worker_linked_images_total`)."""


def runtime_env(runtime: str) -> dict[str, str]:
    """The worker's MODEL_RUNTIME settings for a `--runtimes` name (torch, onnx-fp32, onnx-int8)."""
    if runtime == "torch":
        return {"MODEL_RUNTIME": "torch"}
    return {"MODEL_RUNTIME": "onnx", "MODEL_ONNX_PRECISION": runtime.removeprefix("onnx-")}


def run_worker(base: Settings, payloads: list[bytes], batch_size: int, concurrency: int, checkpoint: str,
               device: str, run_id: str, timeout_s: float, broker_pid: int | None,
               linked_images: bool = False, broker_env: dict[str, str] | None = None,
               runtime: str = "torch") -> WorkerRun:
    """Drain `payloads` with `monitor worker --concurrency <concurrency>` at WORKER_MAX_BATCH=batch_size."""
    topics = {"posts_topic": f"bench-posts-{run_id}", "sentiment_topic": f"bench-sentiment-{run_id}",
              "dlq_topic": f"bench-dlq-{run_id}"}
    settings = base.replace(**{**topics, "topic_partitions": PARTITIONS, "worker_max_batch": batch_size})
    asyncio.run(ensure_topics(settings))
    asyncio.run(produce(settings, payloads))
    metrics_port = free_port()
    broker_env = broker_env or {}
    env = {**os.environ, "KAFKA_BOOTSTRAP": settings.kafka.bootstrap or "", "WORKER_MAX_BATCH": str(batch_size),
           "MODEL_CHECKPOINT": checkpoint, "DEVICE": device, "METRICS_PORT": str(metrics_port),
           "TOPIC_PARTITIONS": str(PARTITIONS),
           # its own group: run against a production broker, the benchmark never joins the real workers' group
           "WORKER_GROUP": f"bench-worker-{run_id}",
           **({"WORKER_IMAGE_PRIVATE_HOSTS": "true"} if linked_images else {}),  # the image server is local
           **broker_env,  # the embedded Tansu broker's quick group joins
           **runtime_env(runtime),
           **{name.upper(): value for name, value in topics.items()}}
    log_path = Path(tempfile.mkdtemp(prefix="bench-worker-")) / "worker.log"
    log.info("worker started for the benchmark", batch_size=batch_size, log=str(log_path))
    with log_path.open("wb") as log_file:
        worker = subprocess.Popen([sys.executable, "-m", "monitor", "worker", "--concurrency", str(concurrency)],
                                  env=env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT)
    meter = CpuMeter(worker.pid, broker_pid)
    try:
        stamps = asyncio.run(result_timestamps(settings, len(payloads), worker, timeout_s, meter))
        scraped = scrape(range(metrics_port, metrics_port + concurrency))  # --concurrency N: consecutive ports
        stages = {stage: mean for stage, mean in stage_means(scraped).items() if mean is not None}
        pipeline = pipeline_stage_ms(scraped, len(payloads))
        linked_images = counts(scraped, "monitor_worker_linked_images", "outcome")
    except (RuntimeError, TimeoutError) as exc:
        dead = asyncio.run(message_count(settings, settings.kafka.dlq_topic))
        raise RuntimeError(f"{exc}; {dead} dead-lettered; the worker's log ends:\n"
                           f"{log_path.read_text(errors='replace')[-3000:]}") from None
    finally:
        if worker.poll() is None:
            worker.terminate()
            try:
                worker.wait(60)
            except subprocess.TimeoutExpired:
                worker.kill()
    return WorkerRun(steady_rate(stamps), stages, meter.ms_per_post(len(payloads)), pipeline, linked_images)


def runtime_comparison(compared: dict[str, list[WorkerRun]], alone: dict[str, float]) -> dict[str, dict]:
    """Per runtime: the batched worker's median posts/s over its rounds (and each round's), its CPU ms per post
    and stage times (first round), the model alone, and the ratio to the first runtime (eager torch)."""
    medians = {runtime: statistics.median(run.posts_per_s for run in runs) for runtime, runs in compared.items()}
    first = next(iter(compared))
    return {runtime: {"worker_posts_per_s": round(medians[runtime], 1),
                      "worker_posts_per_s_rounds": [round(run.posts_per_s, 1) for run in runs],
                      "vs_first": round(medians[runtime] / medians[first], 2),
                      "cpu_ms_per_post": runs[0].cpu_ms_per_post, "mean_stage_s": runs[0].mean_stage_s,
                      "model_alone_posts_per_s": round(alone[runtime], 1),
                      "model_alone_vs_first": round(alone[runtime] / alone[first], 2)}
            for runtime, runs in compared.items()}


def linked(posts: list[Post], base_url: str) -> list[Post]:
    """The posts with their photos as links to `base_url` (`image_server`), one URL per post."""
    return [post.model_copy(update={"image": None, "image_url": f"{base_url}/{i}.jpg"}) if post.image else post
            for i, post in enumerate(posts)]


def run_worker_benchmark(bootstrap: str | None, checkpoint: str, device: str, posts: int, baseline_posts: int,
                         batch_size: int, image_share: float, concurrency: int = 1, timeout_s: float = 900.0,
                         out: Path | None = None, linked_images: bool = False, image_latency_ms: float = 0.0,
                         broker_cpus: frozenset[int] | None = None, runtimes: Sequence[str] = ("torch",),
                         rounds: int = 1) -> dict:
    """The worker on the first of `runtimes` at `batch_size` and at 1, and the model alone; with more runtimes,
    each one's batched worker `rounds` times, interleaved (A, B, A, B), and its model alone, on the same posts."""
    name = checkpoint
    model = load_model(checkpoint, device)
    if checkpoint in PRESETS:  # the worker process loads it like any checkpoint
        checkpoint = checkpoint_file(checkpoint)
    models = {runtime: model if runtime == "torch" else load_onnx_model(checkpoint, runtime.removeprefix("onnx-"))
              for runtime in runtimes}  # exports first, outside any timing, so no worker exports on start-up
    sample, decoded = bench_posts(model, posts, image_share)
    run_id = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    kind = Settings().runtime.embedded_broker
    broker_env = TANSU_CONSUMER_ENV if not bootstrap and kind == "tansu" else {}
    with broker(bootstrap, kind, broker_cpus) as (address, broker_pid), \
            (image_server(image_latency_ms) if linked_images else contextlib.nullcontext(None)) as images_url:
        payloads = [post.model_dump_json().encode() for post in (linked(sample, images_url) if images_url else sample)]
        base = Settings(kafka_bootstrap=address)
        compared: dict[str, list[WorkerRun]] = {runtime: [] for runtime in runtimes}
        for round_ in range(rounds):
            for runtime in runtimes:
                compared[runtime].append(run_worker(
                    base, payloads, batch_size, concurrency, checkpoint, device,
                    f"{run_id}-b{batch_size}-{runtime}-{round_}", timeout_s, broker_pid, linked_images, broker_env,
                    runtime))
        first = runtimes[0]
        batched = compared[first][0]
        single = run_worker(base, payloads[:baseline_posts], 1, concurrency, checkpoint, device, f"{run_id}-b1",
                            timeout_s, broker_pid, linked_images, broker_env, first)
    worker_cpus = sorted(os.sched_getaffinity(0))  # with --broker-cpus, this process stays on the worker's CPUs
    if broker_cpus:
        torch.set_num_threads(len(worker_cpus))  # more threads than CPUs would spin against each other
    alone = {runtime: posts_per_s(each, sample, decoded, batch_size) for runtime, each in models.items()}
    model_alone = alone[first]
    report = {
        "benchmark": "worker posts/s, Kafka posts -> sentiment (JSON parsing, image decoding, RADM, produce)",
        "command": f"monitor bench worker --model {name} --device {device} --posts {posts} "
                   f"--baseline-posts {baseline_posts} --batch-size {batch_size} --image-share {image_share} "
                   f"--concurrency {concurrency}"
                   + (f" --linked-images --image-latency-ms {image_latency_ms:g}" if linked_images else "")
                   + (f" --broker-cpus {','.join(map(str, sorted(broker_cpus)))}" if broker_cpus else "")
                   + (f" --runtimes {','.join(runtimes)} --rounds {rounds}" if tuple(runtimes) != ("torch",) else ""),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": device_name(model.device),
        "host": host_info(),
        "broker": "KAFKA_BOOTSTRAP" if bootstrap else f"embedded {kind}",
        "cpus": {"broker": sorted(broker_cpus), "worker_and_model": worker_cpus} if broker_cpus and not bootstrap
        else "shared",
        "model": {"name": name, "version": model.version, "runtime": first},
        "image_share": image_share,
        "images": f"linked: fetched by the worker from a local HTTP server answering after {image_latency_ms:g} ms"
                  if linked_images else "inline",
        "worker": {"batch_size": batch_size, "concurrency": concurrency, "posts": posts,
                   "posts_per_s": round(batched.posts_per_s, 1), "mean_stage_s": batched.mean_stage_s,
                   "cpu_ms_per_post": batched.cpu_ms_per_post, "stage_ms_per_post": batched.stage_ms_per_post,
                   **({"linked_images": batched.linked_images} if linked_images else {})},
        "worker_batch_1": {"batch_size": 1, "concurrency": concurrency, "posts": baseline_posts,
                           "posts_per_s": round(single.posts_per_s, 1)},
        "model_alone": {"batch_size": batch_size, "posts_per_s": round(model_alone, 1)},
        "batching_speedup": round(batched.posts_per_s / single.posts_per_s, 2),
        "pipeline_efficiency": round(batched.posts_per_s / model_alone, 3),
    }
    if len(runtimes) > 1:
        report["runtimes"] = runtime_comparison(compared, alone)
        report["load_avg_1m_after"] = round(os.getloadavg()[0], 2)
    write_report(report, out)
    return report
