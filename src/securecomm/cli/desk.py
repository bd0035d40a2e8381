"""`securecomm desk …` (set-up and checks on the machine that holds the data) and `securecomm serve`.

Passwords are read from standard input — one line, or asked twice without echo at a
terminal — never from the command line, where other users could see them in `ps`.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import stat
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console

from securecomm.cli.common import SchedulerOption, errors, fail
from securecomm.desk.security import DEFAULT_TOKEN_LIFETIME

if TYPE_CHECKING:
    from securecomm.desk.audit import AuditKey
    from securecomm.desk.db import Database
    from securecomm.desk.service import Actor, Desk

# The database, web and report modules are imported by the commands that use them, so that
# `securecomm` starts as fast for every other command as it did before the desk existed.

desk_app = typer.Typer(no_args_is_help=True, help="The detainer desk: set up, users, audit check, reports.")

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
TimeZoneOption = Annotated[
    str | None,
    typer.Option(help="The jail's IANA time zone, when its place keeps several (default: the place's one)."),
]
AuditKeyPath = Annotated[
    Path | None,
    typer.Option(
        "--audit-key",
        envvar="SECURECOMM_AUDIT_KEY",
        help="The file holding the audit chain's key (default: DATA_DIR/audit.key). Keep it where the "
        "database's administrators cannot read it.",
    ),
]
AUDIT_KEY_FILE = "audit.key"
ANCHOR_FILE = "audit-anchors.jsonl"
Done = TypeVar("Done")  # what a desk action returns


def _open(data_dir: Path, url: str | None) -> Database:
    from securecomm.desk.db import DatabaseError, database_url, open_database

    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        return open_database(database_url(data_dir, url))
    except DatabaseError as error:
        raise fail(str(error)) from None


def _make_private(data_dir: Path) -> None:
    """The data folder (the SQLite database, the audit key and its anchors) open to the desk's account alone:
    made so, or closed if others could enter it (and said)."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    mode = stat.S_IMODE(data_dir.stat().st_mode)
    if mode & 0o077:
        data_dir.chmod(0o700)
        errors.print(f"{data_dir} was open to others ({mode:04o}): now {0o700:04o}, the desk's account alone")


def _key_path(data_dir: Path, key_path: Path | None) -> Path:
    return key_path if key_path is not None else data_dir / AUDIT_KEY_FILE


def _load_key(data_dir: Path, key_path: Path | None) -> AuditKey:
    from securecomm.desk.audit import AuditKey, AuditKeyError

    try:
        return AuditKey.load(_key_path(data_dir, key_path))
    except AuditKeyError as error:
        raise fail(str(error)) from None


def _desk(data_dir: Path, url: str | None, key_path: Path | None = None, *, need_key: bool = True) -> Desk:
    from securecomm.desk.service import Desk

    key = _load_key(data_dir, key_path) if need_key else None
    return Desk(_open(data_dir, url), audit_key=key)


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
            raise fail("the two passwords differ")
        return first
    line = sys.stdin.readline()
    if not line:
        raise fail(f"give the password for {what} on standard input")
    return line.rstrip("\r\n")


def _date(text: str | None, option: str) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise fail(f"{option}: not a date (YYYY-MM-DD): {text!r}") from None


def _print_or_write(text: str, out: Path | None) -> None:
    """The text on standard output, or written to `out` (and said so)."""
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        errors.print(f"wrote {out}", highlight=False)


@contextmanager
def _key_written_once_adopted(key: AuditKey, key_path: Path) -> Iterator[None]:
    """Write the key beside its final name, and give it that name once the block (the desk adopting it) has
    succeeded: never a desk without its key, nor a stray key that blocks a second try."""
    pending = key_path.with_name(key_path.name + ".new")
    pending.unlink(missing_ok=True)
    key.write(pending)
    try:
        yield
    except BaseException:
        pending.unlink(missing_ok=True)
        raise
    pending.rename(key_path)


def _run(action: str, thunk: Callable[[], Done]) -> Done:
    """What `thunk` returns; a desk's refusal becomes the command's error, named by `action`."""
    from securecomm.desk.service import DeskError, InvalidInput

    try:
        return thunk()
    except InvalidInput as error:
        raise fail(f"{action}: {error.field}: {error}") from None
    except DeskError as error:
        raise fail(f"{action}: {error}") from None


