"""Prometheus metrics of a pipeline process, served on `METRICS_HOST`:`METRICS_PORT` (`/metrics`, text format).

Throughput is `rate(monitor_worker_posts_total[1m])`; everything a dashboard needs is a counter or a
histogram here, so several worker processes aggregate with a plain `sum`.
"""

from __future__ import annotations

import errno

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from core.logging import get_logger

log = get_logger(__name__)

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

POSTS = Counter("monitor_worker_posts", "Posts consumed by the worker, by outcome: scored, dead_letter, and for a "
                "challenger skipped (outside its share) or dropped (unusable; the champion dead-letters it).",
                ["outcome"])
DEAD_LETTERS = Counter("monitor_worker_dead_letters",
                       "Posts sent to the dead-letter topic, by reason code (`schemas.reasons.ReasonCode`).",
                       ["reason"])
BATCH_SIZE = Histogram("monitor_worker_batch_size", "Posts per micro-batch.", buckets=BATCH_BUCKETS)
QUEUE_WAIT = Histogram("monitor_worker_queue_wait_seconds",
                       "From a post's Kafka timestamp to the start of its batch (broker queue + batching).",
                       buckets=SECONDS_BUCKETS)
LINKED_IMAGES = Counter("monitor_worker_linked_images",
                        "Images posts link to (image_url), by outcome: used by the model, or failed (fetching or "
                        "decoding; the post is then scored on its text, or dead-lettered if it has none).",
                        ["outcome"])
DECODE_SECONDS = Histogram("monitor_worker_decode_seconds", "Parsing and decoding inline images per batch.",
                           buckets=SECONDS_BUCKETS)
MODEL_SECONDS = Histogram("monitor_worker_model_seconds",
                          "From handing a batch to the model (tokenising, RADM) until its probabilities are back, "
                          "including any wait behind the batch before it.", buckets=SECONDS_BUCKETS)
DELIVERY_SECONDS = Histogram("monitor_worker_delivery_seconds",
                             "Producing a batch's results and dead letters until the broker acknowledged them.",
                             buckets=SECONDS_BUCKETS)
STAGE_SECONDS = Counter("monitor_worker_stage_seconds",
                        "Seconds each batch-pipeline stage spent working (busy) and waiting for the next stage to "
                        "take its batch (blocked): the stage whose busy rate nears 1 s/s is the bottleneck.",
                        ["stage", "state"])
CONSUMER_LAG = Gauge("monitor_worker_consumer_lag",
                     "Messages behind the partition's high watermark (where the broker reports one).",
                     ["topic", "partition"])
ASSIGNED = Gauge("monitor_worker_assigned_partition", "1 for each partition of `posts` this process consumes.",
                 ["topic", "partition"])
MODEL_INFO = Gauge("monitor_worker_model_info", "The loaded model (value 1).", ["version", "device"])
MODEL_SWAPS = Counter("monitor_model_swaps", "Model swaps a worker attempted, by outcome: swapped (the new model "
                      "serves), unchanged (the checkpoint holds the model already serving), refused (it did not load "
                      "or validate: the old model keeps serving).", ["outcome"])
SERVING_MODEL = Gauge("monitor_worker_serving_model", "The model id this worker scores with now, and its role "
                      "(value 1; one series per process).", ["role", "model_id"])
SHADOW_SHARE = Gauge("monitor_worker_shadow_share", "The share of posts a challenger worker scores (1 for a champion).")
SHADOW_DEAD_LETTERS = Counter("monitor_worker_shadow_dead_letters", "Posts a challenger worker could not score, by "
                              "reason code: counted, not written to the DLQ (the champion does that).", ["reason"])

SINK_RESULTS = Counter("monitor_sink_results", "Sentiment results consumed by the sink (redeliveries included).")
KEYPHRASE_POSTS = Counter("monitor_sink_keyphrase_posts", "Posts the keyphrase passes counted into the keyphrase "
                          "tables, or took out again after a deletion.", ["outcome"])
SINK_SHADOW_RESULTS = Counter("monitor_sink_shadow_results", "A challenger's shadow results consumed by the sink "
                              "(redeliveries included).")
SINK_DEAD_LETTERS = Counter("monitor_sink_dead_letters", "Unparseable results and deletions the sink sent to the DLQ.")
SINK_DELETIONS = Counter("monitor_sink_deletions", "Post deletions the sink applied, by outcome: deleted (a stored "
                         "post marked and taken out of its buckets), recorded (no stored post yet: its result will not "
                         "be counted), repeated (already applied: a redelivery or a second report).", ["outcome"])
SINK_BATCH_SECONDS = Histogram("monitor_sink_write_seconds",
                               "One batch's PostgreSQL transaction, retries included.", buckets=SECONDS_BUCKETS)
SINK_QUEUE_WAIT = Histogram("monitor_sink_queue_wait_seconds",
                            "From a result's Kafka timestamp to the start of its sink batch.", buckets=SECONDS_BUCKETS)
SINK_RETRIES = Counter("monitor_sink_write_retries", "PostgreSQL writes retried after a transient error.", ["target"])
SINK_CACHE_FAILURES = Counter("monitor_sink_cache_failures",
                              "Redis cache writes skipped (repaired from PostgreSQL when Redis answers again).")
PRUNED_ROWS = Counter("monitor_sink_pruned_rows", "Rows deleted by retention (RETENTION_*); a post's thumbnail "
                      "goes with its post_sentiment row.", ["table"])

def observe_stage(stage: str, busy_s: float, blocked_s: float) -> None:
    """`BatchPipeline`'s `on_timing`."""
    STAGE_SECONDS.labels(stage, "busy").inc(busy_s)
    STAGE_SECONDS.labels(stage, "blocked").inc(blocked_s)


def observe_queue_wait(histogram: Histogram, events, now_s: float) -> None:
    """Seconds from each Faust event's Kafka timestamp to `now_s` (events without a timestamp are skipped)."""
    for event in events:
        if event.message.timestamp:
            histogram.observe(max(0.0, now_s - event.message.timestamp))


class MetricsPortInUse(RuntimeError):
    """METRICS_PORT is taken: a process that silently served no metrics would look healthy but be invisible."""


def serve_metrics(port: int, host: str = "127.0.0.1") -> bool:
    """Serve `/metrics` on `host`:`port` in a daemon thread; 0 = off. Loopback unless METRICS_HOST says otherwise:
    the metrics name brands and hosts, nothing for other machines by default. A port already taken stops the
    process at start-up with a message that names it and the way out (another port, or 0)."""
    if port == 0:
        return False
    try:
        start_http_server(port, addr=host)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise MetricsPortInUse(f"METRICS_PORT {port} is already in use by another process: set METRICS_PORT to a "
                               "free port (each worker and sink on a host needs its own), or 0 for no metrics"
                               ) from None
    log.info("serving Prometheus metrics", host=host, port=port, path="/metrics")
    return True
