"""The one settings object, in sections (kafka, worker, model, sink, store, retention, api, alerts, ingest, runtime).

Every setting is an environment variable (or a line of `.env`) under the flat name ops have always used:
`WORKER_MAX_BATCH` sets `settings.worker.max_batch`. Each field's `validation_alias` is that name, so the
generated configuration page and the code cannot disagree.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MAX_WINDOW_MINUTES = 7 * 24 * 60
MAX_BASELINE_MINUTES = 30 * 24 * 60
LOOKBACK_DAYS = (MAX_WINDOW_MINUTES + MAX_BASELINE_MINUTES) // (24 * 60)
"""Alert rules' limits; the furthest back a rule reads minute buckets is the longest baseline before the longest
window, so minute-bucket retention must outlive it."""


class _Section(BaseSettings):
    """A group of settings read from the environment (and `.env`) by their flat names; keyword arguments may use
    either the field name or the flat name."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore",
                                      populate_by_name=True, frozen=True)


class KafkaSettings(_Section):
    """The broker, the pipeline's topics and the consumers' group protocol."""

    bootstrap: str | None = Field(
        validation_alias="KAFKA_BOOTSTRAP",
        default=None, description="Broker list `host:port[,host:port]`. `monitor demo` and the tests set it themselves."
    )
    posts_topic: str = Field(
        validation_alias="POSTS_TOPIC",
        default="posts", description="Input topic of posts (JSON `Post`).",
    )
    sentiment_topic: str = Field(
        validation_alias="SENTIMENT_TOPIC",
        default="sentiment", description="Per-post results (JSON `SentimentResult`).",
    )
    dlq_topic: str = Field(
        validation_alias="DLQ_TOPIC",
        default="posts.dlq", description="Dead letters (JSON `DeadLetter`, with reason).",
    )
    deletions_topic: str = Field(
        validation_alias="DELETIONS_TOPIC",
        default="posts.deletions",
        description="Deletions reported by the sources (JSON `PostDeletion`), from the connectors to the sink.",
    )
    shadow_topic: str = Field(
        validation_alias="SHADOW_TOPIC",
        default="sentiment.shadow",
        description="A challenger model's results (JSON `SentimentResult`, shadow scoring): kept apart from the "
                    "trends, compared with the champion's.",
    )
    control_topic: str = Field(
        validation_alias="MODEL_CONTROL_TOPIC",
        default="models.control",
        description="Which checkpoint each model role serves (compacted, one partition; `monitor model serve` and "
                    "`promote` write it, every worker of the role follows it).",
    )
    topic_partitions: int = Field(
        validation_alias="TOPIC_PARTITIONS",
        default=4, ge=1, description="Partitions created for each topic at start-up.",
    )
    topic_replication: int = Field(
        validation_alias="TOPIC_REPLICATION",
        default=1, ge=1,
        description="Replicas of each topic created at start-up: 3 on a production cluster (with the brokers' "
        "`min.insync.replicas` at 2, acks=all then survives one broker down); 1 on a single broker.",
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        validation_alias="KAFKA_SECURITY_PROTOCOL",
        default="PLAINTEXT",
        description="How every client of the monitor talks to the brokers: plain, TLS, SASL, or SASL over TLS.",
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        validation_alias="KAFKA_SASL_MECHANISM", default="PLAIN",
        description="SASL mechanism (with a SASL_* protocol).",
    )
    sasl_username: str | None = Field(validation_alias="KAFKA_SASL_USERNAME", default=None,
                                      description="SASL user name (with a SASL_* protocol).")
    sasl_password: str | None = Field(validation_alias="KAFKA_SASL_PASSWORD", default=None,
                                      description="SASL password (with a SASL_* protocol); never logged.")
    ssl_cafile: Path | None = Field(
        validation_alias="KAFKA_SSL_CAFILE", default=None,
        description="PEM file of the CA that signed the brokers' certificates (with SSL or SASL_SSL); unset = the "
        "system's trusted CAs.",
    )
    idempotent_producer: bool = Field(
        validation_alias="KAFKA_IDEMPOTENT_PRODUCER",
        default=True,
        description="Every producer of the worker and the sink (results, dead letters) is idempotent (acks=all "
        "either way): a retried send after a lost acknowledgement is not written twice. The embedded Tansu broker "
        "lacks it; its stack sets false.",
    )
    session_timeout_s: float = Field(
        validation_alias="CONSUMER_SESSION_TIMEOUT_S",
        default=10.0, description="How long the group waits for a silent consumer before handing its partitions to "
        "the others. Apache Kafka refuses less than its `group.min.session.timeout.ms` (6 s unless configured); the "
        "embedded Tansu stack sets 4 s, as Tansu waits half of it on every group join."
    )
    heartbeat_s: float = Field(
        validation_alias="CONSUMER_HEARTBEAT_S",
        default=1.0, description="Consumer group heartbeat interval.",
    )
    rebalance_timeout_s: float = Field(
        validation_alias="CONSUMER_REBALANCE_TIMEOUT_S",
        default=10.0, description="How long a rebalance waits for every member to rejoin (the Tansu stack sets 4 s).",
    )
    fetch_wait_s: float = Field(
        validation_alias="CONSUMER_FETCH_WAIT_S",
        default=0.1, gt=0, le=30,
        description="Longest a worker's or sink's fetch waits for new messages. The embedded broker holds fetches "
        "for a share of it even when messages arrive, so it adds to every hop's latency; Apache Kafka answers at "
        "once, and a shorter wait only costs idle fetches.",
    )
    fetch_min_bytes: int = Field(
        validation_alias="CONSUMER_FETCH_MIN_BYTES",
        default=1, ge=1, le=1024 * 1024,
        description="Bytes a worker's or sink's fetch waits for (at most CONSUMER_FETCH_WAIT_S). 1 answers at once, "
        "the lowest latency at moderate load; near a small host's capacity, 65536 means fewer, larger fetches and "
        "more CPU for the rest (docs/performance.md, End to end).",
    )


