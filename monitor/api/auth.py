"""Bearer-token access control: a read token for data and the live feed, an admin token for writes.

Tokens are compared with `hmac.compare_digest` (constant time). The admin token also reads.
Browsers' EventSource cannot send headers, so the live feed (only) also takes `?token=`.
"""

from __future__ import annotations

import hmac

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyQuery, HTTPBearer

from monitor.api.state import ApiState, get_state

BEARER = HTTPBearer(auto_error=False, scheme_name="bearer",
                    description="API_READ_TOKEN for reads (when set), API_ADMIN_TOKEN for reads and writes")
"""Declares the scheme in the OpenAPI document (Swagger's Authorize); the checks below read the header."""
QUERY_TOKEN = APIKeyQuery(name="token", auto_error=False, scheme_name="queryToken",
                          description="The read token as `?token=`, on the live feed only (EventSource sends no "
                                      "headers)")


def _matches(given: str | None, expected: str | None) -> bool:
    return bool(given) and bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def check_read(token: str | None, state: ApiState) -> None:
    settings = state.settings
    if not settings.api.read_token:
        return
    if token is None:
        raise _unauthorized("a bearer token is required (API_READ_TOKEN)")
    if not (_matches(token, settings.api.read_token) or _matches(token, settings.api.admin_token)):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="invalid token")


def require_read(request: Request, state: ApiState = Depends(get_state), _scheme: object = Security(BEARER)) -> None:
    check_read(bearer(request), state)


def require_read_or_query_token(request: Request, state: ApiState = Depends(get_state),
                                _scheme: object = Security(BEARER), _query: object = Security(QUERY_TOKEN)) -> None:
    check_read(bearer(request) or request.query_params.get("token") or None, state)


def require_admin(request: Request, state: ApiState = Depends(get_state), _scheme: object = Security(BEARER)) -> None:
    expected = state.settings.api.admin_token
    if not expected:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="writes are disabled: API_ADMIN_TOKEN is not set")
    token = bearer(request)
    if token is None:
        raise _unauthorized("an admin bearer token is required (API_ADMIN_TOKEN)")
    if not _matches(token, expected):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="invalid admin token")