@desk_app.command("init")
def init(
    data_dir: DataDir,
    jurisdiction: Annotated[str, typer.Option(help="The jurisdiction the jail answers to, e.g. Connecticut.")],
    policy: Annotated[str, typer.Option(help="The policy id it applies, e.g. ct/trust-act-2013.")],
    admin_user: Annotated[str, typer.Option(help="The first supervisor's username (password from stdin).")],
    start: Annotated[
        str | None, typer.Option("--from", help="The date the policy applies from (default: its effective date).")
    ] = None,
    place: Annotated[
        str | None,
        typer.Option(help="Where the jail is: a county FIPS (09009) or a state code (default: the policy's places)."),
    ] = None,
    time_zone: TimeZoneOption = None,
    url: DatabaseUrl = None,
    audit_key: AuditKeyPath = None,
) -> None:
    """Create the desk's database, its audit key, its first policy and a supervisor. The desk's local
    times are wall-clock times in the place's time zone."""
    from securecomm.desk.audit import AuditKey

    effective_from = _date(start, "--from")
    password = _read_password(admin_user)
    key_path = _key_path(data_dir, audit_key)
    if key_path.exists():
        raise fail(f"{key_path} already exists: a desk's audit key is made once, with the desk")
    _make_private(data_dir)
    key = AuditKey.generate()
    with _key_written_once_adopted(key, key_path):
        desk = _desk(data_dir, url, need_key=False)
        desk.audit_key = key
        _run(
            "init",
            lambda: desk.initialize(
                jurisdiction=jurisdiction,
                policy_id=policy,
                admin_username=admin_user,
                admin_password=password,
                effective_from=effective_from,
                place=place,
                time_zone=time_zone,
                actor=_cli_actor(),
            ),
        )
    where, zone = desk.place_and_zone()
    errors.print(
        f"desk initialized for {jurisdiction} ({where}, times in {zone}) under {policy}; supervisor {admin_user!r}",
        highlight=False,
    )
    errors.print(
        f"audit key written to {key_path}: back it up and keep it away from the database's administrators",
        highlight=False,
    )


@desk_app.command("add-user")
def add_user(
    data_dir: DataDir,
    username: Annotated[str, typer.Option(help="The new user's name.")],
    role: Annotated[str, typer.Option(help="intake, reviewer, supervisor or auditor.")],
    url: DatabaseUrl = None,
    audit_key: AuditKeyPath = None,
) -> None:
    """Add a user (password from stdin: ≥ 12 characters, not a common password, not the username)."""
    password = _read_password(username)
    desk = _desk(data_dir, url, audit_key)
    _run("add-user", lambda: desk.add_user(username, password, role, _cli_actor()))
    errors.print(f"added {username!r} as {role}", highlight=False)


def _account_command(name: str, summary: str, act: Callable[[Desk, str, Actor], object], done: str) -> None:
    """Register a command that changes one account's state by the supervisor's hand."""

    def command(
        data_dir: DataDir,
        username: Annotated[str, typer.Option(help="The user's name.")],
        url: DatabaseUrl = None,
        audit_key: AuditKeyPath = None,
    ) -> None:
        desk = _desk(data_dir, url, audit_key)
        _run(name, lambda: act(desk, username, _cli_actor()))
        errors.print(f"{done} {username!r}", highlight=False)

    command.__doc__ = summary
    desk_app.command(name)(command)


_account_command(
    "unlock-user",
    "Lift the temporary lock of an account after failed logins (its earlier tokens are revoked).",
    lambda desk, username, actor: desk.unlock_user(username, actor),
    "unlocked",
)
_account_command(
    "disable-user",
    "Disable an account: no logins, and its tokens are refused (403).",
    lambda desk, username, actor: desk.disable_user(username, actor),
    "disabled",
)
_account_command(
    "enable-user",
    "Enable a disabled account.",
    lambda desk, username, actor: desk.enable_user(username, actor),
    "enabled",
)


@desk_app.command("reset-password")
def reset_password(
    data_dir: DataDir,
    username: Annotated[str, typer.Option(help="The user's name.")],
    url: DatabaseUrl = None,
    audit_key: AuditKeyPath = None,
) -> None:
    """Set a temporary password (stdin) that the user must change at the next login; revokes their tokens."""
    password = _read_password(username)
    desk = _desk(data_dir, url, audit_key)
    _run("reset-password", lambda: desk.reset_password(username, password, _cli_actor()))
    errors.print(f"reset the password of {username!r}; they must change it at their next login", highlight=False)