class WorkerSettings(_Section):
    """The inference worker: batching, decoding, linked images, OCR and input limits."""

    group: str = Field(
        validation_alias="WORKER_GROUP",
        default="sentiment-worker", description="Consumer group (Faust app id) of the workers.",
    )
    max_batch: int = Field(validation_alias="WORKER_MAX_BATCH", default=32, ge=1, description="Micro-batch size cap.")
    max_wait_s: float = Field(
        validation_alias="WORKER_MAX_WAIT_S",
        default=0.05, gt=0, description="Micro-batch latency cap.",
    )
    decode_threads: int = Field(
        validation_alias="WORKER_DECODE_THREADS",
        default=4, ge=1, description="Threads that parse posts and decode images off the event loop."
    )
    gil_switch_ms: float = Field(
        validation_alias="WORKER_GIL_SWITCH_MS",
        default=1.0, gt=0, description="How long a worker's thread may hold the GIL while another waits for it "
        "(Python's default is 5): decode threads get it back sooner after each image."
    )
    thumbnail_px: int = Field(
        validation_alias="WORKER_THUMBNAIL_PX",
        default=96, ge=0, le=256, description="Longest side of the JPEG thumbnail a worker attaches to the result "
        "of a post with an image (inline or fetched), for the dashboard (0 = none): 1-5 KB a post in `sentiment` and "
        "PostgreSQL."
    )
    fetch_images: bool = Field(
        validation_alias="WORKER_FETCH_IMAGES",
        default=True, description="Fetch the images posts link to (`image_url`, http and https) so the model sees "
        "them; a post whose image cannot be fetched or decoded is scored on its text."
    )
    image_timeout_s: float = Field(
        validation_alias="WORKER_IMAGE_TIMEOUT_S",
        default=5.0, gt=0, description="Longest a linked image's fetch may take, redirects included."
    )
    image_connections: int = Field(
        validation_alias="WORKER_IMAGE_CONNECTIONS",
        default=32, ge=1, description="Concurrent image fetches per worker process."
    )
    image_private_hosts: bool = Field(
        validation_alias="WORKER_IMAGE_PRIVATE_HOSTS",
        default=False, description="Also fetch linked images from loopback, private and link-local addresses. "
        "Off, a post cannot make a worker probe its own network (a cloud metadata endpoint, a local admin port)."
    )
    ocr: bool = Field(
        validation_alias="WORKER_OCR",
        default=True, description="Read the text inside each post's image (memes, screenshots, captioned photos) "
        "with the bundled OCR models and score it with the post's text. Detection runs on every image; recognition "
        "only where it found text. On a CPU host reading a distinct image costs more than scoring its post "
        "(`monitor bench ocr` measures both); identical images are read once. Off saves that CPU where posts "
        "carry no such images."
    )
    max_message_bytes: int = Field(
        validation_alias="MAX_MESSAGE_BYTES",
        default=8 * 1024 * 1024, description="Larger posts go to the DLQ unread.",
    )
    max_image_pixels: int = Field(
        validation_alias="MAX_IMAGE_PIXELS",
        default=40_000_000, description="Decompression-bomb guard.",
    )


