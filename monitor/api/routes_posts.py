"""Analysts' endpoints: a brand's posts filtered, searched and paginated, their sources, and exports of posts and
trend series (CSV streamed, Parquet via pyarrow) for work outside the dashboard."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Literal

import pyarrow as pa
from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response, StreamingResponse

from monitor.api.auth import require_read
from monitor.api.errors import COMMON, NOT_FOUND, invalid, single_valued_query
from monitor.api.models import PostPage, SourceVolume
from monitor.api.post_search import (
    EXPORT_MAX_ROWS,
    MAX_CURSOR_CHARS,
    MAX_QUERY_CHARS,
    MAX_WINDOW_DAYS,
    BadCursor,
    bounded_window,
    csv_lines,
    csv_stream,
    export_rows,
    parquet_bytes,
    post_page,
)
from monitor.api.routes_read import (
    BrandPath,
    Granularity,
    LanguageFilter,
    ModelFilter,
    Since,
    Until,
    brand_name,
    known,
    series_window,
    window,
)
from monitor.api.state import ApiState, get_state
from monitor.store.cache import hot_since
from monitor.store.keyphrases import source_volumes
from monitor.store.posts import PostFilter
from monitor.store.text import stored_text
from monitor.store.trends import bucket_record, read_trends

router = APIRouter(prefix="/api", dependencies=[Depends(require_read), Depends(single_valued_query)], responses=COMMON)

Format = Literal["csv", "parquet"]
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}
TREND_SCHEMA = pa.schema([
    ("brand", pa.string()), ("granularity", pa.string()), ("bucket_start", pa.timestamp("us", tz="UTC")),
    ("negative", pa.int64()), ("neutral", pa.int64()), ("positive", pa.int64()), ("volume", pa.int64()),
    ("polarity_sum", pa.float64()), ("mean_polarity", pa.float64()), ("net_sentiment", pa.float64())])
TREND_COLUMNS = tuple(TREND_SCHEMA.names)
FILE_RESPONSES = {200: {"description": "The file, as an attachment (`Content-Disposition`)", "content": {
    "text/csv": {"schema": {"type": "string"}},
    "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}}}}, **NOT_FOUND}

Label = Annotated[Literal["negative", "neutral", "positive"] | None, Query(description="Only posts with this label")]
SourceFilter = Annotated[stored_text(min_length=1, max_length=64) | None, Query(
    description="Only posts from this source (a connector's name, as `GET /api/brands/{brand}/sources` lists them)")]
SearchQuery = Annotated[stored_text(max_length=MAX_QUERY_CHARS) | None, Query(
    description="Full-text search of the post's text, web-search syntax (`refund -delay`, `\"not working\"`, "
                "`late or lost`), words as written (no stemming); at most 200 characters")]
Cursor = Annotated[stored_text(min_length=1, max_length=MAX_CURSOR_CHARS) | None, Query(
    description="`next_cursor` of the previous page, with the same filters")]
WINDOW_DOC = f"`since` defaults to {MAX_WINDOW_DAYS} days before `until` (or now); a longer window is a 422."


async def post_filter(brand: BrandPath, label: Label = None, language: LanguageFilter = None,
                      source: SourceFilter = None, q: SearchQuery = None, since: Since = None, until: Until = None,
                      state: ApiState = Depends(get_state)) -> PostFilter:
    """The filters every post read takes, checked once: a bounded window, a known brand."""
    since, until = window(since, until)
    try:
        since, until = bounded_window(since, until, datetime.now(UTC))
    except ValueError as exc:
        raise invalid(("query", "since"), str(exc)) from None
    name = brand_name(brand)
    await known(state, [name])
    return PostFilter(brand=name, since=since, until=until, label=label, language=language, source=source,
                      q=q.strip() or None if q else None)


Filter = Annotated[PostFilter, Depends(post_filter)]


@router.get("/brands/{brand}/posts/page", response_model=PostPage, responses=NOT_FOUND,
            summary="A brand's posts, filtered and searched, a page at a time",
            description="Newest first, keyset-paginated: `next_cursor` (null on the last page) fetches the next page "
                        "with the same filters. `q` searches the full text (`websearch_to_tsquery('simple', q)`); "
                        "input without words matches nothing rather than failing. " + WINDOW_DOC)
async def posts_page(where: Filter, limit: Annotated[int, Query(ge=1, le=200)] = 50, cursor: Cursor = None,
                     state: ApiState = Depends(get_state)) -> PostPage:
    try:
        posts, next_cursor = await post_page(state.engine, where, limit, cursor)
    except BadCursor as exc:
        raise invalid(("query", "cursor"), str(exc)) from None
    return PostPage(brand=where.brand, since=where.since, until=where.until, posts=posts, next_cursor=next_cursor)


@router.get("/brands/{brand}/posts/export", response_class=Response, responses=FILE_RESPONSES,
            summary="A brand's posts as CSV or Parquet",
            description="The posts `GET .../posts/page` lists with the same filters, every column but the thumbnail, "
                        f"at most {EXPORT_MAX_ROWS:,} (newest first; `X-Row-Cap` says the cap applied). CSV is "
                        "streamed (header row, RFC 4180, ISO 8601 times, empty cells for nulls); Parquet is one file "
                        "(zstd). " + WINDOW_DOC)
async def posts_export(where: Filter, format: Format = "csv",  # noqa: A002 - the parameter's public name
                       limit: Annotated[int, Query(ge=1, le=EXPORT_MAX_ROWS, description=(
                           f"At most this many posts, newest first (at most {EXPORT_MAX_ROWS:,})"))] = EXPORT_MAX_ROWS,
                       state: ApiState = Depends(get_state)) -> Response:
    rows = export_rows(state.engine, where, limit)
    headers = {"Content-Disposition": attachment(where.brand, "posts", format), "X-Row-Cap": str(limit)}
    if format == "csv":
        return StreamingResponse(csv_stream(rows), media_type=MEDIA_TYPES["csv"], headers=headers)
    return Response(await parquet_bytes(rows), media_type=MEDIA_TYPES["parquet"], headers=headers)


@router.get("/brands/{brand}/trends/export", response_class=Response, responses=FILE_RESPONSES,
            summary="One brand's trend series as CSV or Parquet")
async def trends_export(brand: BrandPath, format: Format = "csv",  # noqa: A002 - the parameter's public name
                        granularity: Granularity = "minute", since: Since = None, until: Until = None,
                        language: LanguageFilter = None, model: ModelFilter = None,
                        state: ApiState = Depends(get_state)) -> Response:
    """The buckets `GET .../trends` serves with the same parameters, read from PostgreSQL, one row per non-empty
    bucket: counts, `volume`, `polarity_sum`, `mean_polarity` and `net_sentiment`."""
    since, until = series_window(granularity, since, until, state)
    name = brand_name(brand)
    await known(state, [name])
    buckets = await read_trends(state.engine, name, granularity, since or hot_since(granularity), until, language,
                                model)
    records = [bucket_record(b) for b in buckets]
    headers = {"Content-Disposition": attachment(name, f"trends-{granularity}", format)}
    if format == "csv":
        return Response(csv_lines(records, header=True, columns=TREND_COLUMNS), media_type=MEDIA_TYPES["csv"],
                        headers=headers)
    parquet = await parquet_bytes(_once(records), TREND_SCHEMA)
    return Response(parquet, media_type=MEDIA_TYPES["parquet"], headers=headers)


@router.get("/brands/{brand}/sources", response_model=list[SourceVolume], responses=NOT_FOUND,
            summary="A brand's posts per source",
            description="Posts per source over the UTC hours the window touches (days, for windows over 31 days), "
                        "largest first, from the source buckets the sink's keyphrase pass keeps (seconds behind the "
                        "posts): the values `source` filters take (`unknown`: stored before posts had a source). "
                        + WINDOW_DOC)
async def sources(brand: BrandPath, since: Since = None, until: Until = None,
                  state: ApiState = Depends(get_state)) -> list[dict]:
    where = await post_filter(brand, since=since, until=until, state=state)
    return await source_volumes(state.engine, where.brand, where.since, where.until or datetime.now(UTC))


async def _once(records: list[dict]):
    yield records


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def attachment(brand: str, what: str, format: str) -> str:  # noqa: A002 - as the query parameter
    """A download's file name: brand, content and time, in characters every file system and header takes."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f'attachment; filename="{_UNSAFE.sub("_", brand)[:64]}-{what}-{stamp}.{format}"'
