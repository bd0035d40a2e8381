"""`securecomm desk …` (set-up and checks on the machine that holds the data) and `securecomm serve`.

Passwords are read from standard input — one line, or asked twice without echo at a
terminal — never from the command line, where other users could see them in `ps`.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from securecomm.desk.security import DEFAULT_TOKEN_LIFETIME

if TYPE_CHECKING:
    from securecomm.desk.db import Database
    from securecomm.desk.service import Actor, Desk

# The database, web and report modules are imported by the commands that use them, so that
# `securecomm` starts as fast for every other command as it did before the desk existed.

desk_app = typer.Typer(no_args_is_help=True, help="The detainer desk: set up, users, audit check, reports.")
errors = Console(stderr=True)

DataDir = Annotated[
    Path, typer.Option("--data-dir", help="The desk's directory (holds the SQLite database by default).")
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="SECURECOMM_DATABASE_URL",
        help="A database instead of the SQLite file, e.g. postgresql+psycopg://user@host/db.",
    ),
]


def _fail(message: str) -> typer.Exit:
    errors.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code=2)


def _open(data_dir: Path, url: str | None) -> Database:
    from securecomm.desk.db import DatabaseError, database_url, open_database

    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        return open_database(database_url(data_dir, url))
    except DatabaseError as error:
        raise _fail(str(error)) from None


def _desk(data_dir: Path, url: str | None) -> Desk:
    from securecomm.desk.service import Desk

    return Desk(_open(data_dir, url))


def _cli_actor() -> Actor:
    from securecomm.desk.service import cli_actor

    return cli_actor(_actor())


def _actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _read_password(what: str) -> str:
    if sys.stdin.isatty():
        first = getpass.getpass(f"Password for {what}: ")
        if getpass.getpass("Again: ") != first:
            raise _fail("the two passwords differ")
        return first
    line = sys.stdin.readline()
    if not line:
        raise _fail(f"give the password for {what} on standard input")
    return line.rstrip("\r\n")


def _date(text: str | None, option: str) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise _fail(f"{option}: not a date (YYYY-MM-DD): {text!r}") from None


def _run(action: str, thunk: object) -> None:
    from securecomm.desk.service import DeskError, InvalidInput

    try:
        thunk()  # type: ignore[operator]
    except InvalidInput as error:
        raise _fail(f"{action}: {error.field}: {error}") from None
    except DeskError as error:
        raise _fail(f"{action}: {error}") from None


@desk_app.command("init")
def init(
    data_dir: DataDir,
    jurisdiction: Annotated[str, typer.Option(help="The jurisdiction the jail answers to, e.g. Connecticut.")],
    policy: Annotated[str, typer.Option(help="The policy id it applies, e.g. ct/trust-act-2013.")],
    admin_user: Annotated[str, typer.Option(help="The first supervisor's username (password from stdin).")],
    start: Annotated[
        str | None, typer.Option("--from", help="The date the policy applies from (default: its effective date).")
    ] = None,
    url: DatabaseUrl = None,
) -> None:
    """Create the desk's database, its first policy and a supervisor."""
    effective_from = _date(start, "--from")
    password = _read_password(admin_user)
    desk = _desk(data_dir, url)
    _run(
        "init",
        lambda: desk.initialize(
            jurisdiction=jurisdiction,
            policy_id=policy,
            admin_username=admin_user,
            admin_password=password,
            effective_from=effective_from,
            actor=_cli_actor(),
        ),
    )
    errors.print(f"desk initialized for {jurisdiction} under {policy}; supervisor {admin_user!r}", highlight=False)


@desk_app.command("add-user")
def add_user(
    data_dir: DataDir,
    username: Annotated[str, typer.Option(help="The new user's name.")],
    role: Annotated[str, typer.Option(help="intake, reviewer, supervisor or auditor.")],
    url: DatabaseUrl = None,
) -> None:
    """Add a user (password from stdin)."""
    password = _read_password(username)
    desk = _desk(data_dir, url)
    _run("add-user", lambda: desk.add_user(username, password, role, _cli_actor()))
    errors.print(f"added {username!r} as {role}", highlight=False)


