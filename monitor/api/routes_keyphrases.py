"""Keyphrase endpoint: what people say about a brand, per sentiment, and what is rising."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from monitor.api.auth import require_read
from monitor.api.errors import COMMON, NOT_FOUND, invalid, single_valued_query
from monitor.api.models import KeyphraseCount, KeyphraseList
from monitor.api.routes_read import BrandPath, Since, Until, brand_name, known, window
from monitor.api.state import ApiState, get_state
from monitor.store.keyphrases import keyphrase_window, top_keyphrases

router = APIRouter(prefix="/api", dependencies=[Depends(require_read), Depends(single_valued_query)],
                   responses=COMMON)

MAX_DAYS = {"hour": 31, "day": 400}
"""The longest window per granularity: hour buckets are kept as long as minute buckets, day buckets for good."""


@router.get("/brands/{brand}/keyphrases", response_model=KeyphraseList, responses=NOT_FOUND,
            summary="A brand's keyphrases per sentiment, and which are rising")
async def keyphrases(brand: BrandPath, granularity: Literal["hour", "day"] = "hour", since: Since = None,
                     until: Until = None, label: Literal["negative", "neutral", "positive"] | None = None,
                     top: Annotated[int, Query(ge=1, le=50)] = 10,
                     state: ApiState = Depends(get_state)) -> KeyphraseList:
    """Words and two-word phrases (stop words and the brand's name out) in the most posts per label over
    [since, until) (default: the last day in hours, or the last week in days), every language, from the keyphrase
    tables the sink keeps; `rising` compares each with the window of equal length just before."""
    since, until = window(since, until)
    until = until or datetime.now(UTC)
    since = since or keyphrase_window(granularity, until)
    if since >= until:
        raise invalid(("query", "since"), "`since` must be before `until`")
    if (until - since).days > MAX_DAYS[granularity]:
        raise invalid(("query", "since"), f"at most {MAX_DAYS[granularity]} days of {granularity} buckets")
    name = brand_name(brand)
    await known(state, [name])
    found = await top_keyphrases(state.engine, name, granularity, since, until, label, top)
    return KeyphraseList(brand=name, granularity=granularity, since=since, until=until,
                         previous_since=since - (until - since),
                         phrases=[KeyphraseCount.model_validate(k, from_attributes=True) for k in found])
