"""A private, throwaway PostgreSQL server for the desk's tests: initdb + pg_ctl in a temporary
directory, listening only on a Unix socket there (no TCP port, no system service, nothing to
collide with), fsync off, removed at the end.

`make test` installs PostgreSQL if it is missing; with CI or SECURECOMM_REQUIRE_POSTGRES set a
server that cannot be found or started fails the tests instead of skipping them.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg

SUPERUSER = "securecomm"


def postgres_required() -> bool:
    return any(os.environ.get(name, "") not in ("", "0", "false") for name in ("CI", "SECURECOMM_REQUIRE_POSTGRES"))


def _version(bindir: Path) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in bindir.parent.name.split("."))
    except ValueError:
        return (0,)


def find_bindir() -> Path | None:
    """Where initdb and pg_ctl live: on PATH, else Debian's /usr/lib/postgresql/<version>/bin (newest)."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent
    debian = sorted((path.parent for path in Path("/usr/lib/postgresql").glob("*/bin/initdb")), key=_version)
    if debian:
        return debian[-1]
    pg_config = shutil.which("pg_config")
    if pg_config:
        bindir = Path(subprocess.run([pg_config, "--bindir"], capture_output=True, text=True).stdout.strip())
        if (bindir / "initdb").exists():
            return bindir
    return None


class PostgresServer:
    """One cluster; `create_database()` gives each test a fresh database on it."""

    def __init__(self, bindir: Path, *, durable: bool = False) -> None:
        self.bindir = bindir
        # Tests run with fsync off; a benchmark (bench/desk_load.py) with PostgreSQL's own defaults, every
        # commit flushed to disk before it is acknowledged, as a jail's server would run.
        self.durable = durable
        # A short path: a Unix socket's path must stay under ~100 bytes.
        self.base = Path(tempfile.mkdtemp(prefix="scpg-", dir="/tmp"))
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self.user: dict[str, int] = {}
        self._databases = 0
        if os.geteuid() == 0:
            # PostgreSQL refuses to run as root: run it as the postgres user (or nobody).
            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                account = pwd.getpwnam("nobody")
            os.chown(self.base, account.pw_uid, account.pw_gid)
            self.user = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bindir / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            cwd=self.base,
            timeout=120,
            check=False,
            **self.user,  # type: ignore[arg-type]
        )

    def start(self) -> None:
        initdb = self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-sync")
        if initdb.returncode != 0:
            raise RuntimeError(f"initdb failed: {initdb.stderr or initdb.stdout}")
        settings = (
            f"\nlisten_addresses = ''\nunix_socket_directories = '{self.base}'\nport = 5432\nmax_connections = 200\n"
        )
        if self.durable:
            settings += "shared_buffers = 128MB\n"
        else:
            settings += "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nshared_buffers = 32MB\n"
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(settings)
        started = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")
        if started.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {started.stderr or started.stdout}\n{log}")

    def stop(self) -> None:
        if self.data.exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.base, ignore_errors=True)

    def connect(self, dbname: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(host=str(self.base), user=SUPERUSER, dbname=dbname, autocommit=True)

    def url(self, dbname: str) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@/{dbname}?host={self.base}"

    def create_database(self) -> str:
        self._databases += 1
        name = f"desk_{os.getpid()}_{self._databases}"
        with self.connect() as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)
