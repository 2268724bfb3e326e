"""The one settings object: every knob is an environment variable (prefix-free, as ops expect)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MAX_WINDOW_MINUTES = 7 * 24 * 60
MAX_BASELINE_MINUTES = 30 * 24 * 60
LOOKBACK_DAYS = (MAX_WINDOW_MINUTES + MAX_BASELINE_MINUTES) // (24 * 60)
"""Alert rules' limits; the furthest back a rule reads minute buckets is the longest baseline before the longest
window, so minute-bucket retention must outlive it."""


class Settings(BaseSettings):
    """Configuration for every process of the monitor.

    Service URLs left unset mean "use the embedded default": `monitor demo` and the
    test suite start a private broker, PostgreSQL and Redis and fill these in.
    """

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    kafka_bootstrap: str | None = Field(
        default=None, description="Broker list `host:port[,host:port]`. `monitor demo` and the tests set it themselves."
    )
    database_url: str | None = Field(default=None, description="`postgresql+psycopg://user:pass@host:port/db`.")
    analyst_database_url: str | None = Field(
        default=None, description="`monitor sql` connects with this non-superuser URL (default: DATABASE_URL as the "
        "role `monitor_reader`, no password).",
    )
    redis_url: str | None = Field(default=None, description="`redis://host:port/db`.")

    data_dir: Path = Field(
        default=Path(".monitor"),
        description="Where the embedded services keep data and logs, and Faust its app folders.",
    )

    posts_topic: str = Field(default="posts", description="Input topic of posts (JSON `Post`).")
    sentiment_topic: str = Field(default="sentiment", description="Per-post results (JSON `SentimentResult`).")
    dlq_topic: str = Field(default="posts.dlq", description="Dead letters (JSON `DeadLetter`, with reason).")
    topic_partitions: int = Field(default=4, ge=1, description="Partitions created for each topic at start-up.")

    worker_group: str = Field(default="sentiment-worker", description="Consumer group (Faust app id) of the workers.")
    sink_group: str = Field(default="sentiment-sink", description="Consumer group (Faust app id) of the sinks.")
    worker_max_batch: int = Field(default=32, ge=1, description="Micro-batch size cap.")
    worker_max_wait_s: float = Field(default=0.05, gt=0, description="Micro-batch latency cap.")
    worker_decode_threads: int = Field(
        default=4, ge=1, description="Threads that parse posts and decode images off the event loop."
    )
    worker_gil_switch_ms: float = Field(
        default=1.0, gt=0, description="How long a worker's thread may hold the GIL while another waits for it "
        "(Python's default is 5): decode threads get it back sooner after each image."
    )
    worker_thumbnail_px: int = Field(
        default=96, ge=0, le=256, description="Longest side of the JPEG thumbnail a worker attaches to the result "
        "of a post with an image (inline or fetched), for the dashboard (0 = none): 1-5 KB a post in `sentiment` and "
        "PostgreSQL."
    )
    worker_fetch_images: bool = Field(
        default=True, description="Fetch the images posts link to (`image_url`, http and https) so the model sees "
        "them; a post whose image cannot be fetched or decoded is scored on its text."
    )
    worker_image_timeout_s: float = Field(
        default=5.0, gt=0, description="Longest a linked image's fetch may take, redirects included."
    )
    worker_image_connections: int = Field(
        default=32, ge=1, description="Concurrent image fetches per worker process."
    )
    worker_image_private_hosts: bool = Field(
        default=False, description="Also fetch linked images from loopback, private and link-local addresses. "
        "Off, a post cannot make a worker probe its own network (a cloud metadata endpoint, a local admin port)."
    )
    worker_ocr: bool = Field(
        default=True, description="Read the text inside each post's image (memes, screenshots, captioned photos) "
        "with the bundled OCR models and score it with the post's text. Detection runs on every image; recognition "
        "only where it found text. On a CPU host reading a distinct image costs more than scoring its post "
        "(`monitor bench ocr` measures both); identical images are read once. Off saves that CPU where posts "
        "carry no such images."
    )
    model_process: bool = Field(
        default=True,
        description="Run the model in a child process of the worker (no GIL shared with Kafka and decoding).",
    )
    model_threads: int = Field(
        default=0, ge=0, description="CPU threads for the model; 0 = every core for models over 5M parameters, every "
        "core but one (left for decoding and Kafka) for smaller ones."
    )
    model_compile: bool = Field(
        default=False,
        description="`torch.compile` the model (its first batches wait for compiling, about a minute on 2 CPU cores).",
    )
    sink_max_batch: int = Field(default=500, ge=1, description="Results per PostgreSQL transaction, at most.")
    sink_max_wait_s: float = Field(default=0.2, gt=0, description="Sink batch latency cap.")
    retention_posts_days: int = Field(
        default=30, ge=0, description="Days the sink keeps per-post rows (`post_sentiment`, thumbnails), counted from "
        "when it wrote them (0 = forever). Keep it longer than Kafka keeps `sentiment` (7 days by default): a result "
        "redelivered after its row is gone counts again. Trend buckets are not affected."
    )
    retention_minute_buckets_days: int = Field(
        default=60, ge=0, description="Days the sink keeps minute trend buckets (0 = forever; else at least 38, as "
        "alert rules read 37 days back). Hour and day buckets are kept."
    )
    retention_interval_s: float = Field(default=3600.0, gt=0, description="How often a sink prunes (RETENTION_*).")

    max_message_bytes: int = Field(default=8 * 1024 * 1024, description="Larger posts go to the DLQ unread.")
    max_image_pixels: int = Field(default=40_000_000, description="Decompression-bomb guard.")

    model_checkpoint: str = Field(
        default="bootstrap",
        description="RADM checkpoint path; `bootstrap` = the shipped one, `untrained` = seeded tiny model (tests).",
    )
    device: str = Field(default="auto", description="torch device: auto, cpu, cuda, cuda:1 ...")

    redis_series_ttl_s: int = Field(
        default=2 * 24 * 3600,
        description="Minimum TTL of a cached trend series key, refreshed on every write (hour and day series keep at "
        "least their 30/400-day window).",
    )

    consumer_session_timeout_s: float = Field(
        default=4.0, description="Short: the embedded broker waits half of it on every group join."
    )
    consumer_heartbeat_s: float = Field(default=1.0, description="Consumer group heartbeat interval.")
    consumer_rebalance_timeout_s: float = Field(default=4.0, description="Consumer group rebalance timeout.")
    consumer_fetch_wait_s: float = Field(
        default=0.1, gt=0, le=30,
        description="Longest a worker's or sink's fetch waits for new messages. The embedded broker holds fetches "
        "for a share of it even when messages arrive, so it adds to every hop's latency; Apache Kafka answers at "
        "once, and a shorter wait only costs idle fetches.",
    )
    consumer_fetch_min_bytes: int = Field(
        default=1, ge=1, le=1024 * 1024,
        description="Bytes a worker's or sink's fetch waits for (at most CONSUMER_FETCH_WAIT_S). 1 answers at once, "
        "the lowest latency at moderate load; near a small host's capacity, 65536 means fewer, larger fetches and "
        "more CPU for the rest (see README, End to end).",
    )

    metrics_port: int = Field(
        default=9100, ge=0, le=65535,
        description="Prometheus `/metrics` port of a worker or sink process (0 = off); "
        "`monitor worker --concurrency N` uses N consecutive ports.",
    )

    api_host: str = Field(default="127.0.0.1", description="Address the HTTP API and dashboard listen on.")
    api_port: int = Field(default=8000, ge=1, le=65535, description="Port of the HTTP API and dashboard.")
    api_read_token: str | None = Field(
        default=None, description="When set, the dashboard and read endpoints need it (Bearer token)."
    )
    api_admin_token: str | None = Field(
        default=None, description="Bearer token for write endpoints (alert rules, brands); unset = writes refused."
    )
    api_cors_origins: str = Field(default="", description="Comma-separated origins allowed by CORS (empty = none).")
    api_alerts: bool = Field(
        default=True, description="`monitor api` evaluates alert rules (replicas share the work via an advisory lock)."
    )
    alert_webhook_url: str | None = Field(default=None, description="POST fired alerts here as JSON (optional).")
    alert_interval_s: float = Field(default=30.0, gt=0, description="How often alert rules are evaluated.")

    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING, ERROR.")
    log_json: bool = Field(default=False, description="JSON log lines (for log shippers) instead of console format.")

    @field_validator("retention_minute_buckets_days")
    @classmethod
    def _minute_buckets_outlive_alert_lookback(cls, days: int) -> int:
        if 0 < days <= LOOKBACK_DAYS:
            raise ValueError(f"must be 0 (forever) or more than {LOOKBACK_DAYS}: alert rules read minute "
                             f"buckets up to {LOOKBACK_DAYS} days back")
        return days


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings read once per process from the environment."""
    return Settings()
