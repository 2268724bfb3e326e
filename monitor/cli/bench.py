"""`monitor bench ...`: the benchmarks (package `benchmarks`, outside the runtime packages), each writing a report."""

from __future__ import annotations

from pathlib import Path

import click

from core.settings import get_settings


@click.group()
def bench() -> None:
    """Benchmarks; results are written as JSON under bench/results/."""


@bench.command("sink")
@click.option("--rows", default=20_000, show_default=True, help="Deliveries through the batched path.")
@click.option("--baseline-rows", default=2_000, show_default=True, help="Deliveries through the row-at-a-time path.")
@click.option("--batch-size", default=500, show_default=True, help="Results per transaction (SINK_MAX_BATCH).")
@click.option("--weeks-kept", default=0, show_default=True, type=click.IntRange(0, 520),
              help="Past weeks of stored posts the store holds first, each in its partition.")
@click.option("--posts-per-week", default=20_000, show_default=True, type=click.IntRange(1),
              help="Stored posts in each kept week.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("bench/results/sink-cpu.json"),
              show_default=True)
def bench_sink(rows: int, baseline_rows: int, batch_size: int, out: Path, weeks_kept: int,
               posts_per_week: int) -> None:
    """Sink rows/s, batched vs row-at-a-time, on DATABASE_URL (private schema) or an embedded PostgreSQL."""
    from benchmarks.sink import run_sink_benchmark

    report = run_sink_benchmark(get_settings().store.database_url, rows, baseline_rows, batch_size, out,
                                weeks_kept, posts_per_week)
    batched = report["batched"]["rows_per_s"]
    click.echo(f"batched:        {batched:>10,.0f} rows/s ({rows} rows, batches of {batch_size})")
    click.echo(f"row-at-a-time:  {report['row_at_a_time']['rows_per_s']:>10,.0f} rows/s ({baseline_rows} rows)")
    click.echo(f"ratio:          {report['ratio']:>10}x   bucket totals match: {report['bucket_totals_match']}")
    click.echo(f"device:         {report['device']}")
    click.echo(f"wrote {out}")


MODEL_HELP = "A MODEL_CHECKPOINT value (bootstrap = the shipped checkpoint, untrained = seeded tiny model, a path) " \
    "or a preset with random weights: tiny, full-shapes (BERT-base + ViT-B/16 sizes)."


def _sizes(value: str) -> list[int]:
    try:
        return [int(part) for part in value.split(",") if part]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None


@bench.command("model")
@click.option("--model", "model_name", default="tiny", show_default=True, help=MODEL_HELP)
@click.option("--device", default="auto", show_default=True)
@click.option("--batch-sizes", default="1,4,16,64", show_default=True, help="Comma-separated; 1 is always run.")
@click.option("--image-share", default=0.5, show_default=True, help="Share of posts with a 224 px JPEG photo.")
@click.option("--seconds", default=3.0, show_default=True, help="Timed seconds per batch size, at least.")
@click.option("--precisions", default="default", show_default=True,
              help="Comma-separated: default (bf16 on GPU, fp32 on CPU), bf16, fp32.")
@click.option("--compile", "compile_model", is_flag=True, help="torch.compile the model first (MODEL_COMPILE).")
@click.option("--bucket-rows", type=click.IntRange(min=0), default=None,
              help="Smallest length bucket given its own forward pass; 0 = one pass per batch. "
                   "[default: 4 on CPU, 0 on GPU]")
