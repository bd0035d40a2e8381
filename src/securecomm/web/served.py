"""One process for everything `securecomm serve` serves: the desk's API, the desk's signed-in pages
(`/desk/…`), the lab (`/`, `/lab…`) and the policy library (`/policies…`).

The desk's app is the outer one: its guard (size limit, security headers, the API's strict
Content-Security-Policy) is in front of every path, and its routes (`/api/…`, `/openapi.json`,
`/docs`) match first. Starlette does not run a mounted app's lifespan, so the lab's (its job worker)
is chained into the desk's.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from securecomm.desk import api
from securecomm.model.replications import IN_PROCESS, Runner
from securecomm.web.app import create_app
from securecomm.web.desk_pages import create_desk_pages

SETTINGS_VARIABLE = "SECURECOMM_DESK_SERVE"

Lifespan = Callable[[Any], AbstractAsyncContextManager[Any]]


def _chained(first: Lifespan, second: Lifespan) -> Lifespan:
    @asynccontextmanager
    async def both(app: Any) -> AsyncIterator[None]:
        async with first(app), second(app):
            yield

    return both


def serve_app(
    desk_app: FastAPI, lab_dir: Path, runner: Runner = IN_PROCESS, *, secure_cookies: bool = False
) -> FastAPI:
    """The desk's app (from `desk.api.create_app`) with the desk's pages mounted at `/desk` and the lab
    and library at `/`; the lab's job worker starts and stops with the desk. `secure_cookies`: the
    sign-in cookie is sent only over HTTPS (the server speaks TLS, or sits behind a TLS proxy)."""
    pages = create_desk_pages(desk_app.state.desk, desk_app.state.throttle, secure_cookies=secure_cookies)
    lab = create_app(lab_dir, runner)
    desk_app.mount("/desk", pages)
    desk_app.mount("/", lab)
    desk_app.router.lifespan_context = _chained(desk_app.router.lifespan_context, lab.router.lifespan_context)
    return desk_app


def _runner(settings: dict[str, Any]) -> Runner:
    if settings.get("lab_scheduler"):
        return Runner(scheduler=settings["lab_scheduler"])
    if settings.get("lab_workers"):
        return Runner(workers=settings["lab_workers"])
    return IN_PROCESS


def app_from_environment() -> FastAPI:
    """What `securecomm serve` runs in each server process: the desk's app as `desk.api` builds it from
    the settings the command put in SECURECOMM_DESK_SERVE, with the pages and the lab mounted."""
    settings = json.loads(os.environ[SETTINGS_VARIABLE])
    return serve_app(
        api.app_from_environment(),
        Path(settings["lab_dir"]),
        _runner(settings),
        secure_cookies=settings.get("secure_cookies", False),
    )