class ModelSettings(_Section):
    """The sentiment model: checkpoint, device, threads; the only section the model's process gets."""

    checkpoint: str = Field(
        validation_alias="MODEL_CHECKPOINT",
        default="bootstrap",
        description="RADM checkpoint path; `bootstrap` = the shipped English one, `multilingual` = the shipped "
                    "8-language one (multilingual-e5-small; `pip install 'sentiment-monitor[multilingual]'`), "
                    "`untrained` = seeded tiny model (tests).",
    )
    device: str = Field(
        validation_alias="DEVICE",
        default="auto", description="torch device: auto, cpu, cuda, cuda:1 ...",
    )
    own_process: bool = Field(
        validation_alias="MODEL_PROCESS",
        default=True,
        description="Run the model in a child process of the worker (no GIL shared with Kafka and decoding).",
    )
    threads: int = Field(
        validation_alias="MODEL_THREADS",
        default=0, ge=0, description="CPU threads for the model; 0 = every core for models over 5M parameters, every "
        "core but one (left for decoding and Kafka) for smaller ones."
    )
    compile: bool = Field(
        validation_alias="MODEL_COMPILE",
        default=False,
        description="`torch.compile` the model (its first batches wait for compiling, about a minute on 2 CPU cores).",
    )
    runtime: Literal["auto", "torch", "onnx"] = Field(
        validation_alias="MODEL_RUNTIME",
        default="auto",
        description="What runs the network: `torch`; `onnx` (onnxruntime on the CPU, the checkpoint exported on "
        "first use); `auto` = onnx where the device is a CPU and the export's probe agrees with PyTorch on at least "
        "99% of labels, else torch (always torch for `untrained`).",
    )
    onnx_precision: Literal["int8", "fp32"] = Field(
        validation_alias="MODEL_ONNX_PRECISION",
        default="int8",
        description="ONNX graphs run: `int8` (dynamically quantized MatMuls) or `fp32`.",
    )
    role: Literal["champion", "challenger"] = Field(
        validation_alias="MODEL_ROLE",
        default="champion",
        description="`champion`: score every post into `sentiment` (the trends); `challenger`: shadow-score a "
                    "share of posts (MODEL_SHADOW_SHARE) into SHADOW_TOPIC, in a consumer group of its own.",
    )
    shadow_share: float = Field(
        validation_alias="MODEL_SHADOW_SHARE",
        default=0.1, ge=0.0, le=1.0,
        description="The share of posts a challenger scores, chosen by a hash of the post id (the same posts on "
                    "every replica and replay); a control record's share overrides it.",
    )
    onnx_cache: Path | None = Field(
        validation_alias="MODEL_ONNX_CACHE",
        default=None,
        description="Folder of ONNX exports, one per checkpoint fingerprint (default ~/.cache/sentiment-monitor/onnx); "
        "`monitor model export-onnx` fills it ahead of time.",
    )


class SinkSettings(_Section):
    """The sink: its consumer group, write batches and keyphrase passes."""

    group: str = Field(
        validation_alias="SINK_GROUP",
        default="sentiment-sink", description="Consumer group (Faust app id) of the sinks.",
    )
    max_batch: int = Field(
        validation_alias="SINK_MAX_BATCH",
        default=500, ge=1, description="Results per PostgreSQL transaction, at most.",
    )
    max_wait_s: float = Field(
        validation_alias="SINK_MAX_WAIT_S",
        default=0.2, gt=0, description="Sink batch latency cap.",
    )
    keyphrase_interval_s: float = Field(
        validation_alias="SINK_KEYPHRASE_INTERVAL_S",
        default=30.0, ge=0,
        description="Seconds between keyphrase passes (the keyphrase tables count the posts stored since the last "
                    "pass, beside the write path); 0 = no keyphrase tables.",
    )


