"""Message contracts on the wire: what producers send and what workers emit.

Every topic carries JSON produced from these models, so non-Python producers can
validate against the exported JSON Schema (`monitor schema`).
"""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from pydantic import (
    AnyUrl,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from schemas.reasons import ReasonCode

MAX_TEXT_CHARS = 4_000
"""Longer posts are rejected, not truncated: a truncated post silently changes meaning."""

MAX_TAGS = 32
MAX_SOURCE_CHARS = 64

MAX_THUMBNAIL_BYTES = 128 * 1024
"""A 256 px JPEG (the largest WORKER_THUMBNAIL_PX) of pure noise stays under this."""

Tag = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=64)]

WireBytes = Annotated[
    bytes,
    PlainSerializer(lambda value: base64.b64encode(value).decode("ascii"), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "contentEncoding": "base64"}),
]
"""Bytes on the wire: standard base64 (RFC 4648 section 4) in JSON, as most languages encode by default. Readers
also take the URL-safe alphabet (section 5)."""

Timestamp = Annotated[
    datetime,
    WithJsonSchema({"anyOf": [{"type": "string", "format": "date-time"}, {"type": "number"}]}),
]
"""An RFC 3339 date-time string, or unix time as a number (seconds; values past the year 2603 are read as
milliseconds). Naive date-times are read as UTC."""


def as_utc(value: datetime) -> datetime:
    """Naive = UTC. Raises ValueError (a validation error) for an offset that moves it outside years 1-9999:
    Python's OverflowError would escape pydantic and crash whoever parses the message."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("timestamp out of range once converted to UTC") from None


class Label(StrEnum):
    """Sentiment classes, in the order of the model's output logits."""

    NEGATIVE = "negative"
    NEUTRAL = "neutral"
    POSITIVE = "positive"

    @property
    def polarity(self) -> int:
        """-1, 0 or +1: what trend scores average over."""
        return {"negative": -1, "neutral": 0, "positive": 1}[self.value]


LABELS: tuple[Label, ...] = tuple(Label)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_bytes="base64", val_json_bytes="base64")


