"""Response bodies of the read endpoints (they also document the API at /docs)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from schemas import TrendBucket


class BrandInfo(BaseModel):
    name: str
    tracked: bool
    volume: int
    last_bucket: datetime | None


class TrendPoint(BaseModel):
    bucket_start: datetime
    negative: int
    neutral: int
    positive: int
    volume: int
    mean_polarity: float
    net_sentiment: float

    @classmethod
    def of(cls, bucket: TrendBucket) -> TrendPoint:
        net = (bucket.positive - bucket.negative) / bucket.volume if bucket.volume else 0.0
        return cls(bucket_start=bucket.bucket_start, negative=bucket.negative, neutral=bucket.neutral,
                   positive=bucket.positive, volume=bucket.volume, mean_polarity=bucket.mean_polarity,
                   net_sentiment=net)


class TrendSeries(BaseModel):
    brand: str
    granularity: str
    source: str
    """`redis` (hot cache) or `postgres` (fallback, older than the hot window, or one language)."""
    language: str | None = None
    """The `language` asked for; null: the default series, every language the model supports."""
    language_supported: bool | None = None
    """With `language`: false when the model was not evaluated on it (the default series leaves it out); null when
    the window has no post in it, or without `language`."""
    model: str | None = None
    """The `model` asked for: its live and re-scored counts only; null: the live counts, whichever model."""
    points: list[TrendPoint]


class BrandComparison(BaseModel):
    brand: str
    negative: int
    neutral: int
    positive: int
    volume: int
    share_of_voice: float
    net_sentiment: float
    mean_polarity: float


class Comparison(BaseModel):
    granularity: str
    since: datetime | None
    until: datetime | None
    language: str | None = None
    """The `language` asked for; null: every language the model supports."""
    language_supported: bool | None = None
    """With `language`: whether the model was evaluated on it (null when no compared brand has a post in it)."""
    total_volume: int
    brands: list[BrandComparison]


class LanguageVolume(BaseModel):
    language: str
    """ISO 639-1 code, or `und` when the posts' language could not be told."""
    language_supported: bool
    """False: the model was not evaluated on this language, and the default trend figures leave these posts out."""
    negative: int
    neutral: int
    positive: int
    volume: int
    share: float
    """Of the brand's posts in every language over the window."""


class LanguageBreakdown(BaseModel):
    brand: str
    granularity: str
    since: datetime
    until: datetime | None
    total_volume: int
    """Posts in every language, supported or not."""
    unsupported_volume: int
    """Posts the default trend figures leave out."""
    languages: list[LanguageVolume]
    """Largest volume first; a language appears twice if the model's support for it changed within the window."""


class ExamplePost(BaseModel):
    post_id: str
    created_at: datetime
    processed_at: datetime
    label: str
    confidence: float
    p_negative: float
    p_neutral: float
    p_positive: float
    polarity: float
    model_version: str
    text_excerpt: str
    image_ref: str | None
    language: str | None
    """ISO 639-1 code the worker detected; null when the text was too short to tell."""
    language_supported: bool
    """False: the model was not evaluated on this language; the post is left out of trend counts."""
    thumbnail_url: str | None
    """Where the JPEG thumbnail of the post's image is (`GET`, same token), when the worker made one."""
    source: str | None = None
    """Where the post came from (a connector's name, e.g. `bluesky`); null for posts stored before sources were."""


class PostPage(BaseModel):
    """One page of a brand's posts, newest first; pass `next_cursor` back as `cursor` for the next."""

    brand: str
    since: datetime
    """The window's start: the `since` asked for, or 400 days before `until` (or now)."""
    until: datetime | None
    posts: list[ExamplePost]
    next_cursor: str | None
    """Opaque; null on the last page."""


class SourceVolume(BaseModel):
    source: str | None
    """A connector's name; null: posts stored before posts had a source."""
    posts: int


class Health(BaseModel):
    status: str
    """`ok`, or `degraded` when Redis is down (reads fall back to PostgreSQL), or `down` without PostgreSQL."""
    database: dict
    redis: dict


