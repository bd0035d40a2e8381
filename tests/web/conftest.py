"""The web app on a real server (uvicorn on a free loopback port, in a thread) and Debian's chromium
driven by Playwright. Playwright's own browser downloads fail here: `make test` installs Debian's
chromium (the Makefile's `browser` target) and these tests launch it by path."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from securecomm.web import create_app

REPO = Path(__file__).resolve().parents[2]
OUTPUT = REPO / "tests" / "output"
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LiveServer:
    """The app served by uvicorn in a thread of this process, until `stop`."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(data_dir), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the web app did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path_factory.mktemp("web-data"))
    yield live
    live.stop()


def _chromium() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and (os.environ.get("CI") or os.environ.get("SECURECOMM_REQUIRE_BROWSER")):
        pytest.fail("Chromium is required (make test installs Debian's chromium) but was not found")
    return found


@pytest.fixture(scope="session")
def browser():
    chromium = _chromium()
    if chromium is None:
        pytest.skip("chromium is not installed (make test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(60_000)  # the machine is shared: slow, not broken
    opened = context.new_page()
    yield opened
    context.close()


def screenshot(page, name: str) -> Path:
    """A full-page screenshot into tests/output/ (linked from docs/web.md)."""
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / f"web-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def axe_violations(page) -> list[dict]:
    """axe-core's serious and critical violations on the page as it is now."""
    # Evaluated through the browser's protocol, not as a script tag: the pages' CSP allows no inline script.
    page.evaluate(AXE.read_text(encoding="utf-8") + "\n;undefined")
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"][:5]]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
