"""The FastAPI app: read and admin endpoints, the live feed, the dashboard page, vendored API docs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from importlib.resources import files
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.logging import get_logger
from core.settings import Settings
from monitor.alerts.runner import run_alert_loop
from monitor.api import (
    live,
    routes_admin,
    routes_explain,
    routes_keyphrases,
    routes_models,
    routes_posts,
    routes_read,
)
from monitor.api.errors import BodyLimit, ServerErrors, method_not_allowed, validation_error
from monitor.api.explainer import ExplainerLoader, Explanations
from monitor.api.security import SecurityHeaders
from monitor.api.state import ApiState

log = get_logger(__name__)

STATIC = files("monitor.api").joinpath("static")


def create_app(settings: Settings, run_alerts: bool = True, explainer: ExplainerLoader | None = None) -> FastAPI:
    """`run_alerts`: evaluate alert rules every ALERT_INTERVAL_S in this process (advisory-locked across replicas).
    `explainer`: loads the model that explains posts, on the first request for an explanation (none: the endpoint
    answers 404)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.api = ApiState.open(settings)
        app.state.explanations = Explanations(explainer if settings.api.explanations else None)
        loop = None
        if run_alerts:
            loop = asyncio.create_task(run_alert_loop(app.state.api.engine, settings.alerts))
        try:
            yield
        finally:
            if loop is not None:
                loop.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await loop
            await app.state.api.close()

    app = FastAPI(title="Sentiment monitor", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Per-brand sentiment trends, comparisons, example posts, live updates and alerts. "
                              "Send `Authorization: Bearer <API_READ_TOKEN>` when a read token is configured; "
                              "writes need API_ADMIN_TOKEN.")
    # Innermost first: the body limit and the 500 handler answer inside the security headers (and CORS).
    app.add_middleware(BodyLimit, max_bytes=settings.api.max_body_bytes)
    app.add_middleware(ServerErrors)
    app.add_middleware(SecurityHeaders)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, method_not_allowed)
    origins = [o.strip() for o in settings.api.cors_origins.split(",") if o.strip()]
    if origins:
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST", "PUT", "PATCH",
                           "DELETE"], allow_headers=["Authorization", "Content-Type"], max_age=600)
    app.include_router(routes_read.router)
    app.include_router(routes_posts.router)
    app.include_router(routes_models.router)
    app.include_router(routes_keyphrases.router)
    app.include_router(routes_explain.router)
    app.include_router(routes_admin.router)
    app.include_router(live.router)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    @app.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        """The page holds no data; it asks for the read token (`?token=` or a prompt) and sends it as a header."""
        return FileResponse(str(STATIC.joinpath("index.html")), headers={"Cache-Control": "no-cache"})

    @app.get("/healthz", include_in_schema=False)
    async def liveness() -> dict:
        """Unauthenticated liveness for load balancers (no data); `/api/health` has the details."""
        return {"status": "ok"}

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="Sentiment monitor API",
                                   swagger_js_url="/static/vendor/swagger-ui-bundle.js",
                                   swagger_css_url="/static/vendor/swagger-ui.css",
                                   swagger_favicon_url="/static/favicon.svg")

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = open_reads(FastAPI.openapi(app), bool(settings.api.read_token))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def open_reads(spec: dict[str, Any], read_token: bool) -> dict[str, Any]:
    """Without API_READ_TOKEN reads need no token: the document says so (an empty security requirement)."""
    if not read_token:
        for operations in spec.get("paths", {}).values():
            get = operations.get("get")
            if get and get.get("security"):
                get["security"] = [{}, *get["security"]]
    return spec