@desk_app.command("add-policy")
def add_policy(
    data_dir: DataDir,
    file: Annotated[Path, typer.Option("--file", help="A detainer policy file (YAML, the library's format).")],
    name: Annotated[str, typer.Option(help="The name to register it under: set-policy takes file:NAME.")],
    url: DatabaseUrl = None,
    audit_key: AuditKeyPath = None,
) -> None:
    """Register a local policy file: validated (a detainer policy, hold ≤ 48 h), its text and SHA-256 recorded
    and audited. `set-policy --policy file:NAME` can then use it."""
    desk = _desk(data_dir, url, audit_key)
    result = _run("add-policy", lambda: desk.add_policy(file, name, _cli_actor()))
    errors.print(f"registered {result['policy_id']} ({result['title']}), sha256 {result['sha256']}", highlight=False)


@desk_app.command("set-policy")
def set_policy(
    data_dir: DataDir,
    policy: Annotated[
        str, typer.Option(help="A policy id of the library (e.g. ct/doc-2014) or file:NAME from add-policy.")
    ],
    start: Annotated[str, typer.Option("--from", help="The first received date it decides (YYYY-MM-DD).")],
    url: DatabaseUrl = None,
    audit_key: AuditKeyPath = None,
) -> None:
    """Add a policy to the desk's dated list: detainers received from --from on are decided by it."""
    effective_from = _date(start, "--from")
    assert effective_from is not None
    desk = _desk(data_dir, url, audit_key)
    _run("set-policy", lambda: desk.set_policy(policy, effective_from, _cli_actor()))
    for row in desk.describe()["policies"]:
        errors.print(f"from {row['effective_from']}: {row['policy_id']}", highlight=False)


@desk_app.command("set-place")
def set_place(
    data_dir: DataDir,
    place: Annotated[str, typer.Option(help="Where the jail is: a county FIPS (09009) or a state code.")],
    time_zone: TimeZoneOption = None,
    url: DatabaseUrl = None,
    audit_key: AuditKeyPath = None,
) -> None:
    """Give a desk made before time zones (migration 0003) its place and time zone, once (audited). A
    running server picks it up at its next request."""
    desk = _desk(data_dir, url, audit_key)
    where, zone = _run("set-place", lambda: desk.set_place(place, time_zone, _cli_actor()))
    errors.print(f"the desk is at {where}; its local times are in {zone}", highlight=False)


@desk_app.command("show")
def show(
    data_dir: DataDir,
    on: Annotated[str | None, typer.Option(help="The day (YYYY-MM-DD; default: today).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The same as GET /api/v1/desk and /api/v1/policy.")] = False,
    url: DatabaseUrl = None,
) -> None:
    """The desk's place, time zone and dated policies, and the policy in force on a day as the desk
    decides under it: every layer (the stricter outcome governs) and its text clause by clause."""
    from rich.table import Table

    from securecomm.desk.audit import canonical_json

    day = _date(on, "--on")
    desk = _desk(data_dir, url, need_key=False)
    described, in_force = _run("show", lambda: (desk.describe(), desk.policy_in_force_view(day)))
    if as_json:
        sys.stdout.write(canonical_json({"desk": described, "policy": in_force}) + "\n")
        return
    console = Console()
    zone = described["time_zone"] or "the zone of the policy's places (a desk made before time zones)"
    console.print(
        f"[bold]{described['jurisdiction']}[/] ({described['place'] or 'place not recorded'}; local times in {zone})",
        highlight=False,
    )
    for period in described["policies"]:
        console.print(f"from {period['effective_from']}: {' + '.join(period['layers'])}", highlight=False)
    console.print(f"\n[bold]In force on {in_force['on']}[/]: {in_force['combination']}", highlight=False)
    for layer in in_force["layers"]:
        console.print(
            f"\n[bold]{layer['title']}[/] ({layer['policy_id']}, {layer['level']}, {layer['status']}, from "
            f"{layer['effective']}); hold: {layer['hold'] or 'none'}",
            highlight=False,
        )
        table = Table("Clause", "Status", "Text", "Note", "Applied by", show_lines=True)
        for clause in layer["clauses"]:
            text = f"“{clause['text']}”" if clause["quoted"] else f"(paraphrase) {clause['text']}"
            table.add_row(
                clause["citation"], clause["status_phrase"], text, clause["note"], ", ".join(clause["applied_by"])
            )
        console.print(table)


@desk_app.command("verify-audit")
def verify_audit(
    data_dir: DataDir,
    url: DatabaseUrl = None,
    audit_key: AuditKeyPath = None,
    anchor: Annotated[
        list[Path] | None,
        typer.Option(help="An anchor file kept elsewhere (audit-anchor's output, or the server's anchors file)."),
    ] = None,
) -> None:
    """Check the audit chain (keyed), every detainer, event, user and policy row against it, and each
    anchor given; exit 1 naming the first problem."""
    from securecomm.desk.audit import read_anchors

    desk = _desk(data_dir, url, audit_key)
    anchors = []
    for path in anchor or []:
        try:
            anchors += read_anchors(path)
        except (OSError, ValueError) as error:
            raise fail(f"--anchor {path}: {error}") from None
    result = desk.verify_audit(anchors)
    print(result.describe() + (f"; extends {len(anchors)} anchor(s)" if result.ok and anchors else ""))
    if not result.ok:
        raise typer.Exit(code=1)