@click.option("--profile", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the torch profiler's table of a few calls at the largest batch size here.")
@click.option("--runtimes", default="torch", show_default=True,
              help="Comma-separated: torch (eager, at --precisions), onnx-fp32, onnx-int8 (CPU; exported first "
                   "into MODEL_ONNX_CACHE when needed).")
@click.option("--rounds", default=1, show_default=True, type=click.IntRange(1),
              help="Measurements per runtime and batch size, interleaved across runtimes; the median is reported.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="[default: bench/results/model-<model>[-compiled][-runtimes]-<cpu|gpu>.json]")
def bench_model(model_name: str, device: str, batch_sizes: str, image_share: float, seconds: float,
                precisions: str, compile_model: bool, bucket_rows: int | None, runtimes: str, rounds: int,
                profile: Path | None, out: Path | None) -> None:
    """RADM posts/s per batch size vs batch size 1; FLOPs per post, TFLOP/s and MFU on a GPU."""
    from benchmarks.model import run_model_benchmark
    from workers.inference.model import resolve_device

    kind = resolve_device(device).type.replace("cuda", "gpu")
    compared = "-runtimes" if runtimes != "torch" else ""
    out = out or Path(f"bench/results/model-{model_name}{'-compiled' if compile_model else ''}{compared}-{kind}.json")
    report = run_model_benchmark(model_name, device, _sizes(batch_sizes), image_share, seconds,
                                 precisions.split(","), out, compile=compile_model, profile=profile,
                                 bucket_rows=bucket_rows, runtimes=runtimes.split(","), rounds=rounds)
    click.echo(f"{report['model']['version']}: {report['model']['gflops_per_post']} GFLOP per post, "
               f"{report['device']}")
    for run in report["runs"]:
        mfu = f"  MFU {run['mfu']:.1%}" if run["mfu"] is not None else ""
        versus = f"  {run['vs_torch']}x torch" if "vs_torch" in run else ""
        click.echo(f"{run['runtime']:>9} {run['precision']:>5} batch {run['batch_size']:>4}: "
                   f"{run['posts_per_s']:>10,.1f} posts/s ({run['vs_batch_1']}x batch 1){versus}  "
                   f"{run['achieved_tflops']} TFLOP/s{mfu}")
    click.echo(f"wrote {out}")


@bench.command("worker")
@click.option("--model", "model_name", default="untrained", show_default=True, help=MODEL_HELP)
@click.option("--device", default="auto", show_default=True)
@click.option("--posts", default=3000, show_default=True, help="Posts drained by the batched worker.")
@click.option("--baseline-posts", default=600, show_default=True, help="Posts drained by the batch-size-1 worker.")
@click.option("--batch-size", default=32, show_default=True, help="WORKER_MAX_BATCH of the measured worker.")
@click.option("--image-share", default=0.5, show_default=True, help="Share of posts with a 224 px JPEG photo.")
@click.option("--linked-images", is_flag=True,
              help="Posts link to their photos (image_url) on an HTTP server on this host; the worker fetches them.")
@click.option("--image-latency-ms", default=0.0, show_default=True, type=click.FloatRange(0),
              help="With --linked-images: how long the server waits before each answer (a CDN's distance).")
@click.option("--concurrency", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes on the host (`monitor worker --concurrency`).")
@click.option("--timeout-s", default=900.0, show_default=True,
              help="Give up on a run (and show the worker's log) when its results take longer.")
@click.option("--broker-cpus", default=None, metavar="CPUS",
              help="Run the embedded broker on these CPUs ('1', '2-3') and the worker on the others, as brokers on "
                   "their own hosts would be; default: all share every CPU.")
@click.option("--runtimes", default="torch", show_default=True,
              help="Comma-separated MODEL_RUNTIME choices to compare: torch, onnx-fp32, onnx-int8; the first is the "
                   "baseline (batch 1, model alone), each runs --rounds times, interleaved.")
@click.option("--rounds", default=1, show_default=True, type=click.IntRange(1))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="[default: bench/results/worker-<model>-<cpu|gpu>[-c<concurrency>][-linked][-runtimes].json]")
def bench_worker(model_name: str, device: str, posts: int, baseline_posts: int, batch_size: int,
                 image_share: float, linked_images: bool, image_latency_ms: float, concurrency: int,
                 timeout_s: float, broker_cpus: str | None, runtimes: str, rounds: int, out: Path | None) -> None:
    """Worker posts/s from Kafka to `sentiment` vs batch size 1 and vs the model alone (on KAFKA_BOOTSTRAP, or
    an embedded broker)."""
    from benchmarks.worker import parse_cpus, run_worker_benchmark
    from workers.inference.model import resolve_device

    suffix = (f"-c{concurrency}" if concurrency > 1 else "") + ("-linked" if linked_images else "") \
        + ("-runtimes" if runtimes != "torch" else "")
    out = out or Path(f"bench/results/worker-{model_name}-{resolve_device(device).type.replace('cuda', 'gpu')}"
                      f"{suffix}.json")
    report = run_worker_benchmark(get_settings().kafka.bootstrap, model_name, device, posts, baseline_posts,
                                  batch_size, image_share, concurrency, timeout_s, out, linked_images,
                                  image_latency_ms, parse_cpus(broker_cpus) if broker_cpus else None,
                                  runtimes.split(","), rounds)
    click.echo(f"worker, batch {batch_size}:  {report['worker']['posts_per_s']:>10,.1f} posts/s")
    click.echo(f"worker, batch 1:   {report['worker_batch_1']['posts_per_s']:>10,.1f} posts/s  "
               f"-> micro-batching {report['batching_speedup']}x")
    click.echo(f"model alone:       {report['model_alone']['posts_per_s']:>10,.1f} posts/s  "
               f"-> pipeline efficiency {report['pipeline_efficiency']}")
    for runtime, entry in report.get("runtimes", {}).items():
        click.echo(f"{runtime:>10}: worker {entry['worker_posts_per_s']:>8,.1f} posts/s "
                   f"{entry['worker_posts_per_s_rounds']} ({entry['vs_first']}x), model alone "
                   f"{entry['model_alone_posts_per_s']:,.1f} posts/s ({entry['model_alone_vs_first']}x)")
    cpu = "  ".join(f"{part} {ms:.3f}" for part, ms in report["worker"]["cpu_ms_per_post"].items())
    click.echo(f"CPU ms per post:   {cpu}")
    click.echo(f"device:            {report['device']}")
    click.echo(f"wrote {out}")


@bench.command("ocr")
@click.option("--images", default=40, show_default=True, help="Distinct images of each kind (with, without text).")
@click.option("--model", "model_name", default="bootstrap", show_default=True, help=MODEL_HELP)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("bench/results/ocr-cpu.json"),
              show_default=True)
def bench_ocr(images: int, model_name: str, out: Path) -> None:
    """OCR's CPU time per image (WORKER_OCR), photos with and without text, against the model's time per post."""
    from benchmarks.ocr import run_ocr_benchmark

    report = run_ocr_benchmark(images, model_name, out)
    click.echo(f"OCR, photo without text: {report['ms_per_image_without_text']:>7.1f} ms/image "
               f"({report['ocr_without_text_vs_model']}x the model's time per post)")
    click.echo(f"OCR, captioned photo:    {report['ms_per_image_with_text']:>7.1f} ms/image "
               f"({report['ocr_with_text_vs_model']}x)")
    click.echo(f"model ({model_name}), batch 32: {report['model_ms_per_post']:>7.1f} ms/post")
    click.echo(f"wrote {out}")


@bench.command("e2e")
@click.option("--model", "model_name", default="untrained", show_default=True,
              help="MODEL_CHECKPOINT of the worker (bootstrap, untrained, a path).")
@click.option("--rate", default=100.0, show_default=True, help="Offered posts per second.")
@click.option("--seconds", default=30.0, show_default=True, help="How long the load is offered.")
@click.option("--image-share", default=0.5, show_default=True, help="Share of posts with a 224 px JPEG photo.")
@click.option("--worker-batch", default=32, show_default=True, help="WORKER_MAX_BATCH of the worker.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("bench/results/e2e-cpu.json"),
              show_default=True)
def bench_e2e(model_name: str, rate: float, seconds: float, image_share: float, worker_batch: int, out: Path) -> None:
    """Produce-to-visible-in-Redis latency at a fixed offered load, on a private embedded stack."""
    from benchmarks.e2e import run_e2e_benchmark

    report = run_e2e_benchmark(model_name, rate, seconds, image_share, worker_batch, out)
    latency = report["latency_s"] or {}
    click.echo(f"offered {report['offered_posts_per_s']:,.1f} posts/s for {seconds:g} s: {report['visible']} of "
               f"{report['posts']} visible, {report['never_visible']} never")
    click.echo("latency: " + "  ".join(f"{name} {value:.3f} s" for name, value in latency.items()))
    click.echo("mean per stage: " + "  ".join(f"{name} {value:.3f} s" for name, value in report["mean_stage_s"].items()
                                            if value is not None))
    click.echo(f"wrote {out}")


@bench.command("ingest")
@click.option("--events", default=60_000, show_default=True, help="Sample Jetstream events (about 2/3 reach a post "
              "subscription).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("bench/results/ingest-cpu.json"),
              show_default=True)
def bench_ingest(events: int, out: Path) -> None:
    """Bluesky connector events/s and peak memory on one core from a local Jetstream, against a bare reader."""
    from benchmarks.ingest import run_ingest_benchmark

    settings = get_settings()
    report = run_ingest_benchmark(settings.kafka.bootstrap, settings.runtime.embedded_broker, events, out)
    for case, result in report["results"].items():
        click.echo(f"{case:<24} {result['events_per_s']:>8,} events/s   peak {result['peak_rss_mib']:>6} MiB   "
                   f"x{report['ratio_to_bare_reader'][case]} of the bare reader")
    click.echo(f"{report['events_sent']} events sent per run, client pinned to core {report['client_core']}; "
               f"broker: {report['broker']}")
    click.echo(f"wrote {out}")


@bench.command("plot")
@click.option("--results", type=click.Path(file_okay=False, path_type=Path), default=Path("bench/results"),
              show_default=True)
def bench_plot(results: Path) -> None:
    """Draw every report in the results folder into one PNG (summary.png)."""
    from benchmarks.plot import plot_results

    click.echo(f"wrote {plot_results(results)}")


@bench.command("size")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), required=True,
              help="Peak posts/s the deployment must keep up with.")
