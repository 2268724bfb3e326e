"""Write endpoints (API_ADMIN_TOKEN): alert rules CRUD, tracked brands add/remove."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Response, status
from pydantic import BaseModel, Field, ValidationError

from monitor.alerts.rules import AlertRule, AlertRuleIn, AlertRulePatch, create_rule, delete_rule, update_rule
from monitor.api.auth import require_admin
from monitor.api.errors import BODY_ERRORS, COMMON, NOT_FOUND, invalid, invalid_body, single_valued_query
from monitor.api.state import ApiState, get_state
from monitor.store.brands import MAX_NAME_CHARS, MAX_TERM_CHARS, TrackedBrand, add_brand, remove_brand
from monitor.store.text import stored_text

router = APIRouter(prefix="/api", dependencies=[Depends(require_admin), Depends(single_valued_query)],
                   responses={**COMMON, **BODY_ERRORS})

RuleId = Annotated[int, Path(ge=1, le=2**31 - 1)]
BrandName = Annotated[stored_text(min_length=1, max_length=MAX_NAME_CHARS), Path(description="Brand name")]
Term = stored_text(max_length=MAX_TERM_CHARS)


def _not_found(what: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=f"{what} not found")


@router.post("/alert-rules", response_model=AlertRule, status_code=status.HTTP_201_CREATED,
             summary="Create an alert rule")
async def create(rule: AlertRuleIn, state: ApiState = Depends(get_state)) -> AlertRule:
    return await create_rule(state.engine, rule)


@router.patch("/alert-rules/{rule_id}", response_model=AlertRule, summary="Change an alert rule",
              responses=NOT_FOUND)
async def patch(rule_id: RuleId, changes: AlertRulePatch, state: ApiState = Depends(get_state)) -> AlertRule:
    try:
        updated = await update_rule(state.engine, rule_id, changes)
    except ValidationError as exc:  # the merged rule is invalid (e.g. a negative_share threshold above 1)
        raise invalid_body(exc) from None
    if updated is None:
        raise _not_found(f"alert rule {rule_id}")
    return updated


@router.delete("/alert-rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete an alert rule",
               responses=NOT_FOUND)
async def delete(rule_id: RuleId, state: ApiState = Depends(get_state)) -> Response:
    if not await delete_rule(state.engine, rule_id):
        raise _not_found(f"alert rule {rule_id}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


class BrandTerms(BaseModel):
    """Terms of at most 200 characters each, at most 200 of each kind."""

    keywords: list[Term] = Field(default_factory=list, max_length=200)
    aliases: list[Term] = Field(default_factory=list, max_length=200)
    hashtags: list[Term] = Field(default_factory=list, max_length=200)
    handles: list[Term] = Field(default_factory=list, max_length=200)
    replace: bool = Field(default=False, strict=True)


@router.put("/brands/{name}", response_model=TrackedBrand, summary="Track a brand (or add terms to it)")
async def put_brand(name: BrandName, terms: BrandTerms, state: ApiState = Depends(get_state)) -> TrackedBrand:
    try:
        brand = TrackedBrand(name=name, **terms.model_dump(exclude={"replace"}))
    except ValidationError as exc:  # the name is blank once normalised
        errors = exc.errors()
        if all(e["loc"][:1] == ("name",) for e in errors):
            raise invalid(("path", "name"), errors[0]["msg"]) from None
        raise invalid_body(exc) from None
    return await add_brand(state.engine, brand, replace=terms.replace)


@router.delete("/brands/{name}", status_code=status.HTTP_204_NO_CONTENT, summary="Stop tracking a brand",
               responses=NOT_FOUND)
async def delete_brand(name: BrandName, state: ApiState = Depends(get_state)) -> Response:
    if not await remove_brand(state.engine, name):
        raise _not_found(f"brand {name}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