class ModelVersion(BaseModel):
    model_version: str
    """`<config version>@<first 12 hex digits of the checkpoint's sha256>`; `unrecorded`: counts made before trend
    buckets had a model."""
    live_counts: int
    """Posts it scored live, once per brand they mention, as the trends count them (the default figures)."""
    rescored_counts: int
    """The same for the posts `monitor recompute` scored with it (its own series only)."""
    first_day: datetime | None
    """Start of the first and last UTC day with posts it scored live; null when it scored none live."""
    last_day: datetime | None


class ShadowAgreement(BaseModel):
    challenger: str
    champions: dict[str, int]
    """Champion model id -> posts compared with it."""
    compared: int
    waiting: int
    """The challenger's results whose post has no champion result (yet), or was deleted."""
    agreement: float | None
    """Share of compared posts both labelled alike; null before any."""
    confusion: dict[str, dict[str, int]]
    """Champion label -> challenger label -> posts."""
    label_shares: dict[str, dict[str, float]]
    """`champion` / `challenger` -> label -> share of the compared posts."""


class KeyphraseCount(BaseModel):
    phrase: str
    label: str
    posts: int
    """Posts in the window with this term and label."""
    share: float
    """Of the brand's posts with this label in the window."""
    previous_posts: int
    """The same count over the window of equal length just before."""
    rising: float | None
    """z-score of the term's log-odds in this window against the one before (above about 2: rising); null when the
    window before has no posts with this label."""


class KeyphraseList(BaseModel):
    brand: str
    granularity: str
    since: datetime
    until: datetime
    previous_since: datetime
    """Start of the window `previous_posts` and `rising` compare with (it ends at `since`)."""
    phrases: list[KeyphraseCount]
    """Per label, most posts first."""


class ExplainedWord(BaseModel):
    """One whitespace-separated word of the post's text: `text == post_text[start:end]` (character offsets)."""

    text: str
    start: int
    end: int
    attribution: float
    """-1..1: positive pushed the model towards `label`, negative against it; the post's strongest word is ±1."""
    tokens: int
    """Word pieces the model read of it; 0 = past the model's token limit, so no attribution."""


class ModalityBalance(BaseModel):
    """For a post with text and an image: the probability of `label` from each modality alone and from both."""

    text_only: float
    image_only: float
    both: float
    text_label: str
    """The label the text alone gets."""
    image_label: str
    """The label the image (its stored thumbnail) alone gets."""
    image_text_disagree: bool


class Explanation(BaseModel):
    """Which words drove the label: integrated gradients on the text encoder's word embeddings, against a
    baseline of `[MASK]` pieces, for the explaining model's own label of the stored text (and thumbnail)."""

    post_id: str
    text: str
    """The stored text that was explained (`words` index into it)."""
    text_maybe_cut: bool
    """Only the post's first 280 characters are stored (a post stored before full texts were kept)."""
    label: str
    """The explaining model's label for the stored text and thumbnail."""
    probabilities: dict[str, float]
    words: list[ExplainedWord]
    modality: ModalityBalance | None
    """Null for a post without an image (or without text)."""
    with_image: bool
    """Whether a thumbnail was there to read."""
    truncated: bool
    """The text ran past the model's token limit; later words have `tokens` 0."""
    convergence_delta: float
    """Captum's completeness gap, in logit units: how far the summed raw attributions are from `logit_change`."""
    logit_change: float
    """The label's logit on the post minus on the baseline: what the raw attributions add up to."""
    scale: float
    """The raw attribution, in logit units, that an `attribution` of 1 stands for."""
    n_steps: int
    explained_by: str
    """The model id that computed this explanation (MODEL_CHECKPOINT of the API process)."""
    scored_by: str
    """The model id that scored the post live (`model_version` of the stored post)."""
    stored_label: str
    same_model: bool
    """False: the stored label came from another model, so `label` may differ from it."""
    note: str | None
    """A sentence when `same_model` is false."""
