"""Fixtures for the desk: a database of each kind (SQLite file, private PostgreSQL server), a
desk initialized under Connecticut's TRUST Act with one user per role, a controllable clock,
and a real server process for the tests that need one."""

from __future__ import annotations

import datetime as dt
import itertools
import socket
import ssl
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher

from securecomm.desk import security
from securecomm.desk.api import create_app
from securecomm.desk.audit import AuditKey
from securecomm.desk.db import Database, database_url, open_database
from securecomm.desk.service import Desk
from securecomm.desk.throttle import Throttle

from .children import die_with_parent
from .pgserver import PostgresServer, find_bindir, postgres_required

with warnings.catch_warnings():
    # Starlette asks for its own fork of httpx in the test client; plain httpx works the same here.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

PASSWORD = "correct horse battery staple"
ROLES = ("intake", "reviewer", "supervisor", "auditor")
BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing():
    # argon2's real cost (~0.1 s a hash) is the point in production and a waste in unit tests.
    security.use_password_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    yield
    security.use_password_hasher(PasswordHasher())


@pytest.fixture(scope="session")
def postgres_server():
    bindir = find_bindir()
    if bindir is None:
        message = "PostgreSQL (initdb, pg_ctl) not found: `make test` installs it (apt-get install postgresql)"
        if postgres_required():
            pytest.fail(message)
        pytest.skip(message)
    server = PostgresServer(bindir)
    try:
        server.start()
    except Exception as error:
        server.stop()
        if postgres_required():
            pytest.fail(f"could not start PostgreSQL: {error}")
        pytest.skip(f"could not start PostgreSQL: {error}")
    yield server
    server.stop()


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def db_url(backend, tmp_path, request) -> str:
    if backend == "sqlite":
        return database_url(tmp_path / "desk")
    return request.getfixturevalue("postgres_server").create_database()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return database_url(tmp_path / "desk")


@dataclass
class FixedClock:
    """The jail's wall clock and UTC, moved by hand."""

    local: dt.datetime = dt.datetime(2014, 3, 5, 9, 0)
    utc: dt.datetime = dt.datetime(2014, 3, 5, 14, 0)

    def local_now(self) -> dt.datetime:
        return self.local

    def utc_now(self) -> dt.datetime:
        return self.utc

    def advance(self, **delta: float) -> None:
        step = dt.timedelta(**delta)
        self.local += step
        self.utc += step

    def monotonic(self) -> float:
        """The login throttle's clock, moved with the others."""
        return (self.utc - dt.datetime(2014, 1, 1)).total_seconds()


@dataclass
class DeskUnderTest:
    database: Database
    desk: Desk
    client: TestClient
    clock: FixedClock
    tokens: dict[str, str] = field(default_factory=dict)
    numbers: itertools.count = field(default_factory=lambda: itertools.count(1))

    def headers(self, role: str) -> dict[str, str]:
        if role not in self.tokens:
            response = self.client.post("/api/v1/auth/token", json={"username": role, "password": PASSWORD})
            assert response.status_code == 200, response.text
            self.tokens[role] = response.json()["access_token"]
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def post(self, path: str, role: str, body: dict, **kwargs):
        return self.client.post(f"/api/v1{path}", json=body, headers=self.headers(role), **kwargs)

    def get(self, path: str, role: str, **kwargs):
        headers = {**self.headers(role), **kwargs.pop("headers", {})}
        return self.client.get(f"/api/v1{path}", headers=headers, **kwargs)

    def intake(self, **facts):
        body = {
            "booking_ref": "B-1",
            "detainer_number": f"D-{next(self.numbers):06d}",
            "received_at": "2014-03-05T09:00:00",
            "issuing_office": "ERO Hartford",
        }
        body.update(facts)
        response = self.post("/detainers", "intake", body)
        assert response.status_code == 201, response.text
        return response.json()