@desk_app.command("unlock-user")
def unlock_user(
    data_dir: DataDir,
    username: Annotated[str, typer.Option(help="The locked user's name.")],
    url: DatabaseUrl = None,
) -> None:
    """Unlock an account locked after failed logins."""
    desk = _desk(data_dir, url)
    _run("unlock-user", lambda: desk.unlock_user(username, _cli_actor()))
    errors.print(f"unlocked {username!r}", highlight=False)


@desk_app.command("set-policy")
def set_policy(
    data_dir: DataDir,
    policy: Annotated[str, typer.Option(help="The policy id, e.g. ct/doc-2014.")],
    start: Annotated[str, typer.Option("--from", help="The first received date it decides (YYYY-MM-DD).")],
    url: DatabaseUrl = None,
) -> None:
    """Add a policy to the desk's dated list: detainers received from --from on are decided by it."""
    effective_from = _date(start, "--from")
    assert effective_from is not None
    desk = _desk(data_dir, url)
    _run("set-policy", lambda: desk.set_policy(policy, effective_from, _cli_actor()))
    for row in desk.describe()["policies"]:
        errors.print(f"from {row['effective_from']}: {row['policy_id']}", highlight=False)


@desk_app.command("verify-audit")
def verify_audit(data_dir: DataDir, url: DatabaseUrl = None) -> None:
    """Check the audit chain; exit 1 naming the first broken entry."""
    desk = _desk(data_dir, url)
    result = desk.verify_audit()
    print(result.describe())
    if not result.ok:
        raise typer.Exit(code=1)


@desk_app.command("report")
def report(
    data_dir: DataDir,
    quarter: Annotated[str, typer.Option(help="The quarter, e.g. 2014Q1.")],
    format: Annotated[str, typer.Option("--format", help="json, csv or html.")] = "json",
    out: Annotated[Path | None, typer.Option(help="Write to this file instead of stdout.")] = None,
    url: DatabaseUrl = None,
) -> None:
    """The quarterly transparency report (no personal data)."""
    from securecomm.desk import reports

    renderers = {
        "json": lambda r: json.dumps(r, indent=2, ensure_ascii=False) + "\n",
        "csv": reports.report_csv,
        "html": reports.report_html,
    }
    if format not in renderers:
        raise _fail(f"--format: expected json, csv or html, not {format!r}")
    desk = _desk(data_dir, url)
    result: dict = {}

    def make() -> None:
        result.update(desk.quarterly_report(_cli_actor(), quarter))

    _run("report", make)
    text = renderers[format](result)
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        errors.print(f"wrote {out}", highlight=False)


def serve(
    data_dir: DataDir,
    url: DatabaseUrl = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    token_minutes: Annotated[int, typer.Option(help="Lifetime of a bearer token.")] = int(
        DEFAULT_TOKEN_LIFETIME.total_seconds() // 60
    ),
    access_log: Annotated[bool, typer.Option(help="Log every request (the audit log records every action).")] = False,
) -> None:
    """Run the detainer desk's HTTP API (OpenAPI at /docs); migrations run first."""
    import uvicorn

    from securecomm.desk.api import create_app
    from securecomm.desk.service import Desk

    database = _open(data_dir, url)
    if not Desk(database).is_initialized():
        raise _fail(f"the desk in {data_dir} is not initialized: run `securecomm desk init` first")
    if token_minutes < 1:
        raise _fail("--token-minutes must be at least 1")
    app = create_app(database, token_lifetime=dt.timedelta(minutes=token_minutes))
    # Writes are one at a time, and a thread that returns from the commit's fsync must win the GIL
    # back before the next write can start: a short switch interval (default 5 ms) keeps that wait,
    # and so the write lock's hold time, short. It doubles intakes/s under load on SQLite.
    sys.setswitchinterval(0.001)
    errors.print(f"detainer desk on http://{host}:{port} (OpenAPI at /docs)", highlight=False)
    uvicorn.run(app, host=host, port=port, access_log=access_log, log_level="info")
