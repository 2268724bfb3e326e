"""Read endpoints: brands, trend series, comparison, languages, example posts and their thumbnails, health, alerts.

Trend figures count the posts in languages the model supports, as they always did; `language` asks for one
language's posts instead, supported or not, read from PostgreSQL (the Redis series hold the default figures only).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response, status
from pydantic import BeforeValidator

from monitor.alerts.rules import AlertEvent, AlertRule, list_rules, recent_events
from monitor.api.auth import require_read
from monitor.api.errors import COMMON, NOT_FOUND, invalid, single_valued_query
from monitor.api.models import (
    BrandComparison,
    BrandInfo,
    Comparison,
    ExamplePost,
    Health,
    LanguageBreakdown,
    LanguageVolume,
    TrendPoint,
    TrendSeries,
)
from monitor.api.queries import (
    brands_overview,
    database_health,
    example_posts,
    redis_health,
    unknown_brands,
)
from monitor.api.state import ApiState, get_state
from monitor.store import brand_rules
from monitor.store.brands import MAX_NAME_CHARS
from monitor.store.cache import hot_since
from monitor.store.languages import language_supported, language_volumes
from monitor.store.posts import thumbnail_jpeg
from monitor.store.retention import Retention
from monitor.store.text import StoredText, stored_text
from monitor.store.trends import read_trends

router = APIRouter(prefix="/api", dependencies=[Depends(require_read), Depends(single_valued_query)], responses=COMMON)

Granularity = Literal["minute", "hour", "day"]
BrandPath = Annotated[stored_text(min_length=1, max_length=MAX_NAME_CHARS),
                      Path(description="Brand name (case-insensitive); 404 when no brand has this name")]
BrandFilter = Annotated[stored_text(max_length=MAX_NAME_CHARS) | None, Query(description="Only this brand")]

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})")


def rfc3339(value: object) -> object:
    """Only an RFC 3339 date-time with its offset; a bare number would otherwise be read as a Unix time."""
    if isinstance(value, str) and not _RFC3339.fullmatch(value):
        raise ValueError("expected an RFC 3339 date-time with an offset, e.g. 2026-01-31T12:00:00Z")
    return value


Since = Annotated[datetime | None, BeforeValidator(rfc3339),
                  Query(description="RFC 3339 date-time with offset, e.g. `2026-01-31T12:00:00Z`")]
Until = Annotated[datetime | None, BeforeValidator(rfc3339),
                  Query(description="RFC 3339 date-time with offset, exclusive")]
LanguageFilter = Annotated[str | None, Query(
    pattern=r"^[a-z]{2}$|^und$",
    description="Only posts in this language, whether the model supports it or not: an ISO 639-1 code (`de`), or "
                "`und` for posts whose language could not be told")]
ModelFilter = Annotated[stored_text(min_length=1, max_length=64) | None, Query(
    description="Only this model's counts (a model id, as `GET /api/models` lists them): the posts it scored live "
                "and those `monitor recompute` scored with it")]
MAX_COMPARE = 12


def window(since: datetime | None, until: datetime | None) -> tuple[datetime | None, datetime | None]:
    """UTC bounds, refusing an empty or inverted window (or one beyond what a UTC time can hold) with a 422."""
    try:
        since, until = (t.replace(tzinfo=UTC) if t and t.tzinfo is None else t.astimezone(UTC) if t else None
                        for t in (since, until))
    except OverflowError:
        raise invalid(("query", "since" if since else "until"), "date-time out of range once in UTC") from None
    if since and until and since >= until:
        raise invalid(("query", "until"), "`since` must be before `until`")
    return since, until


def series_window(granularity: Granularity, since: datetime | None, until: datetime | None,
                  state: ApiState) -> tuple[datetime | None, datetime | None]:
    """`window`, also refusing minute buckets from before their retention."""
    since, until = window(since, until)
    if reason := Retention.from_settings(state.settings).pruned_window(granularity, since):
        raise invalid(("query", "since"), reason)
    return since, until


def brand_name(raw: str, loc: tuple[str, ...] = ("path", "brand")) -> str:
    """The stored form of a brand from a URL; 422 when it is empty."""
    try:
        return brand_rules.brand_name(raw)
    except ValueError as exc:
        raise invalid(loc, str(exc)) from None


async def known(state: ApiState, names: list[str]) -> None:
    """404 naming the brands that are neither tracked nor in any stored trend or post: a typo is not "no data"."""
    if unknown := await unknown_brands(state.engine, names):
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            detail=f"unknown brand{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)} (neither "
                                   "tracked nor seen in any post; GET /api/brands lists the known ones)")


@router.get("/brands", response_model=list[BrandInfo], summary="Tracked brands and brands with stored trends",
            description="Every brand, tracked or seen; `volume` counts its posts (supported languages) over the UTC "
                        "days the window touches, or every stored day without `since`/`until`. In a window, tracked "
                        "brands without posts there are listed with 0 and untracked ones left out; `last_bucket` is "
                        "the window's last day with posts.")
async def brands(since: Since = None, until: Until = None, state: ApiState = Depends(get_state)) -> list[dict]:
    since, until = window(since, until)
    return await brands_overview(state.engine, since, until)


@router.get("/brands/{brand}/trends", response_model=TrendSeries, summary="One brand's trend series",
            responses=NOT_FOUND)
async def trends(brand: BrandPath, granularity: Granularity = "minute", since: Since = None, until: Until = None,
                 language: LanguageFilter = None, model: ModelFilter = None,
                 state: ApiState = Depends(get_state)) -> TrendSeries:
    """Posts in the languages the model supports, served from the Redis hot series when warm, else PostgreSQL
    (`source` says which). With `language`, that language's posts only, and whether the model supports it. With
    `model`, one model's counts, from PostgreSQL."""
    since, until = series_window(granularity, since, until, state)
    name = brand_name(brand)
    await known(state, [name])
    if model is not None:
        buckets = await read_trends(state.engine, name, granularity, since or hot_since(granularity), until, language,
                                    model)
        return TrendSeries(brand=name, granularity=granularity, source="postgres", language=language, model=model,
                           points=[TrendPoint.of(b) for b in buckets])
    if language is None:
        read = await state.reader.read(name, granularity, since, until)
        return TrendSeries(brand=name, granularity=granularity, source=read.source,
                           points=[TrendPoint.of(b) for b in read.buckets])
    since = since or hot_since(granularity)  # the reader's default window
    buckets = await read_trends(state.engine, name, granularity, since, until, language)
    supported = await language_supported(state.engine, [name], language, granularity, since, until)
    return TrendSeries(brand=name, granularity=granularity, source="postgres", language=language,
                       language_supported=supported, points=[TrendPoint.of(b) for b in buckets])


