"""Model endpoints: which models scored the stored posts, and how a challenger agrees with the champion."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from monitor.api.auth import require_read
from monitor.api.errors import COMMON, single_valued_query
from monitor.api.models import ModelVersion, ShadowAgreement
from monitor.api.routes_read import ModelFilter, Since, Until, window
from monitor.api.state import ApiState, get_state
from monitor.store.model_versions import model_versions
from monitor.store.shadow import compare_shadow

router = APIRouter(prefix="/api/models", dependencies=[Depends(require_read), Depends(single_valued_query)],
                   responses=COMMON)


@router.get("", response_model=list[ModelVersion], summary="Models that scored the posts in the trends")
async def models(state: ApiState = Depends(get_state)) -> list[dict]:
    """Every model id in the trend buckets (live) or the re-scored buckets (`monitor recompute`), with its counts
    from the day buckets, newest live first."""
    return await model_versions(state.engine)


@router.get("/shadow", response_model=list[ShadowAgreement],
            summary="Shadow scoring: each challenger's agreement and confusion against the champion")
async def shadow(since: Since = None, until: Until = None,
                 challenger: Annotated[ModelFilter, Query(description="Only this challenger's model id")] = None,
                 state: ApiState = Depends(get_state)) -> list[ShadowAgreement]:
    """Over the challenger results recorded in [since, until) (default: all kept), compared post by post with the
    champion's live results; most compared first."""
    since, until = window(since, until)
    return [ShadowAgreement(challenger=c.challenger, champions=c.champions, compared=c.compared, waiting=c.waiting,
                            agreement=c.agreement, confusion=c.confusion, label_shares=c.label_shares())
            for c in await compare_shadow(state.engine, since, until, challenger)]
