"""Read endpoints: brands, trend series, comparison, example posts and their thumbnails, health, alerts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response, status

from monitor.alerts.rules import AlertEvent, AlertRule, list_rules, recent_events
from monitor.api.auth import require_read
from monitor.api.models import BrandComparison, BrandInfo, Comparison, ExamplePost, Health, TrendPoint, TrendSeries
from monitor.api.queries import brands_overview, database_health, example_posts, post_thumbnail_jpeg, redis_health
from monitor.api.state import ApiState, get_state
from monitor.store import brand_rules
from monitor.store.retention import Retention

router = APIRouter(prefix="/api", dependencies=[Depends(require_read)])

Granularity = Literal["minute", "hour", "day"]
BrandPath = Annotated[str, Path(min_length=1, max_length=64, description="Brand name (case-insensitive)")]
Since = Annotated[datetime | None, Query(description="ISO 8601; naive times are UTC")]
Until = Annotated[datetime | None, Query(description="ISO 8601, exclusive; naive times are UTC")]
MAX_COMPARE = 12


def window(since: datetime | None, until: datetime | None) -> tuple[datetime | None, datetime | None]:
    """Aware UTC bounds, refusing an empty or inverted window with a 422."""
    since, until = (t.replace(tzinfo=UTC) if t and t.tzinfo is None else t for t in (since, until))
    if since and until and since >= until:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail="`since` must be before `until`")
    return since, until


def series_window(granularity: Granularity, since: datetime | None, until: datetime | None,
                  state: ApiState) -> tuple[datetime | None, datetime | None]:
    """`window`, also refusing minute buckets from before their retention."""
    since, until = window(since, until)
    if reason := Retention.from_settings(state.settings).pruned_window(granularity, since):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=reason)
    return since, until


def brand_name(raw: str) -> str:
    """The stored form of a brand from a URL; 422 when it is empty."""
    try:
        return brand_rules.brand_name(raw)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from None


@router.get("/brands", response_model=list[BrandInfo], summary="Tracked brands and brands with stored trends")
async def brands(state: ApiState = Depends(get_state)) -> list[dict]:
    return await brands_overview(state.engine)


@router.get("/brands/{brand}/trends", response_model=TrendSeries, summary="One brand's trend series")
async def trends(brand: BrandPath, granularity: Granularity = "minute", since: Since = None, until: Until = None,
                 state: ApiState = Depends(get_state)) -> TrendSeries:
    """Served from the Redis hot series when warm, else PostgreSQL (`source` says which)."""
    since, until = series_window(granularity, since, until, state)
    name = brand_name(brand)
    read = await state.reader.read(name, granularity, since, until)
    return TrendSeries(brand=name, granularity=granularity, source=read.source,
                       points=[TrendPoint.of(b) for b in read.buckets])


@router.get("/compare", response_model=Comparison, summary="Share of voice and net sentiment of several brands")
async def compare(brands: Annotated[list[str], Query(min_length=1, description="Repeat or comma-separate")],
                  granularity: Granularity = "minute", since: Since = None, until: Until = None,
                  state: ApiState = Depends(get_state)) -> Comparison:
    """Totals over the window (default: the granularity's hot window) per brand; share of voice = brand volume
    over the summed volume of the brands compared."""
    since, until = series_window(granularity, since, until, state)
    names = list(dict.fromkeys(brand_name(part) for raw in brands for part in raw.split(",") if part.strip()))
    if not names or len(names) > MAX_COMPARE:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=f"compare 1 to {MAX_COMPARE} brands")
    rows = []
    for name in names:
        buckets = (await state.reader.read(name, granularity, since, until)).buckets
        counts = {label: sum(getattr(b, label) for b in buckets) for label in ("negative", "neutral", "positive")}
        volume = sum(counts.values())
        polarity = sum(b.polarity_sum for b in buckets)
        rows.append({"brand": name, **counts, "volume": volume, "polarity_sum": polarity})
    total = sum(r["volume"] for r in rows)
    return Comparison(granularity=granularity, since=since, until=until, total_volume=total, brands=[
        BrandComparison(brand=r["brand"], negative=r["negative"], neutral=r["neutral"], positive=r["positive"],
                        volume=r["volume"], share_of_voice=r["volume"] / total if total else 0.0,
                        net_sentiment=(r["positive"] - r["negative"]) / r["volume"] if r["volume"] else 0.0,
                        mean_polarity=r["polarity_sum"] / r["volume"] if r["volume"] else 0.0)
        for r in rows])


@router.get("/brands/{brand}/posts", response_model=list[ExamplePost], summary="Example posts (drill-down)")
async def posts(brand: BrandPath, label: Literal["negative", "neutral", "positive"] | None = None,
                since: Since = None, until: Until = None, limit: Annotated[int, Query(ge=1, le=200)] = 20,
                language: Annotated[str | None, Query(pattern=r"^[a-z]{2}$",
                                                      description="ISO 639-1 code, e.g. `de`")] = None,
                state: ApiState = Depends(get_state)) -> list[dict]:
    """Newest first; `confidence` is the winning label's probability. Posts in a language the model does not
    support (`language_supported` false) are listed here but not counted in trends."""
    since, until = window(since, until)
    return await example_posts(state.engine, brand_name(brand), label, since, until, limit, language)


@router.get("/posts/{post_id:path}/thumbnail", summary="A post's image thumbnail (JPEG)",
            response_class=Response, responses={200: {"content": {"image/jpeg": {}}}, 404: {}})
async def thumbnail(post_id: str, state: ApiState = Depends(get_state)) -> Response:
    """The small JPEG a worker made of a post's image. A post's thumbnail never changes, so browsers
    may keep it; `private`, since it may be behind a read token."""
    jpeg = await post_thumbnail_jpeg(state.engine, post_id)
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
async def alerts(brand: Annotated[str | None, Query(max_length=64)] = None, since: Since = None,
                 limit: Annotated[int, Query(ge=1, le=500)] = 50, state: ApiState = Depends(get_state)):
    since, _ = window(since, None)
    return await recent_events(state.engine, brand, limit, since)


@router.get("/alert-rules", response_model=list[AlertRule], summary="Alert rules")
async def alert_rules(brand: Annotated[str | None, Query(max_length=64)] = None, state: ApiState = Depends(get_state)):
    return await list_rules(state.engine, brand)