@router.get("/compare", response_model=Comparison, summary="Share of voice and net sentiment of several brands",
            responses=NOT_FOUND)
async def compare(brands: Annotated[list[StoredText], Query(min_length=1, max_length=MAX_COMPARE,
                                                            description="Repeat or comma-separate, 1 to 12 brands; "
                                                                        "404 names any unknown one")],
                  granularity: Granularity = "minute", since: Since = None, until: Until = None,
                  language: LanguageFilter = None, state: ApiState = Depends(get_state)) -> Comparison:
    """Totals over the window (default: the granularity's hot window) per brand; share of voice = brand volume
    over the summed volume of the brands compared. Posts in the languages the model supports, or with `language`
    that language's only."""
    since, until = series_window(granularity, since, until, state)
    parts = [part for raw in brands for part in raw.split(",") if part.strip()]
    if any(len(part.strip()) > MAX_NAME_CHARS for part in parts):
        raise invalid(("query", "brands"), f"a brand name has at most {MAX_NAME_CHARS} characters")
    names = list(dict.fromkeys(brand_name(part, ("query", "brands")) for part in parts))
    if not names or len(names) > MAX_COMPARE:
        raise invalid(("query", "brands"), f"compare 1 to {MAX_COMPARE} brands")
    await known(state, names)
    start = since or hot_since(granularity)  # the reader's default window, for reads of one language
    rows = []
    for name in names:
        buckets = (await read_trends(state.engine, name, granularity, start, until, language) if language
                   else (await state.reader.read(name, granularity, since, until)).buckets)
        counts = {label: sum(getattr(b, label) for b in buckets) for label in ("negative", "neutral", "positive")}
        volume = sum(counts.values())
        polarity = sum(b.polarity_sum for b in buckets)
        rows.append({"brand": name, **counts, "volume": volume, "polarity_sum": polarity})
    total = sum(r["volume"] for r in rows)
    supported = await language_supported(state.engine, names, language, granularity, start, until) if language else None
    return Comparison(granularity=granularity, since=since, until=until, language=language,
                      language_supported=supported, total_volume=total, brands=[
        BrandComparison(brand=r["brand"], negative=r["negative"], neutral=r["neutral"], positive=r["positive"],
                        volume=r["volume"], share_of_voice=r["volume"] / total if total else 0.0,
                        net_sentiment=(r["positive"] - r["negative"]) / r["volume"] if r["volume"] else 0.0,
                        mean_polarity=r["polarity_sum"] / r["volume"] if r["volume"] else 0.0)
        for r in rows])