class StoreSettings(_Section):
    """PostgreSQL (the source of truth) and Redis (the hot cache)."""

    database_url: str | None = Field(
        validation_alias="DATABASE_URL",
        default=None, description="`postgresql+psycopg://user:pass@host:port/db`.",
    )
    analyst_database_url: str | None = Field(
        validation_alias="ANALYST_DATABASE_URL",
        default=None, description="`monitor sql` connects with this non-superuser URL (default: DATABASE_URL as the "
        "role `monitor_reader`, no password).",
    )
    redis_url: str | None = Field(validation_alias="REDIS_URL", default=None, description="`redis://host:port/db`.")
    redis_series_ttl_s: int = Field(
        validation_alias="REDIS_SERIES_TTL_S",
        default=2 * 24 * 3600,
        description="Minimum TTL of a cached trend series key, refreshed on every write (hour and day series keep at "
        "least their 30/400-day window).",
    )


class RetentionSettings(_Section):
    """How long the sink keeps per-post rows and minute buckets."""

    posts_days: int = Field(
        validation_alias="RETENTION_POSTS_DAYS",
        default=30, ge=0, description="Days the sink keeps per-post rows (`post_sentiment` with thumbnails, "
        "re-scores, keyphrase records), counted from when it wrote them and rounded up to whole weeks (0 = forever). "
        "Keep it longer than Kafka keeps `sentiment` (7 days by default): a result redelivered after its row is gone "
        "counts again. Trend buckets are not affected."
    )
    minute_buckets_days: int = Field(
        validation_alias="RETENTION_MINUTE_BUCKETS_DAYS",
        default=60, ge=0, description="Days the sink keeps minute trend buckets (0 = forever; else at least 38, as "
        "alert rules read 37 days back). Hour and day buckets are kept."
    )
    interval_s: float = Field(
        validation_alias="RETENTION_INTERVAL_S",
        default=3600.0, gt=0, description="How often a sink prunes (RETENTION_*) and makes the coming weeks' "
        "partitions of the per-post tables.",
    )

    @field_validator("minute_buckets_days")
    @classmethod
    def _minute_buckets_outlive_alert_lookback(cls, days: int) -> int:
        if 0 < days <= LOOKBACK_DAYS:
            raise ValueError(f"must be 0 (forever) or more than {LOOKBACK_DAYS}: alert rules read minute "
                             f"buckets up to {LOOKBACK_DAYS} days back")
        return days


class ApiSettings(_Section):
    """The HTTP API and dashboard."""

    host: str = Field(
        validation_alias="API_HOST",
        default="127.0.0.1", description="Address the HTTP API and dashboard listen on.",
    )
    port: int = Field(
        validation_alias="API_PORT",
        default=8000, ge=1, le=65535, description="Port of the HTTP API and dashboard.",
    )
    read_token: str | None = Field(
        validation_alias="API_READ_TOKEN",
        default=None, description="When set, the dashboard and read endpoints need it (Bearer token)."
    )
    admin_token: str | None = Field(
        validation_alias="API_ADMIN_TOKEN",
        default=None, description="Bearer token for write endpoints (alert rules, brands); unset = writes refused."
    )
    cors_origins: str = Field(
        validation_alias="API_CORS_ORIGINS",
        default="", description="Comma-separated origins allowed by CORS (empty = none).",
    )
    max_body_bytes: int = Field(
        validation_alias="API_MAX_BODY_BYTES",
        default=64 * 1024, ge=1024, le=1024 * 1024 * 1024,
        description="Largest request body the API reads; a larger one is refused with 413 before it is read whole "
        "(every request body of the API is a small JSON document).",
    )
    alerts: bool = Field(
        validation_alias="API_ALERTS",
        default=True, description="`monitor api` evaluates alert rules (replicas share the work via an advisory lock)."
    )
    explanations: bool = Field(
        validation_alias="API_EXPLANATIONS",
        default=True,
        description="Serve `GET /api/posts/{post_id}/explanation`: word attributions computed on demand with "
                    "MODEL_CHECKPOINT, loaded on the CPU on the first request; false = that endpoint answers 404.",
    )


