"""ASGI middleware in front of the desk: a request-size limit enforced before the body is read,
and security headers on every response.

Content-Security-Policy by path: the API (`/api/…`, `/openapi.json`) always gets `API_CSP` — it
replaces any policy a route may have set, so nothing mounted beside the API can loosen it; the
interactive docs get `DOCS_CSP`; every other path (the web app's pages, served in the same
process) gets `PAGES_CSP` — scripts, styles and images only from this server, no inline script —
unless the page sets a policy of its own.

Pure ASGI (no BaseHTTPMiddleware): it adds a few microseconds to a request, not a task.
"""

from __future__ import annotations

import json
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]

DEFAULT_MAX_BODY_BYTES = 1_048_576  # an intake is about 1 KB; a megabyte is far beyond any real one

# The API sends JSON, CSV and a printable report page: nothing it serves may load or frame anything.
API_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# The web app's pages (the desk's signed-in pages, the lab, the library): only this server's own
# scripts, styles and images; no inline script or style, forms post only here, nothing frames them.
PAGES_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
# Swagger UI (only with public docs) runs its own scripts and styles from /static, plus one inline script.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
COMMON_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]
HSTS = (b"strict-transport-security", b"max-age=31536000")


class _TooLarge(Exception):
    pass


class Guard:
    def __init__(self, app: Any, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def _refuse(self, send: Any) -> None:
        body = json.dumps(
            {"detail": f"the request body is larger than this desk accepts ({self.max_body_bytes} bytes)"}
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
            (b"cache-control", b"no-store"),
            (b"content-security-policy", API_CSP.encode()),
            *COMMON_HEADERS,
        ]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > limit):
                # Refused on the header alone: not one byte of the body is read.
                await self._refuse(send)
                return
        path: str = scope["path"]
        docs = path == "/docs" or path.startswith("/static/")
        api = path.startswith("/api/") or path == "/api" or path == "/openapi.json"
        csp = API_CSP if api else DOCS_CSP if docs else PAGES_CSP
        extra = [(b"content-security-policy", csp.encode()), *COMMON_HEADERS]
        if scope.get("scheme") == "https":
            extra.append(HSTS)
        no_store = not docs
        received = 0
        started = False
        too_large = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:  # a body without Content-Length (chunked): stop at the limit
                    too_large = True
                    raise _TooLarge
            return message

        async def secured_send(message: Message) -> None:
            nonlocal started
            if too_large:
                # The framework turned the interrupted read into an error answer of its own: send 413.
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await self._refuse(send)
                return
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                if api:  # the API's policy is never the route's to choose
                    headers = [(name, value) for name, value in headers if name.lower() != b"content-security-policy"]
                names = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in extra if name not in names]
                if no_store and b"cache-control" not in names:
                    # Answers may carry personal data: no browser or proxy keeps a copy.
                    headers.append((b"cache-control", b"no-store"))
                    headers.append((b"pragma", b"no-cache"))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, limited_receive, secured_send)
        except _TooLarge:
            if not started:
                await self._refuse(send)