@click.option("--headroom", type=click.FloatRange(min=1), default=1.5, show_default=True,
              help="Capacity over the peak (catching up after an outage, uneven partitions).")
@click.option("--cores", type=click.IntRange(min=1), default=None,
              help="CPU cores per worker pod [default: the benchmarked host's].")
@click.argument("reports", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def bench_size(rate: float, headroom: float, cores: int | None, reports: tuple[Path, ...]) -> None:
    """Worker replicas, cores and partitions for --rate, from `monitor bench worker` REPORTS (default: the
    worker reports in bench/results/), one row per measured runtime."""
    from benchmarks.sizing import measured_workers, plan, plan_table

    paths = list(reports) or sorted(Path("bench/results").glob("worker-*.json"))
    if not paths:
        raise click.UsageError("no worker reports: run `monitor bench worker` first, or name its JSON")
    plans = [plan(m, rate, headroom, cores) for path in paths for m in measured_workers(path)]
    click.echo(plan_table(plans))
    click.echo(f"\nfor {rate:,.0f} posts/s x {headroom} headroom; posts topic partitions >= replicas x processes "
               "each, and KEDA's maxReplicaCount <= partitions / processes each")


@bench.command("queries")
@click.option("--posts", type=click.IntRange(min=100), default=10_000_000, show_default=True,
              help="Posts to generate.")
@click.option("--brands", type=click.IntRange(min=12), default=50, show_default=True)
@click.option("--days", type=click.IntRange(min=2), default=365, show_default=True, help="Span of the posts.")
@click.option("--requests", type=click.IntRange(min=5), default=40, show_default=True, help="Requests per view.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("bench/results/queries-cpu.json"),
              show_default=True)
@click.option("--keep", is_flag=True, help="Leave the generated store in DATABASE_URL's bench_queries schema, or "
              "measure the one a previous --keep run left (after migrating it) instead of generating it again.")
def bench_queries(posts: int, brands: int, days: int, requests: int, out: Path, keep: bool) -> None:
    """Generate a store of --posts posts and time every dashboard view through the API (p50/p95), on DATABASE_URL
    (a private schema, dropped afterwards) or an embedded PostgreSQL."""
    from benchmarks.queries import run_query_benchmark

    database_url = get_settings().store.database_url
    if keep and not database_url:
        raise click.UsageError("--keep needs DATABASE_URL (e.g. from `monitor stack`): an embedded server is not kept")
    report = run_query_benchmark(database_url, posts, brands, days, requests, out, keep)
    for name, view in report["views"].items():
        click.echo(f"{name:<36} p50 {view['p50_ms']:>8.1f} ms   p95 {view['p95_ms']:>8.1f} ms   "
                   f"max {view['max_ms']:>8.1f} ms")
    click.echo(f"generated {report['generated']['rows']} ({report['generated'].get('size', 'reused')}); worst p95 "
               f"{report['worst_p95_ms']} ms against a target of {report['target_p95_ms']} ms")
    click.echo(f"wrote {out}")