class AlertSettings(_Section):
    """Alert rule evaluation and delivery."""

    webhook_url: str | None = Field(
        validation_alias="ALERT_WEBHOOK_URL",
        default=None, description="POST fired alerts here as JSON (optional).",
    )
    interval_s: float = Field(
        validation_alias="ALERT_INTERVAL_S",
        default=30.0, gt=0, description="How often alert rules are evaluated (and pending deliveries retried).",
    )
    max_messages_per_hour: int = Field(
        validation_alias="ALERT_MAX_MESSAGES_PER_HOUR",
        default=20, ge=1, le=10_000,
        description="Messages each channel (webhook, email) sends per rolling hour at most; when more alerts wait, "
        "the last message of the budget summarises the rest, and beyond it they wait for the next hour.",
    )
    smtp_host: str | None = Field(
        validation_alias="ALERT_SMTP_HOST", default=None,
        description="SMTP server that emails fired alerts (optional; needs ALERT_SMTP_FROM and ALERT_SMTP_TO).",
    )
    smtp_port: int = Field(
        validation_alias="ALERT_SMTP_PORT", default=587, ge=1, le=65535,
        description="SMTP port: 587 for STARTTLS, 465 for implicit TLS, 25 for a local relay.",
    )
    smtp_security: Literal["starttls", "tls", "none"] = Field(
        validation_alias="ALERT_SMTP_SECURITY", default="starttls",
        description="`starttls` (upgrade the connection, fail if the server cannot), `tls` (implicit TLS) or "
        "`none` (plain SMTP, for a relay on the same host or network).",
    )
    smtp_user: str | None = Field(
        validation_alias="ALERT_SMTP_USER", default=None, description="SMTP login (optional).",
    )
    smtp_password: str | None = Field(
        validation_alias="ALERT_SMTP_PASSWORD", default=None,
        description="SMTP password (with ALERT_SMTP_USER); never logged.",
    )
    smtp_from: str | None = Field(
        validation_alias="ALERT_SMTP_FROM", default=None, description="Sender address of alert emails.",
    )
    smtp_to: str = Field(
        validation_alias="ALERT_SMTP_TO", default="", description="Comma-separated recipients of alert emails.",
    )
    smtp_timeout_s: float = Field(
        validation_alias="ALERT_SMTP_TIMEOUT_S", default=10.0, gt=0, le=300,
        description="Connect and command timeout of the SMTP client.",
    )

    @model_validator(mode="after")
    def _smtp_complete(self) -> AlertSettings:
        if self.smtp_host and not (self.smtp_from and self.recipients()):
            raise ValueError("ALERT_SMTP_HOST needs ALERT_SMTP_FROM and ALERT_SMTP_TO")
        if bool(self.smtp_user) != bool(self.smtp_password):
            raise ValueError("ALERT_SMTP_USER and ALERT_SMTP_PASSWORD go together")
        return self

    def recipients(self) -> list[str]:
        return [address.strip() for address in self.smtp_to.split(",") if address.strip()]


class IngestSettings(_Section):
    """Source connectors (`monitor ingest`): where their cursors live, how much they buffer, how they retry."""

    state_dir: Path | None = Field(
        validation_alias="INGEST_STATE_DIR", default=None,
        description="Where each connector keeps its resume cursor (one JSON file per connector name); unset = "
        "`DATA_DIR/ingest`. Keep it on a persistent volume: a restarted connector resumes from it.",
    )
    max_in_flight: int = Field(
        validation_alias="INGEST_MAX_IN_FLIGHT", default=5000, ge=1, le=1_000_000,
        description="Posts sent to Kafka and not yet acknowledged. Beyond it the connector stops reading its source "
        "until acknowledgements come back, so a slow broker slows the source down instead of growing memory.",
    )
    cursor_flush_s: float = Field(
        validation_alias="INGEST_CURSOR_FLUSH_S", default=1.0, gt=0, le=3600,
        description="How often the cursor of everything acknowledged is written to disk. After a crash the "
        "source replays at most this much; the replayed posts are deduplicated downstream by post id.",
    )
    backoff_initial_s: float = Field(
        validation_alias="INGEST_BACKOFF_INITIAL_S", default=0.5, gt=0, le=60,
        description="First wait before reconnecting to a source that dropped; doubled (with full jitter) per failure.",
    )
    backoff_max_s: float = Field(
        validation_alias="INGEST_BACKOFF_MAX_S", default=60.0, gt=0, le=3600,
        description="Longest wait between reconnection attempts.",
    )