def initialize_desk(
    url: str,
    clock: FixedClock | None = None,
    policy: str = "ct/trust-act-2013",
    key_path: Path | None = None,
    place: str | None = None,
) -> Desk:
    """A desk with its audit key (written to key_path, for a server process to read, if given); its
    place defaults to the policy's."""
    key = AuditKey.generate()
    if key_path is not None:
        key.write(key_path)
    desk = Desk(open_database(url), clock=clock, audit_key=key)
    desk.initialize(
        jurisdiction="Connecticut", policy_id=policy, admin_username="supervisor", admin_password=PASSWORD, place=place
    )
    for role in ROLES:
        if role != "supervisor":
            desk.add_user(role, PASSWORD, role)
    return desk


@pytest.fixture
def make_desk():
    """Build desks on given URLs (closed at the end of the test)."""
    made: list[DeskUnderTest] = []

    def build(url: str, policy: str = "ct/trust-act-2013", place: str | None = None, **app_options) -> DeskUnderTest:
        clock = FixedClock()
        desk = initialize_desk(url, clock, policy, place=place)
        app = create_app(
            desk.database,
            clock=clock,
            overdue_check_seconds=None,
            audit_key=desk.audit_key,
            throttle=Throttle(clock=clock.monotonic),
            **app_options,
        )
        client = TestClient(app)
        under_test = DeskUnderTest(desk.database, desk, client, clock)
        made.append(under_test)
        return under_test

    yield build
    for under_test in made:
        under_test.client.close()
        under_test.database.dispose()


@pytest.fixture
def desk(make_desk, db_url) -> DeskUnderTest:
    """A desk on each backend (SQLite and PostgreSQL)."""
    return make_desk(db_url)


@pytest.fixture
def sqlite_desk(make_desk, sqlite_url) -> DeskUnderTest:
    return make_desk(sqlite_url)


# --- the commands ------------------------------------------------------------------------


def cli(*args, stdin=None):
    """`securecomm ARGS…` (each as text) in this process, with `stdin` typed at its prompts."""
    from typer.testing import CliRunner

    from securecomm.cli import app

    return CliRunner().invoke(app, [str(arg) for arg in args], input=stdin)


@pytest.fixture
def desk_init():
    """`securecomm desk init` of a Connecticut desk under ct/trust-act-2013 (administrator `chief`, password
    PASSWORD) in a data folder: the command's result."""

    def init(data_dir: Path):
        return cli(
            "desk",
            "init",
            "--data-dir",
            data_dir,
            "--jurisdiction",
            "Connecticut",
            "--policy",
            "ct/trust-act-2013",
            "--admin-user",
            "chief",
            stdin=f"{PASSWORD}\n",
        )

    return init


# --- a real server process ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ServerProcess:
    data_dir: Path
    url: str | None
    port: int = 0
    process: subprocess.Popen | None = None
    extra: list[str] = field(default_factory=list)
    scheme: str = "http"
    verify: str | bool = True

    @property
    def base(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/api/v1"

    def start(self) -> None:
        self.port = free_port()
        command = [
            sys.executable,
            "-m",
            "securecomm",
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--port",
            str(self.port),
        ]
        if self.url:
            command += ["--database-url", self.url]
        command += self.extra
        self.log = (self.data_dir / f"server-{self.port}.log").open("w")
        # It ends with this process, even one killed with SIGKILL that runs no teardown (children.py).
        self.process = subprocess.Popen(
            command, stdout=self.log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent()
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited: {(self.data_dir / f'server-{self.port}.log').read_text()}")
            try:
                verify = ssl.create_default_context(cafile=self.verify) if isinstance(self.verify, str) else True
                if httpx.get(f"{self.base}/health", timeout=1, verify=verify).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the server did not start within 60 s")

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers, no flushing — a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if getattr(self, "log", None):
            self.log.close()

    def token(self, username: str) -> str:
        response = httpx.post(f"{self.base}/auth/token", json={"username": username, "password": PASSWORD}, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()["access_token"]


@pytest.fixture
def live_server(tmp_path, db_url):
    """An initialized desk served by a real `securecomm serve` process, on each backend."""
    data_dir = tmp_path / "desk"
    data_dir.mkdir(exist_ok=True)
    url = None if db_url.startswith("sqlite") else db_url
    initialize_desk(db_url, key_path=data_dir / "audit.key").database.dispose()
    server = ServerProcess(data_dir, url)
    server.start()
    yield server
    server.stop()