@desk_app.command("audit-anchor")
def audit_anchor(
    data_dir: DataDir,
    url: DatabaseUrl = None,
    audit_key: AuditKeyPath = None,
    out: Annotated[Path | None, typer.Option(help="Write the anchor to this file instead of stdout.")] = None,
) -> None:
    """Print (or write) the chain's signed head — sequence, hash, time — to keep somewhere else."""
    from securecomm.desk.audit import canonical_json

    desk = _desk(data_dir, url, audit_key)
    text = canonical_json(desk.anchor()) + "\n"
    _print_or_write(text, out)


@desk_app.command("audit-key")
def audit_key_command(data_dir: DataDir, url: DatabaseUrl = None, audit_key: AuditKeyPath = None) -> None:
    """Give a desk made before audit keys its key: the chain is keyed from the next entry on, which records
    a digest of every row as it stands."""
    from sqlalchemy import select

    from securecomm.desk.audit import HEAD, AuditKey

    key_path = _key_path(data_dir, audit_key)
    if key_path.exists():
        raise fail(f"{key_path} already exists")
    desk = _desk(data_dir, url, need_key=False)
    with desk.database.read() as session:
        head = session.execute(select(HEAD.c.seq)).scalar_one()
    key = AuditKey.generate(keyed_from_seq=head + 1)
    with _key_written_once_adopted(key, key_path):
        _run("audit-key", lambda: desk.adopt_audit_key(key, _cli_actor()))
    errors.print(f"audit key written to {key_path}; the chain is keyed from entry {head + 1}", highlight=False)


@desk_app.command("report")
def report(
    data_dir: DataDir,
    quarter: Annotated[str, typer.Option(help="The quarter, e.g. 2014Q1.")],
    format: Annotated[str, typer.Option("--format", help="json, csv or html.")] = "json",
    out: Annotated[Path | None, typer.Option(help="Write to this file instead of stdout.")] = None,
    url: DatabaseUrl = None,
    audit_key: AuditKeyPath = None,
) -> None:
    """The quarterly transparency report (no personal data)."""
    from securecomm.desk import reports

    renderers = {
        "json": lambda r: json.dumps(r, indent=2, ensure_ascii=False) + "\n",
        "csv": reports.report_csv,
        "html": reports.report_html,
    }
    if format not in renderers:
        raise fail(f"--format: expected json, csv or html, not {format!r}")
    desk = _desk(data_dir, url, audit_key, need_key=False)
    text = renderers[format](_run("report", lambda: desk.quarterly_report(_cli_actor(), quarter)))
    _print_or_write(text, out)


