"""Security headers on every response; a Content-Security-Policy that permits only this origin."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; font-src 'self'; "
       "img-src 'self' data: blob: https: http:; object-src 'none'; base-uri 'self'; form-action 'self'; "
       "frame-ancestors 'none'")
"""Everything from this origin only; images may also come from http(s) URLs (post thumbnails whose image_ref is
one) and `blob:` URLs (thumbnails the page fetched with the read token)."""

DOCS_CSP = CSP.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'").replace(
    "style-src 'self'", "style-src 'self' 'unsafe-inline'")
"""Swagger UI (vendored, served from here) boots from one inline script: allowed on /docs only."""

HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


class SecurityHeaders:
    """Plain ASGI middleware (not BaseHTTPMiddleware): it must not buffer or break the streaming live feed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = DOCS_CSP if scope["path"] in ("/docs", "/redoc") else CSP

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in {**HEADERS, "Content-Security-Policy": csp}.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