@router.get("/brands/{brand}/languages", response_model=LanguageBreakdown, responses=NOT_FOUND,
            summary="A brand's posts per language, and which the trend figures leave out")
async def languages(brand: BrandPath, granularity: Granularity = "minute", since: Since = None, until: Until = None,
                    state: ApiState = Depends(get_state)) -> LanguageBreakdown:
    """Label counts per language over the window (default: the granularity's hot window), from PostgreSQL. Posts in
    a language the model was not evaluated on (`language_supported` false) are left out of the trend figures:
    this shows how many."""
    since, until = series_window(granularity, since, until, state)
    name = brand_name(brand)
    await known(state, [name])
    since = since or hot_since(granularity)
    rows = await language_volumes(state.engine, name, granularity, since, until)
    total = sum(r.volume for r in rows)
    return LanguageBreakdown(
        brand=name, granularity=granularity, since=since, until=until, total_volume=total,
        unsupported_volume=sum(r.volume for r in rows if not r.language_supported),
        languages=[LanguageVolume(language=r.language, language_supported=r.language_supported, negative=r.negative,
                                  neutral=r.neutral, positive=r.positive, volume=r.volume,
                                  share=r.volume / total if total else 0.0) for r in rows])


@router.get("/brands/{brand}/posts", response_model=list[ExamplePost], summary="Example posts (drill-down)",
            responses=NOT_FOUND)
async def posts(brand: BrandPath, label: Literal["negative", "neutral", "positive"] | None = None,
                since: Since = None, until: Until = None, limit: Annotated[int, Query(ge=1, le=200)] = 20,
                language: LanguageFilter = None,
                state: ApiState = Depends(get_state)) -> list[dict]:
    """Newest first; `confidence` is the winning label's probability. Posts in a language the model does not
    support (`language_supported` false) are listed here but left out of the default trend figures."""
    since, until = window(since, until)
    name = brand_name(brand)
    await known(state, [name])
    return await example_posts(state.engine, name, label, since, until, limit, language)


@router.get("/posts/{post_id:path}/thumbnail", summary="A post's image thumbnail (JPEG)", response_class=Response,
            responses={200: {"content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
                             "description": "The JPEG"}, **NOT_FOUND})
async def thumbnail(post_id: Annotated[StoredText, Path(description="The post's id")],
                    state: ApiState = Depends(get_state)) -> Response:
    """The small JPEG a worker made of a post's image. A post's thumbnail never changes, so browsers
    may keep it; `private`, since it may be behind a read token."""
    jpeg = await thumbnail_jpeg(state.engine, post_id)
    if jpeg is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no thumbnail for this post")
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=604800, immutable"})


@router.get("/health", response_model=Health, summary="Model and pipeline health")
async def health(state: ApiState = Depends(get_state)) -> Health:
    """PostgreSQL and Redis reachability, the newest processed_at and the model versions seen in recent posts."""
    database, redis = await database_health(state.engine), await redis_health(state.redis)
    verdict = "ok" if database["ok"] and redis["ok"] else ("degraded" if database["ok"] else "down")
    return Health(status=verdict, database=database, redis=redis)


@router.get("/alerts", response_model=list[AlertEvent], summary="Fired alerts, newest first")
async def alerts(brand: BrandFilter = None, since: Since = None, until: Until = None,
                 limit: Annotated[int, Query(ge=1, le=500)] = 50, state: ApiState = Depends(get_state)):
    since, until = window(since, until)
    return await recent_events(state.engine, brand, limit, since, until)


@router.get("/alert-rules", response_model=list[AlertRule], summary="Alert rules")
async def alert_rules(brand: BrandFilter = None, state: ApiState = Depends(get_state)):
    return await list_rules(state.engine, brand)