def serve(
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="The desk's directory (holds the SQLite database by default; the lab's jobs in DATA_DIR/lab). "
            "With --demo: a new directory for the demo desk (default: a fresh temporary one).",
        ),
    ] = None,
    url: DatabaseUrl = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    token_minutes: Annotated[int, typer.Option(help="Lifetime of a bearer token.")] = int(
        DEFAULT_TOKEN_LIFETIME.total_seconds() // 60
    ),
    access_log: Annotated[bool, typer.Option(help="Log every request (the audit log records every action).")] = False,
    audit_key: AuditKeyPath = None,
    certfile: Annotated[
        Path | None, typer.Option("--certfile", help="TLS certificate (PEM): serve HTTPS (uvicorn's ssl_certfile).")
    ] = None,
    keyfile: Annotated[Path | None, typer.Option("--keyfile", help="TLS private key (PEM) of --certfile.")] = None,
    workers: Annotated[int, typer.Option(help="Server processes (more than 1 needs PostgreSQL).")] = 1,
    anchor_file: Annotated[
        Path | None,
        typer.Option(
            help="Where the server appends the audit chain's signed head (default DATA_DIR/audit-anchors.jsonl)."
        ),
    ] = None,
    anchor_minutes: Annotated[float, typer.Option(help="How often the server anchors the chain.")] = 10.0,
    max_body_bytes: Annotated[int, typer.Option(help="Largest request body accepted (413 above, unread).")] = 1_048_576,
    public_docs: Annotated[
        bool, typer.Option(help="Serve /docs and /openapi.json without login (a test desk only).")
    ] = False,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            help="Behind a reverse proxy: its address(es), whose X-Forwarded-For is trusted for the client's."
        ),
    ] = None,
    lab_dir: Annotated[
        Path | None,
        typer.Option(help="Where the lab keeps its job queue and results (default DATA_DIR/lab)."),
    ] = None,
    lab_workers: Annotated[
        int | None,
        typer.Option(min=1, help="Run the lab's replications on a local Dask cluster of N workers."),
    ] = None,
    scheduler: SchedulerOption = None,
    demo: Annotated[
        bool,
        typer.Option(
            help="Make a demo desk first (sample users with fresh passwords printed here, a jurisdiction, a few "
            "detainers) and serve it with the lab; loopback addresses only."
        ),
    ] = False,
) -> None:
    """Run the detainer desk — its API, its signed-in pages at /desk/ — and the lab and policy library
    (at / and /policies) in one process; migrations run first. HTTPS with --certfile/--keyfile."""
    import os
    import tempfile

    import uvicorn

    from securecomm.desk.service import Desk

    if lab_workers is not None and scheduler is not None:
        raise fail("give --lab-workers or --scheduler, not both")
    if demo:
        from securecomm.web.demo import build_demo_desk, is_loopback

        if not is_loopback(host):
            raise fail(f"--demo prints its users' passwords: it serves on a loopback address only, not {host}")
        if url is not None:
            raise fail("--demo makes its own SQLite desk: leave out --database-url")
        data_dir = data_dir or Path(tempfile.mkdtemp(prefix="securecomm-demo-"))
        try:
            passwords = build_demo_desk(data_dir)
        except FileExistsError as error:
            raise fail(str(error)) from None
        errors.print(f"demo desk in {data_dir}; its users (passwords made just now, shown once):", highlight=False)
        for username, password in passwords.items():
            errors.print(f"  {username:<11} {password}", highlight=False)
    if data_dir is None:
        raise fail("give --data-dir (the desk's directory), or --demo")
    if (certfile is None) != (keyfile is None):
        raise fail("--certfile and --keyfile go together")
    if token_minutes < 1:
        raise fail("--token-minutes must be at least 1")
    if workers < 1:
        raise fail("--workers must be at least 1")
    database = _open(data_dir, url)
    key_path = _key_path(data_dir, audit_key).resolve()
    _load_key(data_dir, key_path)
    if not Desk(database).is_initialized():
        raise fail(f"the desk in {data_dir} is not initialized: run `securecomm desk init` first")
    if workers > 1 and database.dialect == "sqlite":
        raise fail("--workers > 1 needs PostgreSQL (--database-url): SQLite takes one writing process")
    database.dispose()
    settings = {
        "url": _database_url(data_dir, url),
        "audit_key": str(key_path),
        "token_minutes": token_minutes,
        "anchor_file": str((anchor_file or data_dir / ANCHOR_FILE).resolve()),
        "anchor_seconds": anchor_minutes * 60,
        "max_body_bytes": max_body_bytes,
        "public_docs": public_docs,
        "lab_dir": str((lab_dir or data_dir / "lab").resolve()),
        "lab_workers": lab_workers,
        "lab_scheduler": scheduler,
        # The sign-in cookie only over HTTPS: this server's TLS, or the county's TLS proxy in front.
        "secure_cookies": certfile is not None or forwarded_allow_ips is not None,
    }
    os.environ["SECURECOMM_DESK_SERVE"] = json.dumps(settings)
    tls = {"ssl_certfile": str(certfile), "ssl_keyfile": str(keyfile)} if certfile and keyfile else {}
    # uvicorn trusts X-Forwarded-For from 127.0.0.1 unless told not to: any local process could then write
    # any client address into the audit trail. Only a named proxy is trusted.
    proxy = (
        {"proxy_headers": True, "forwarded_allow_ips": forwarded_allow_ips}
        if forwarded_allow_ips
        else {"proxy_headers": False}
    )
    scheme = "https" if tls else "http"
    docs = " (OpenAPI at /docs)" if public_docs else ""
    errors.print(f"open {scheme}://{host}:{port}/desk/ to sign in to the desk", highlight=False, soft_wrap=True)
    errors.print(
        f"the lab and the policy library at {scheme}://{host}:{port}/, the API under /api/v1{docs}",
        highlight=False,
        soft_wrap=True,
    )
    uvicorn.run(
        "securecomm.web.served:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=access_log,
        log_level="info",
        **tls,
        **proxy,
    )


def _database_url(data_dir: Path, url: str | None) -> str:
    from securecomm.desk.db import database_url

    return database_url(data_dir, url)
