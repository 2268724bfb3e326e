"""Write endpoints (API_ADMIN_TOKEN): alert rules CRUD, tracked brands add/remove."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Response, status
from pydantic import BaseModel, Field

from monitor.alerts.rules import AlertRule, AlertRuleIn, AlertRulePatch, create_rule, delete_rule, update_rule
from monitor.api.auth import require_admin
from monitor.api.state import ApiState, get_state
from monitor.store.brands import TrackedBrand, add_brand, remove_brand

router = APIRouter(prefix="/api", dependencies=[Depends(require_admin)])

RuleId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _not_found(what: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=f"{what} not found")


@router.post("/alert-rules", response_model=AlertRule, status_code=status.HTTP_201_CREATED,
             summary="Create an alert rule")
async def create(rule: AlertRuleIn, state: ApiState = Depends(get_state)) -> AlertRule:
    return await create_rule(state.engine, rule)


@router.patch("/alert-rules/{rule_id}", response_model=AlertRule, summary="Change an alert rule")
async def patch(rule_id: RuleId, changes: AlertRulePatch, state: ApiState = Depends(get_state)) -> AlertRule:
    try:
        updated = await update_rule(state.engine, rule_id, changes)
    except ValueError as exc:  # the merged rule is invalid (e.g. a negative_share threshold above 1)
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from None
    if updated is None:
        raise _not_found(f"alert rule {rule_id}")
    return updated


@router.delete("/alert-rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete an alert rule")
async def delete(rule_id: RuleId, state: ApiState = Depends(get_state)) -> Response:
    if not await delete_rule(state.engine, rule_id):
        raise _not_found(f"alert rule {rule_id}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


class BrandTerms(BaseModel):
    keywords: list[str] = Field(default_factory=list, max_length=200)
    aliases: list[str] = Field(default_factory=list, max_length=200)
    hashtags: list[str] = Field(default_factory=list, max_length=200)
    handles: list[str] = Field(default_factory=list, max_length=200)
    replace: bool = False


@router.put("/brands/{name}", response_model=TrackedBrand, summary="Track a brand (or add terms to it)")
async def put_brand(name: Annotated[str, Path(min_length=1, max_length=64)], terms: BrandTerms,
                    state: ApiState = Depends(get_state)) -> TrackedBrand:
    try:
        brand = TrackedBrand(name=name, **terms.model_dump(exclude={"replace"}))
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from None
    return await add_brand(state.engine, brand, replace=terms.replace)


@router.delete("/brands/{name}", status_code=status.HTTP_204_NO_CONTENT, summary="Stop tracking a brand")
async def delete_brand(name: Annotated[str, Path(min_length=1, max_length=64)],
                       state: ApiState = Depends(get_state)) -> Response:
    if not await remove_brand(state.engine, name):
        raise _not_found(f"brand {name}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
