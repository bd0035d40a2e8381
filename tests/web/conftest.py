"""The web app on a real server — what `securecomm serve` runs: the desk's API and pages, the lab and
the library in one app (`web.served.serve_app`) over a fresh SQLite desk, uvicorn on a free loopback
port in a thread — and Debian's chromium driven by Playwright. Playwright's own browser downloads fail here: `make test` installs Debian's
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
from argon2 import PasswordHasher

from securecomm.desk import security
from securecomm.desk.api import create_app
from securecomm.desk.audit import AuditKey
from securecomm.desk.db import database_url, open_database
from securecomm.desk.service import Desk
from securecomm.web.served import serve_app

REPO = Path(__file__).resolve().parents[2]
OUTPUT = REPO / "tests" / "output"
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
PASSWORD = "correct horse battery staple"
# One user of each role, and a second intake officer (the one a supervisor disables).
USERS = {"intake": "intake", "reviewer": "reviewer", "reviewer2": "reviewer", "auditor": "auditor", "intake2": "intake"}
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


def served_app(data_dir: Path):
    """A new desk in `data_dir` (Connecticut's TRUST Act, New Haven County; a supervisor and USERS, all
    with PASSWORD) served with its pages and the lab, as `securecomm serve` does."""
    data_dir.mkdir(parents=True, exist_ok=True)
    key = AuditKey.generate()
    database = open_database(database_url(data_dir, None))
    desk = Desk(database, audit_key=key)
    desk.initialize(
        jurisdiction="Connecticut",
        policy_id="ct/trust-act-2013",
        admin_username="supervisor",
        admin_password=PASSWORD,
        place="09009",
    )
    for username, role in USERS.items():
        desk.add_user(username, PASSWORD, role)
    return serve_app(create_app(database, audit_key=key, overdue_check_seconds=None), data_dir / "lab")


class LiveServer:
    """The app served by uvicorn in a thread of this process, until `stop`."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(served_app(data_dir), host="127.0.0.1", port=self.port, log_level="warning")
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


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    """argon2 at its cheapest for the tests' many sign-ins (existing hashes still verify)."""
    security.use_password_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    yield
    security.use_password_hasher(PasswordHasher())


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


def sign_in(page, server: LiveServer, username: str, password: str = PASSWORD) -> None:
    """Sign in through the desk's sign-in page."""
    page.goto(f"{server.url}/desk/sign-in")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def fill_lab_question(page, first: str, last: str, policies: tuple[str, ...], replications: int, seed: int) -> None:
    """The lab form's period, policies (the first the baseline), replications and seed, as a user fills them."""
    page.get_by_label("First day").fill(first)
    page.get_by_label("Last day").fill(last)
    for checkbox in page.locator("input[name=policies]").all():
        checkbox.set_checked(checkbox.get_attribute("value") in policies)
    page.get_by_label("Baseline").select_option(policies[0])
    page.get_by_label("Replications").fill(str(replications))
    page.get_by_label("Random seed").fill(str(seed))