class RuntimeSettings(_Section):
    """Every process: its data folder, metrics address and logs; which broker the embedded stack runs."""

    data_dir: Path = Field(
        validation_alias="DATA_DIR",
        default=Path(".monitor"),
        description="Where the embedded services keep data and logs, and Faust its app folders.",
    )
    embedded_broker: Literal["tansu", "kafka-3.9", "kafka-4.1"] = Field(
        validation_alias="EMBEDDED_BROKER",
        default="tansu",
        description="The broker `monitor demo` and the tests start: `tansu` (from a pip wheel) or Apache Kafka "
        "in KRaft mode (`kafka-3.9`, `kafka-4.1`; needs a JDK and Maven, which fetches its jars once).",
    )
    metrics_host: str = Field(
        validation_alias="METRICS_HOST",
        default="127.0.0.1",
        description="Address a worker's, sink's or connector's `/metrics` listens on: loopback by default; "
        "`0.0.0.0` where Prometheus scrapes it from another host or container (the compose file sets it).",
    )
    metrics_port: int = Field(
        validation_alias="METRICS_PORT",
        default=9100, ge=0, le=65535,
        description="Prometheus `/metrics` port of a worker or sink process (0 = off); "
        "`monitor worker --concurrency N` uses N consecutive ports.",
    )
    log_level: str = Field(validation_alias="LOG_LEVEL", default="INFO", description="DEBUG, INFO, WARNING, ERROR.")
    log_json: bool = Field(
        validation_alias="LOG_JSON",
        default=False, description="JSON log lines (for log shippers) instead of console format.",
    )


class Settings(BaseModel):
    """Configuration for every process of the monitor, one section per concern.

    Service URLs left unset mean "use the embedded default": `monitor demo` and the test suite start a private
    broker, PostgreSQL and Redis and fill these in. `Settings()` reads the environment; keyword arguments
    override it, by section (`Settings(worker={"max_batch": 8})`) or by flat name (`Settings(worker_max_batch=8)`).
    """

    model_config = ConfigDict(frozen=True)

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    sink: SinkSettings = Field(default_factory=SinkSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings)

    @model_validator(mode="before")
    @classmethod
    def _sections_from_flat_names(cls, data: Any) -> Any:
        """Each section read from the environment, with the given values (flat names or per section) on top."""
        if not isinstance(data, dict):
            return data
        given: dict[str, dict[str, Any]] = {name: {} for name in cls.model_fields}
        sources = {key: value for key, value in data.items() if key.startswith("_")}  # e.g. `_env_file=None`
        for key, value in data.items():
            if key in sources:
                continue
            if key in cls.model_fields:
                if isinstance(value, BaseModel):
                    value = value.model_dump()
                given[key].update(value)
                continue
            section, field = flat_setting(key)
            given[section][field] = value
        return {name: cls.model_fields[name].default_factory(**sources, **values)  # type: ignore[misc]
                for name, values in given.items()}

    def replace(self, **flat: Any) -> Settings:
        """A copy with some settings changed, by flat name (`KAFKA_BOOTSTRAP` or `kafka_bootstrap`)."""
        merged = {name: getattr(self, name).model_dump() for name in type(self).model_fields}
        for key, value in flat.items():
            section, field = flat_setting(key)
            merged[section][field] = value
        return Settings(**merged)


def sections() -> dict[str, type[_Section]]:
    """Section name -> its class, in the order the documentation lists them."""
    return {name: field.default_factory for name, field in Settings.model_fields.items()}  # type: ignore[misc]


FLAT_NAMES: dict[str, tuple[str, str]] = {
    str(field.validation_alias).lower(): (section, name)
    for section, section_type in sections().items() for name, field in section_type.model_fields.items()
}
"""`worker_max_batch` -> ("worker", "max_batch"): the environment variable names, lower-cased."""


def flat_setting(name: str) -> tuple[str, str]:
    """(section, field) of a setting named the flat way (`WORKER_MAX_BATCH` or `worker_max_batch`)."""
    try:
        return FLAT_NAMES[name.lower()]
    except KeyError:
        raise ValueError(f"unknown setting {name!r}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings read once per process from the environment."""
    return Settings()