class Post(_Strict):
    """A social post as producers publish it to the `posts` topic."""

    post_id: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    created_at: Timestamp = Field(description="When the post was published: an RFC 3339 string (naive = UTC) or unix "
                                  "seconds.")
    text: Annotated[str, StringConstraints(max_length=MAX_TEXT_CHARS)] = ""
    image: WireBytes | None = Field(default=None, description="Encoded image bytes (JPEG/PNG), base64 in JSON.")
    image_url: AnyUrl | None = Field(default=None, description="Where the image lives, when not inlined.")
    brands: Annotated[list[Tag], Field(max_length=MAX_TAGS)] = Field(default_factory=list)
    keywords: Annotated[list[Tag], Field(max_length=MAX_TAGS)] = Field(default_factory=list)
    source: Annotated[str, StringConstraints(max_length=MAX_SOURCE_CHARS)] = Field(
        default="unknown", description="Where the post came from (`bluesky`, `mastodon`, `rss`, ...): analysts filter "
        "by it.")
    lang: str | None = None

    @field_validator("created_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return as_utc(value)

    @property
    def image_ref(self) -> str | None:
        """A stable reference to the image: its URL, or the SHA-256 of inline bytes (never the bytes)."""
        if self.image_url is not None:
            return str(self.image_url)
        return f"sha256:{hashlib.sha256(self.image).hexdigest()}" if self.image is not None else None

    @model_validator(mode="after")
    def _has_content(self) -> Post:
        if not self.text.strip() and self.image is None and self.image_url is None:
            raise ValueError("post has neither text nor image")
        return self


class SentimentResult(_Strict):
    """What a worker emits to the `sentiment` topic for one post."""

    post_id: str
    created_at: datetime
    label: Label
    probabilities: dict[Label, float]
    brands: list[str] = Field(default_factory=list, description="Brand tags the producer set.")
    keywords: list[str] = Field(default_factory=list)
    model_version: str
    latency_ms: float = Field(ge=0, description="Model time for the batch this post was in, per post.")
    text: Annotated[str, StringConstraints(max_length=MAX_TEXT_CHARS)] = Field(
        default="", description="The post's full text: the sink matches tracked brands' rules against it."
    )
    source: Annotated[str, StringConstraints(max_length=MAX_SOURCE_CHARS)] = Field(
        default="unknown", description="Where the post came from, as its producer said (`Post.source`).")
    image_ref: str | None = Field(default=None, description="The post's image_url, or sha256:<hex> of an inline image.")
    thumbnail: WireBytes | None = Field(
        default=None, max_length=MAX_THUMBNAIL_BYTES,
        description="A small JPEG of the image the model saw, inline or fetched (WORKER_THUMBNAIL_PX on its longer "
        "side), base64 in JSON.",
    )
    language: Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")] | None = Field(
        default=None, description="ISO 639-1 code of the language detected in the post's text (and the text read "
        "from its image); null when there are too few letters to tell.",
    )
    language_supported: bool = Field(
        default=True, description="False when the detected language is not one the model was evaluated on: "
        "the label is then a guess, and trend figures leave the post out.",
    )

    @field_validator("created_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return as_utc(value)

    @property
    def polarity(self) -> float:
        """Expected polarity under the model: P(pos) - P(neg)."""
        return self.probabilities.get(Label.POSITIVE, 0.0) - self.probabilities.get(Label.NEGATIVE, 0.0)


class TrendBucket(_Strict):
    """Aggregated sentiment for one brand over one time bucket."""

    brand: str
    granularity: str = "minute"
    bucket_start: datetime
    negative: int = 0
    neutral: int = 0
    positive: int = 0
    polarity_sum: float = 0.0
    removed: int = 0
    """Posts taken out of this bucket again because their source deleted them."""

    @property
    def volume(self) -> int:
        return self.negative + self.neutral + self.positive

    @property
    def mean_polarity(self) -> float:
        return self.polarity_sum / self.volume if self.volume else 0.0


class PostDeletion(_Strict):
    """A source said a post was deleted (Bluesky, Mastodon): the monitor forgets its text and takes it out of the
    trends from now on. Published by connectors to the deletions topic, keyed by `post_id`."""

    post_id: Annotated[str, StringConstraints(min_length=1, max_length=128)] = Field(
        description="The deleted post's id, as its connector set it on the `Post`.")
    deleted_at: Timestamp = Field(description="When the source reported the deletion: an RFC 3339 string or unix "
                                  "seconds.")
    source: str = "unknown"

    @field_validator("deleted_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return as_utc(value)


class DeadLetter(_Strict):
    """A message a worker could not process, kept with the reason so nothing is lost silently."""

    code: ReasonCode = Field(description="Why, as a stable machine-readable code (`schemas.reasons.ReasonCode`).")
    reason: str = Field(description="Why, for people: the code's details (which limit, which field, which error).")
    topic: str
    partition: int | None = None
    offset: int | None = None
    payload: WireBytes = Field(description="The message's value as it was (cut to its first 256 KiB), base64.")
    key: WireBytes | None = Field(default=None, description="The message's key as it was, base64; the dead letter is "
                                  "published under the same key.")
    failed_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class ModelRole(StrEnum):
    """Which model a worker serves: the champion's results feed the trends, a challenger's only the shadow topic."""

    CHAMPION = "champion"
    CHALLENGER = "challenger"


class ModelAssignment(_Strict):
    """Which checkpoint a model role serves: a record of the model control topic (MODEL_CONTROL_TOPIC), keyed by the
    role (`champion` or `challenger`). The topic is compacted, so the latest record per role is the assignment;
    `monitor model serve` and `monitor model promote` write it and every worker of the role follows it."""

    checkpoint: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1024)] = Field(
        description="A MODEL_CHECKPOINT value: a path the workers can read, or a shipped name (`bootstrap`, "
        "`multilingual`, `untrained`).")
    model_id: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = Field(
        default=None, description="The model id the checkpoint must load as (`<config version>@<sha256, 12 hex>`): "
        "a worker refuses a file that loads as another. Null: whatever the file holds.")
    share: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Challenger only: the share of posts it shadow-scores (by a hash "
        "of the post id); null keeps the worker's MODEL_SHADOW_SHARE.")
    updated_at: Timestamp | None = Field(
        default=None, description="When the assignment was written (`monitor model` sets it): an RFC 3339 string or "
        "unix seconds. A record that repeats the previous one, this included, changes nothing.")

    @field_validator("updated_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else as_utc(value)
