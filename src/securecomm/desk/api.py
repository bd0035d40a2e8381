"""The desk's HTTP API (FastAPI): thin routes over `service.Desk`.

Each route names the permission it needs; `security.ROLE_PERMISSIONS` says which roles have
it. Errors: bad input → 422 naming the field (FastAPI's own shape, also for the checks the
rules engine makes, with `rule` for the desk's ordering rules), no token or an expired or
revoked one → 401, wrong role, disabled or locked account → 403, unknown id → 404, a conflict
with what is already recorded → 409, a body over the size limit → 413 (before it is read),
login attempts throttled → 429 with Retry-After.

Logins are checked in a small pool of their own (`login_threads`, a bounded queue): argon2
never runs on the threads that serve intake, and a throttled attempt is refused before any
hashing. In production mode (the default) `/docs` is off and `/openapi.json` needs a token.
"""

# No `from __future__ import annotations` here: FastAPI reads the route signatures at run
# time, and some of their types are local to create_app.
import asyncio
import contextlib
import datetime as dt
import functools
import json
import logging
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any, Literal, TypeVar

import anyio
from fastapi import Depends, FastAPI, Header, Path, Query, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, create_model
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from securecomm.core import schema
from securecomm.desk import audit, reports
from securecomm.desk.db import Database
from securecomm.desk.guard import DEFAULT_MAX_BODY_BYTES, Guard
from securecomm.desk.security import MIN_PASSWORD_LENGTH, USERNAME_PATTERN, Permission, Role
from securecomm.desk.service import (
    DEFAULT_TOKEN_LIFETIME,
    Actor,
    Clock,
    Conflict,
    Desk,
    DeskError,
    Forbidden,
    InvalidInput,
    IssuedToken,
    NotFound,
    NotInitialized,
    TooManyAttempts,
    Unauthorized,
)
from securecomm.desk.throttle import Throttle

log = logging.getLogger("securecomm.desk")

T = TypeVar("T")
API = "/api/v1"
MAX_ID = 2**63 - 1
LOCAL_DATETIME_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?$"
# A time the jail gives: its wall clock, or a time with a UTC offset (converted to the jail's zone).
JAIL_DATETIME_PATTERN = LOCAL_DATETIME_PATTERN[:-1] + r"(Z|[+-][0-9]{2}:[0-9]{2})?$"


# --- field types ---------------------------------------------------------------------------


def _text(value: str) -> str:
    # PostgreSQL cannot store NUL, and a lone surrogate cannot be encoded: refuse both here (422)
    # rather than let the database fail (500).
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _local_datetime(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, str) and re.fullmatch(LOCAL_DATETIME_PATTERN, value):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"is not a real date and time: {value!r}") from None
    else:
        raise ValueError("must be a local date-time without zone, like 2014-03-06T17:00:00")
    if parsed.tzinfo is not None:
        raise ValueError("must be the jail's local time, with no zone")
    return parsed


def _jail_datetime(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and re.fullmatch(JAIL_DATETIME_PATTERN, value):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"is not a real date and time: {value!r}") from None
        if parsed.tzinfo is not None and abs(parsed.utcoffset() or dt.timedelta()) >= dt.timedelta(hours=24):
            raise ValueError(f"has no real UTC offset: {value!r}")
        return parsed
    raise ValueError("must be a date-time like 2014-03-06T17:00:00 (the jail's zone) or 2014-03-06T17:00:00-05:00")


Text = Annotated[str, AfterValidator(_text)]
LocalDateTime = Annotated[
    dt.datetime,
    BeforeValidator(_local_datetime),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": LOCAL_DATETIME_PATTERN,
            "description": "local wall-clock time of the jail, no zone",
            "examples": ["2014-03-06T17:00:00"],
        }
    ),
]


JailDateTime = Annotated[
    dt.datetime,
    BeforeValidator(_jail_datetime),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": JAIL_DATETIME_PATTERN,
            "description": "the jail's wall-clock time, read in its jurisdiction's time zone; or a time with a "
            "UTC offset, converted to that zone",
            "examples": ["2014-03-06T17:00:00", "2014-03-06T17:00:00-05:00"],
        }
    ),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- request bodies ------------------------------------------------------------------------

Category = Literal[schema.CATEGORIES]  # type: ignore[valid-type]
Level = Literal[schema.LEVELS]  # type: ignore[valid-type]
FelonyClass = Literal[schema.FELONY_CLASSES]  # type: ignore[valid-type]
DetainerForm = Literal[schema.DETAINER_FORMS]  # type: ignore[valid-type]
Years = Annotated[float, Field(ge=0, le=150, allow_inf_nan=False, strict=True)]


class Charge(Strict):
    category: Category
    level: Level
    felony_class: FelonyClass | None = Field(None, description="only for a felony")


class Conviction(Charge):
    years_ago: Years = Field(description="years since the conviction")
    years_since_release: Years | None = Field(None, description="years since release from that sentence")


_FACT_FIELDS: dict[str, Any] = {
    flag: (bool, Field(False, strict=True, description=schema.FACT_PHRASES[flag])) for flag in schema.CASE_FLAGS
}
_FACT_FIELDS[schema.THREE_VALUED_FLAG] = (
    bool | None,
    Field(None, strict=True, description=schema.FACT_PHRASES[schema.THREE_VALUED_FLAG] + " (null: not determined)"),
)

DetainerIntake = create_model(
    "DetainerIntake",
    __base__=Strict,
    __doc__="A detainer as received: the case facts of docs/design.md §2 plus the desk's own fields.",
    booking_ref=(Annotated[Text, Field(max_length=64)], Field(description="the jail's booking number")),
    detainer_number=(
        Annotated[Text, Field(max_length=64)],
        Field(description="ICE's number for this detainer; with booking_ref it names one detainer (twice → 409)"),
    ),
    received_at=(JailDateTime, Field(description="when the detainer reached the jail")),
    issuing_office=(Annotated[Text, Field(max_length=200)], Field(description="the ICE office that issued it")),
    case_id=(Annotated[Text, Field(max_length=200)] | None, Field(None, description="defaults to booking_ref")),
    release_eligible_at=(JailDateTime | None, Field(None, description="when the person would otherwise go free")),
    time_zone=(
        str | None,
        Field(None, max_length=64, description="the jail's IANA zone; if given, it must be the desk's own"),
    ),
    age=(int | None, Field(None, ge=0, le=130, strict=True)),
    current_charges=(list[Charge], Field(default_factory=list, max_length=100)),
    convictions=(list[Conviction], Field(default_factory=list, max_length=200)),
    detainer_form=(DetainerForm | None, None),
    **_FACT_FIELDS,
)


class TokenRequest(Strict):
    username: Annotated[Text, Field(max_length=200)]
    password: Annotated[Text, Field(max_length=1024)]


class ReviewRequest(Strict):
    decision: Literal["honor", "decline"]
    reason: Annotated[Text, Field(max_length=4000, description="the reviewer's written reason")]


class EventRequest(Strict):
    event: Literal["release_eligible", "picked_up_by_ice", "released"]
    at: JailDateTime
    override_reason: Annotated[Text, Field(max_length=4000)] | None = Field(
        None,
        description="only to override an ordering rule (a pickup before release eligibility): the written reason",
    )


NewPassword = Annotated[Text, Field(min_length=MIN_PASSWORD_LENGTH, max_length=1024)]


class NewUser(Strict):
    username: Annotated[str, Field(pattern=USERNAME_PATTERN)]
    password: NewPassword
    role: Literal[tuple(role.value for role in Role)]  # type: ignore[valid-type]


class PasswordChange(Strict):
    current_password: Annotated[Text, Field(max_length=1024)]
    new_password: NewPassword


class PasswordReset(Strict):
    new_password: NewPassword = Field(description="a temporary password the user must change at the next login")


# --- responses -----------------------------------------------------------------------------


class ErrorBody(BaseModel):
    detail: str
    existing_id: int | None = None


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_at_utc: LocalDateTime
    username: str
    role: str
    must_change_password: bool = False


class SessionView(BaseModel):
    id: str
    username: str
    issued_at_utc: LocalDateTime
    expires_at_utc: LocalDateTime
    client: str | None
    current: bool


class Review(BaseModel):
    decision: str
    reason: str | None
    reviewed_by: str | None
    reviewed_at_utc: LocalDateTime | None


class DetainerSummary(BaseModel):
    id: int
    booking_ref: str
    case_id: str
    issuing_office: str
    received_at: LocalDateTime
    detainer_form: str | None
    policy_id: str
    decision: Literal["honor", "decline", "review"]
    automatic_decision: Literal["honor", "decline", "review"]
    rule: str
    citation: str
    explanation: str
    review: Review | None
    decided_by: str | None = Field(None, description="the layer whose answer governs (law.layers)")
    layers: str | None = Field(None, description="what every layer in force answered, broadest first")
    time_zone: str | None = Field(None, description="the IANA zone of this detainer's local times")
    release_eligible_at: LocalDateTime | None
    hold_until: LocalDateTime | None
    hold_until_utc: LocalDateTime | None = Field(None, description="the hold's deadline as a UTC instant")
    hold_citation: str | None = Field(None, description="the limit that set the deadline: a layer's hold or the form's")
    custody: Literal["in_custody", "released", "picked_up_by_ice"]
    custody_ended_at: LocalDateTime | None
    overdue: bool
    overdue_flagged_at: LocalDateTime | None


class EventView(BaseModel):
    id: int
    kind: str
    at: LocalDateTime
    recorded_by: str
    recorded_at_utc: LocalDateTime
    details: dict[str, Any]


class DetainerDetail(DetainerSummary):
    facts: dict[str, Any]
    events: list[EventView]


class IntakeResult(DetainerSummary):
    # Defaults: an answer stored for an Idempotency-Key before migration 0003 is replayed without them.
    times_read_in_zone: list[str] = Field(
        default_factory=list,
        description="the times given without a UTC offset, read in the jurisdiction's zone (time_zone)",
    )


class EventResult(DetainerSummary):
    event: EventView
    times_read_in_zone: list[str]


class OverdueHold(DetainerSummary):
    deadline: LocalDateTime
    overdue_hours: float
    reason: str


class AuditVerification(BaseModel):
    ok: bool
    entries: int
    head_hash: str
    first_broken_seq: int | None
    problem: str | None
    message: str


class AuditEntryView(BaseModel):
    seq: int
    recorded_at_utc: LocalDateTime
    actor: str
    action: str
    subject: str
    details: dict[str, Any]
    prev_hash: str
    hash: str


class UserView(BaseModel):
    username: str
    role: str
    locked: bool
    locked_until_utc: LocalDateTime | None
    disabled: bool
    must_change_password: bool
    failed_logins: int
    created_at_utc: LocalDateTime


class PolicyPeriodView(BaseModel):
    policy_id: str
    title: str
    effective_from: dt.date
    hold: str | None
    notifies_ice_of: list[str]
    layers: list[str]


class DeskView(BaseModel):
    jurisdiction: str
    place: str | None
    time_zone: str | None
    policies: list[PolicyPeriodView]


class ClauseView(BaseModel):
    citation: str
    text: str
    quoted: bool
    status: Literal["modelled", "approximated", "not_modelled", "reconstructed"]
    status_phrase: str
    note: str
    applied_by: list[str]


class LayerView(BaseModel):
    policy_id: str
    title: str
    level: str
    effective: dt.date | None
    status: str
    hold: str | None
    hold_citation: str | None
    notifies_ice_of: list[str]
    clauses: list[ClauseView]


class PolicyInForce(BaseModel):
    on: dt.date
    policy_id: str
    combination: str
    layers: list[LayerView]


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        401: "no valid bearer token",
        403: "the role may not do this, or the account is disabled, locked or must change its password",
        404: "no such record",
        409: "conflicts with what is already recorded",
        429: "too many failed logins: wait Retry-After seconds",
        503: "too many logins being checked at once, or the database is unavailable: retry",
    }
    return {code: {"model": ErrorBody, "description": descriptions[code]} for code in codes}


# --- the application -----------------------------------------------------------------------

_FIELD_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _location(error: InvalidInput) -> list[str | int]:
    parts: list[str | int] = [error.location]
    for name, index in _FIELD_PART.findall(error.field):
        parts.append(int(index) if index else name)
    return parts


def _client(request: Request) -> str:
    # With uvicorn's --proxy-headers and --forwarded-allow-ips this is the address the county's
    # reverse proxy saw, not the proxy's own.
    return request.client.host if request.client else "unknown"


class WriteBatcher:
    """Group commit for intake and review: the intakes and reviews that arrive while one batch is being
    written wait together, and the next batch writes them all in one transaction (`Desk.write_many`): one
    commit, one fsync and one lock of the audit chain's head for them all, each answered only once that
    commit is done. Alone, a write is made at once, as before; under load, batches grow to what arrived
    meanwhile (at most `max_batch`). One batch is under way at a time.

    `linger` (seconds): after a batch, while fewer writes wait than the batch held plus those that arrived
    while it was written, the next batch waits up to this long for the clients just answered to send their
    next request — a group-commit delay, as PostgreSQL's `commit_delay`. Without it, busy clients settle into
    two groups that the writer takes in turn, each paying a transaction's fixed cost; counting only the batch
    just written keeps two such groups apart once they formed. After a batch of one write with nothing
    waiting (a quiet desk) nothing waits."""

    def __init__(
        self,
        desk: Desk,
        run: Callable[..., Awaitable[Any]],
        *,
        linger: float,
        max_batch: int = 64,
    ) -> None:
        self.desk = desk
        self.run = run
        self.max_batch = max_batch
        self.linger = linger
        self.expected = 0  # writes the next batch lingers for: the last batch and those that came meanwhile
        self.gathered: asyncio.Event | None = None  # set while lingering, once `expected` wait
        # (True and an intake's (actor, body, Idempotency-Key), or False and a review's (actor, detainer id,
        # decision, reason)), and the future of its answer.
        self.pending: list[tuple[bool, tuple[Any, ...], asyncio.Future[Any]]] = []
        self.running = False  # a batch runner is under way
        self.tasks: set[asyncio.Task[None]] = set()

    async def intake(self, actor: Actor, request: dict[str, Any], idempotency_key: str | None) -> dict[str, Any]:
        return await self._write(True, (actor, request, idempotency_key))

    async def review(self, actor: Actor, detainer_id: int, decision: str, reason: str) -> dict[str, Any]:
        return await self._write(False, (actor, detainer_id, decision, reason))

    async def _write(self, is_intake: bool, item: tuple[Any, ...]) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending.append((is_intake, item, future))
        if self.gathered is not None and len(self.pending) >= self.expected:
            self.gathered.set()
        if not self.running:
            self.running = True
            task = asyncio.create_task(self._drain())
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return await future

    async def _drain(self) -> None:
        try:
            while self.pending:
                if self.linger and len(self.pending) < self.expected:
                    self.gathered = asyncio.Event()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self.linger):
                            await self.gathered.wait()
                    self.gathered = None
                batch, self.pending = self.pending[: self.max_batch], self.pending[self.max_batch :]
                intakes = [(item, future) for is_intake, item, future in batch if is_intake]
                reviews = [(item, future) for is_intake, item, future in batch if not is_intake]
                try:
                    answers = await self.run(
                        self.desk.write_many, [item for item, _ in intakes], [item for item, _ in reviews]
                    )
                except BaseException as error:  # the database is out of reach: every waiting write hears it
                    answers = ([error] * len(intakes), [error] * len(reviews))
                for writes, written in zip((intakes, reviews), answers, strict=True):
                    for (_, future), answer in zip(writes, written, strict=True):
                        if future.done():  # the client went away
                            continue
                        if isinstance(answer, BaseException):
                            future.set_exception(answer)
                        else:
                            future.set_result(answer)
                self.expected = min(len(batch) + len(self.pending), self.max_batch)
        finally:
            self.running = False


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} in an intake's answer")


_INTAKE_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_json_default)


def intake_json(summary: dict[str, Any]) -> bytes:
    """An intake's answer (`Desk.intake`'s summary) as the JSON of IntakeResult."""
    return _INTAKE_ENCODER.encode(summary).encode("utf-8")


Handler = Callable[[dict[str, Any], Callable[..., Awaitable[Any]], Callable[..., Awaitable[Any]], Any], Awaitable[None]]


class FastRoutes:
    """Pure ASGI, just inside the guard: a request whose method and whole path match one of `routes`
    goes to that route's handler, with the application behind it to hand the request on to if it must
    (`fallback`); every other request goes straight on. The handlers are `create_app`'s lean paths of
    its busiest routes."""

    def __init__(self, app: Any, routes: list[tuple[str, re.Pattern[str], Handler]]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):
            method, path = scope["method"], scope["path"]
            for route_method, pattern, handler in self.routes:
                if method == route_method and pattern.fullmatch(path):
                    await handler(scope, receive, send, self.app)
                    return
        await self.app(scope, receive, send)


# The server's group-commit delay (WriteBatcher.linger), on both backends. An assumption, measured
# (docs/desk.md): bench/desk_load.py on SQLite at load 5-8, server CPU per intake 0.94-1.27 ms with 1 ms,
# 1.10-1.54 ms without (batches of all the clients rather than two groups in turn); 2 ms did no better; on
# PostgreSQL see create_app. Sensible range 0.5-2 ms:
# well under an intake's own latency (10-20 ms under load), longer than a client's turn-around on loopback.
GROUP_COMMIT_LINGER = 0.001
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]+$"
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,200}")
_JSON_HEADERS = [(b"content-type", b"application/json")]


def write_anchor(desk: Desk, path: Any, last: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """Append the chain's signed head to the anchor file (one JSON a line), unless it has not moved."""
    anchor = desk.anchor()
    if last is not None and last.get("seq") == anchor["seq"]:
        return last
    with open(path, "a", encoding="utf-8") as file:
        file.write(audit.canonical_json(anchor) + "\n")
        file.flush()
        os.fsync(file.fileno())
    return anchor


def create_app(
    database: Database,
    *,
    clock: Clock | None = None,
    token_lifetime: dt.timedelta = DEFAULT_TOKEN_LIFETIME,
    overdue_check_seconds: float | None = 60.0,
    audit_key: audit.AuditKey | None = None,
    public_docs: bool = False,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    anchor_file: Any = None,
    anchor_seconds: float = 600.0,
    throttle: Throttle | None = None,
    login_threads: int = 1,
    login_queue: int = 8,
) -> FastAPI:
    """The FastAPI application over an opened (migrated) database.

    `public_docs`: serve /docs and /openapi.json without login (a test desk); otherwise /docs is
    off and /openapi.json needs a token. `anchor_file`: where the server appends the chain's
    signed head every `anchor_seconds` and at shutdown."""
    desk = Desk(database, clock=clock, token_lifetime=token_lifetime, audit_key=audit_key)
    throttle = throttle or Throttle()
    # The desk's own work on detainers runs in a small pool of its own. On SQLite writes go one at a
    # time anyway, and one writer thread beside the event loop means no crowd of threads fighting
    # for the GIL while a commit waits for its fsync; PostgreSQL takes the rest (reads, events, the batch of
    # intakes and reviews) in parallel. Each thread keeps its write connection from one transaction to the
    # next (Database.hold_write_connections).
    writer = ThreadPoolExecutor(
        max_workers=1 if database.dialect == "sqlite" else 8,
        thread_name_prefix="desk",
        initializer=database.hold_write_connections,
    )
    # Logins (argon2: ~0.1 s of a core and 64 MiB each) have a pool of their own, bounded: a flood
    # of logins waits there or is refused, and never takes the threads or cores intake needs.
    login_pool = ThreadPoolExecutor(max_workers=login_threads, thread_name_prefix="desk-login")
    login_slots = asyncio.Semaphore(login_threads + login_queue)
    # Throttled attempts are answered after a pause (at most 1 s, for at most 64 at once): a client
    # hammering the login in a loop then costs the desk a few requests a second, not thousands.
    tarpit_slots = asyncio.Semaphore(64)

    async def in_writer(function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(writer, functools.partial(function, *args))

    # One batch at a time on either backend, lingering 1 ms for the clients just answered
    # (GROUP_COMMIT_LINGER). On PostgreSQL most of a batch's cost is per transaction (five round trips, about
    # ten statements, a commit), not per intake, so larger batches pay: bench/desk_load.py --workers 2, one
    # batch with the linger against two per process without it, alternating: 290-363 against 225-276
    # intakes/s at load 11-14, 398-506 against 370-387 at load 1-2 (docs/desk.md, fourth round).
    writes = WriteBatcher(desk, in_writer, linger=GROUP_COMMIT_LINGER)

    async def flush_throttled() -> None:
        rejected = throttle.take_rejected()
        if rejected:
            await in_writer(desk.record_throttled, rejected)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(_flag_overdue_periodically())] if overdue_check_seconds else []
        tasks.append(asyncio.create_task(_housekeeping()))
        last_anchor: dict[str, Any] | None = None
        yield
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # At shutdown: the throttled attempts not yet audited, then the chain's head.
        with contextlib.suppress(Exception):
            await flush_throttled()
        if anchor_file is not None:
            try:
                await in_writer(write_anchor, desk, anchor_file, last_anchor)
            except Exception:
                log.exception("could not write the audit anchor at shutdown")
        writer.shutdown(wait=True)
        login_pool.shutdown(wait=True)

    async def _housekeeping() -> None:
        # Every minute: audit the throttled login attempts; every anchor_seconds: anchor the chain.
        last: dict[str, Any] | None = None
        next_anchor = 0.0
        loop = asyncio.get_running_loop()
        while True:
            try:
                await flush_throttled()
                if anchor_file is not None and loop.time() >= next_anchor:
                    last = await in_writer(write_anchor, desk, anchor_file, last)
                    next_anchor = loop.time() + anchor_seconds
            except NotInitialized:
                pass
            except Exception:
                log.exception("audit housekeeping failed; trying again later")
            await asyncio.sleep(min(60.0, anchor_seconds))

    async def _flag_overdue_periodically() -> None:
        # Holds past their deadline are flagged even when nobody asks for the list.
        assert overdue_check_seconds is not None
        while True:
            try:
                await in_writer(desk.flag_overdue_holds)
            except NotInitialized:
                pass
            except Exception:
                log.exception("flagging overdue holds failed; trying again later")
            await asyncio.sleep(overdue_check_seconds)

    app = FastAPI(
        title="securecomm detainer desk",
        version="1",
        description=(
            "Intake of ICE detainers, automatic decisions under the jurisdiction's policy in force on the day "
            "received, case-by-case review, the hold clock, and a keyed, hash-chained audit log. Times of custody "
            "are the jail's local wall-clock time without zone; `*_utc` fields are UTC."
        ),
        lifespan=lifespan,
        # FastAPI's native OpenTelemetry, which the desk does not use, asks the global providers whether
        # they are configured on every request (environment look-ups: ~5 % of the event loop per intake).
        telemetry={"tracing": False, "metrics": False, "logs": False},
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if public_docs else None,
    )
    app.state.desk = desk
    app.state.throttle = throttle
    app.state.writes = writes
    # The lean paths of the busiest routes (filled in below), inside the guard: its size limit and
    # headers apply to them as to every other answer.
    fast_routes: list[tuple[str, re.Pattern[str], Handler]] = []
    app.add_middleware(FastRoutes, routes=fast_routes)
    app.add_middleware(Guard, max_body_bytes=max_body_bytes)

    if public_docs:
        # The interactive docs are served from the swagger-ui-bundle package, not a CDN: a jail's
        # network may have no way out.
        app.mount("/static/swagger-ui", StaticFiles(directory=swagger_ui_path), name="swagger-ui")

        @app.get("/docs", include_in_schema=False)
        async def interactive_docs() -> HTMLResponse:
            return get_swagger_ui_html(
                openapi_url=app.openapi_url or "/openapi.json",
                title=f"{app.title} — API",
                swagger_js_url="/static/swagger-ui/swagger-ui-bundle.js",
                swagger_css_url="/static/swagger-ui/swagger-ui.css",
                swagger_favicon_url="/static/swagger-ui/favicon-32x32.png",
            )

    @app.exception_handler(DeskError)
    async def desk_error(_request: Request, error: DeskError) -> JSONResponse:
        if isinstance(error, InvalidInput):
            item: dict[str, Any] = {"loc": _location(error), "msg": str(error), "type": "value_error"}
            if error.rule is not None:
                item["rule"] = error.rule
            return JSONResponse({"detail": [item]}, status_code=422)
        if isinstance(error, TooManyAttempts):
            seconds = max(1, int(error.retry_after + 0.999))
            return JSONResponse({"detail": str(error)}, status_code=429, headers={"Retry-After": str(seconds)})
        status = {
            NotFound: 404,
            Conflict: 409,
            Forbidden: 403,
            Unauthorized: 401,
            NotInitialized: 503,
        }.get(type(error), 400)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        body: dict[str, Any] = {"detail": str(error)}
        if isinstance(error, Conflict) and error.existing_id is not None:
            body["existing_id"] = error.existing_id
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(OperationalError)
    async def database_busy(_request: Request, error: OperationalError) -> JSONResponse:
        # Not a bug but a database out of reach (locked for longer than the busy timeout, server
        # down): say so and ask the client to retry, rather than report an internal error.
        log.error("database unavailable: %s", error)
        return JSONResponse(
            {"detail": "the database is unavailable; retry"}, status_code=503, headers={"Retry-After": "1"}
        )

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, error: RequestValidationError) -> JSONResponse:
        # FastAPI's shape, minus the echoed input (it may be a password or personal data).
        detail = [{"loc": list(item["loc"]), "msg": item["msg"], "type": item["type"]} for item in error.errors()]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        if error.status_code == 400:
            # FastAPI's answer to a body it cannot decode (not UTF-8): bad input, so 422 like the rest.
            detail = [{"loc": ["body"], "msg": "the body must be JSON in UTF-8", "type": "json_invalid"}]
            return JSONResponse({"detail": detail}, status_code=422)
        return await http_exception_handler(request, error)

    bearer = HTTPBearer(auto_error=False, description="a token from POST /api/v1/auth/token")

    # The checks are async and call the database through a worker thread only when they must
    # (a token not seen in the last seconds, a refusal to audit): each request then costs one
    # hop to the thread pool, for its route, instead of three.
    async def actor_of(credentials: HTTPAuthorizationCredentials | None) -> Actor:
        if credentials is None:
            raise Unauthorized("send a bearer token (POST /api/v1/auth/token gives one)")
        actor = desk.recently_authenticated(credentials.credentials)
        if actor is None:
            actor = await anyio.to_thread.run_sync(desk.authenticate, credentials.credentials)
        return actor

    async def current_actor(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Actor:
        return await actor_of(credentials)

    def requires(permission: Permission) -> Callable[..., Awaitable[Actor]]:
        # One dependency on the bearer scheme, not one on current_actor: FastAPI resolves each level of
        # dependencies on every request, and this runs on every request of the API.
        async def check(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Actor:
            actor = await actor_of(credentials)
            if actor.must_change_password or not actor.may(permission):
                raise await in_writer(desk.record_denied, actor, permission)
            return actor

        return check

    if not public_docs:

        @app.get("/openapi.json", include_in_schema=False)
        async def openapi_behind_login(_actor: Annotated[Actor, Depends(current_actor)]) -> JSONResponse:
            return JSONResponse(app.openapi())

    DetainerId = Annotated[int, Path(ge=1, le=MAX_ID, description="the desk's detainer id")]
    Username = Annotated[str, Path(pattern=USERNAME_PATTERN)]

    def token_response(issued: IssuedToken) -> TokenResponse:
        return TokenResponse(
            access_token=issued.token,
            expires_at_utc=issued.expires_utc,
            username=issued.username,
            role=issued.role,
            must_change_password=issued.must_change_password,
        )

    @app.get(f"{API}/health", tags=["service"])
    def health() -> dict[str, str]:
        """Liveness: the process answers (no authentication)."""
        return {"status": "ok"}

    @app.post(f"{API}/auth/token", tags=["auth"], responses=_errors(401, 403, 429, 503))
    async def issue_token(request: Request, body: TokenRequest) -> TokenResponse:
        """Log in: a bearer token that expires. Failed logins slow further attempts down (per account and
        per address, doubling: 429 with Retry-After), and a run of them locks the account for a while."""
        client = _client(request)
        wait = throttle.admit(body.username, client)
        if wait:
            if not tarpit_slots.locked():
                async with tarpit_slots:
                    await asyncio.sleep(min(wait, 1.0))
            raise TooManyAttempts(f"too many failed logins: try again in {max(1, round(wait))} s", wait)
        if login_slots.locked():
            throttle.release(body.username, client)
            return JSONResponse(  # type: ignore[return-value]
                {"detail": "too many logins are being checked at once; retry"},
                status_code=503,
                headers={"Retry-After": "1"},
            )
        async with login_slots:
            try:
                issued = await asyncio.get_running_loop().run_in_executor(
                    login_pool, desk.login, body.username, body.password, client
                )
            except (Unauthorized, Forbidden):
                throttle.done(body.username, client, success=False)
                raise
            except BaseException:
                throttle.release(body.username, client)
                raise
        throttle.done(body.username, client, success=True)
        return token_response(issued)

    @app.post(f"{API}/auth/logout", status_code=204, tags=["auth"], responses=_errors(401, 403))
    async def logout(actor: Annotated[Actor, Depends(current_actor)]) -> Response:
        """Revoke the token this request carries."""
        await in_writer(desk.logout, actor)
        return Response(status_code=204)

    @app.post(f"{API}/auth/password", tags=["auth"], responses=_errors(401, 403))
    async def change_password(
        request: Request, body: PasswordChange, actor: Annotated[Actor, Depends(current_actor)]
    ) -> TokenResponse:
        """Change one's own password (≥ 12 characters, not a common one, not the username): every earlier
        token is revoked, and a new one is returned."""
        if login_slots.locked():
            raise TooManyAttempts("too many passwords are being checked at once; retry", 1)
        async with login_slots:
            issued = await asyncio.get_running_loop().run_in_executor(
                login_pool, desk.change_password, actor, body.current_password, body.new_password, _client(request)
            )
        return token_response(issued)

    @app.get(f"{API}/auth/sessions", tags=["auth"], responses=_errors(401, 403))
    async def list_sessions(
        actor: Annotated[Actor, Depends(current_actor)],
        username: Annotated[str | None, Query(pattern=USERNAME_PATTERN, description="supervisors: one user")] = None,
    ) -> list[SessionView]:
        """Active sessions (unexpired tokens): one's own, or everyone's for a supervisor."""
        return [SessionView.model_validate(item) for item in await in_writer(desk.sessions, actor, username)]

    @app.delete(f"{API}/auth/sessions/{{session_id}}", status_code=204, tags=["auth"], responses=_errors(401, 404))
    async def revoke_session(
        session_id: Annotated[str, Path(pattern=r"^[0-9a-f]{16}$")], actor: Annotated[Actor, Depends(current_actor)]
    ) -> Response:
        """Revoke a session: one's own, or anyone's for a supervisor."""
        await in_writer(desk.revoke_session, actor, session_id)
        return Response(status_code=204)

    @app.get(f"{API}/desk", tags=["service"], responses=_errors(401, 403))
    def describe_desk(_actor: Annotated[Actor, Depends(requires(Permission.READ_DESK))]) -> DeskView:
        """The jurisdiction and its dated list of policies."""
        return DeskView.model_validate(desk.describe())

    @app.get(f"{API}/policy", tags=["service"], responses=_errors(401, 403))
    def policy_in_force(
        _actor: Annotated[Actor, Depends(requires(Permission.READ_DESK))],
        on: Annotated[dt.date | None, Query(description="the day (default: today, the jail's date)")] = None,
    ) -> PolicyInForce:
        """The policy in force on a day as the desk decides under it: every layer, clause by clause."""
        return PolicyInForce.model_validate(desk.policy_in_force_view(on))

    # The busy routes return plain dicts for FastAPI to check against response_model once, rather
    # than a model it would dump and check again.
    @app.post(
        f"{API}/detainers",
        status_code=201,
        tags=["detainers"],
        response_model=IntakeResult,
        responses=_errors(401, 403, 409),
    )
    async def create_detainer(
        body: DetainerIntake,  # type: ignore[valid-type]
        actor: Annotated[Actor, Depends(requires(Permission.CREATE_DETAINER))],
        response: Response,
        idempotency_key: Annotated[
            str | None,
            Header(
                alias="Idempotency-Key",
                max_length=200,
                pattern=IDEMPOTENCY_KEY_PATTERN,
                description="a retry with the same key and body gets the first answer; another body → 409",
            ),
        ] = None,
    ) -> dict[str, Any] | Response:
        """Intake: record a detainer and decide it under the policy in force on the day received."""
        result = await writes.intake(actor, body.model_dump(), idempotency_key)
        if result.pop("replayed", False):
            # An answer stored earlier (perhaps before migration 0003): through the model, for its defaults.
            response.headers["Idempotent-Replayed"] = "true"
            return result
        # The busiest answer of the desk, written directly: the summary's own fields in JSON, as the model
        # would write them (tests/desk check the two are the same), without validating our own output again.
        return Response(intake_json(result), status_code=201, media_type="application/json")

    @app.get(f"{API}/detainers/{{detainer_id}}", tags=["detainers"], responses=_errors(401, 403, 404))
    async def read_detainer(
        detainer_id: DetainerId, actor: Annotated[Actor, Depends(requires(Permission.READ_DETAINER))]
    ) -> DetainerDetail:
        """One detainer with its facts and events (a read of personal data: audited)."""
        return DetainerDetail.model_validate(await in_writer(desk.get_detainer, actor, detainer_id))

    @app.get(f"{API}/review-queue", tags=["review"], response_model=list[DetainerSummary], responses=_errors(401, 403))
    async def review_queue(
        actor: Annotated[Actor, Depends(requires(Permission.REVIEW))],
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        """Detainers awaiting a reviewer, the most urgent first."""
        return await in_writer(desk.review_queue, actor, limit)

    @app.post(
        f"{API}/detainers/{{detainer_id}}/review",
        tags=["review"],
        response_model=DetainerSummary,
        responses=_errors(401, 403, 404, 409),
    )
    async def review_detainer(
        detainer_id: DetainerId,
        body: ReviewRequest,
        actor: Annotated[Actor, Depends(requires(Permission.REVIEW))],
    ) -> dict[str, Any]:
        """Decide a detainer in the review queue, with a written reason; 409 if already decided."""
        return await writes.review(actor, detainer_id, body.decision, body.reason)

    @app.post(
        f"{API}/detainers/{{detainer_id}}/events",
        status_code=201,
        tags=["custody"],
        responses=_errors(401, 403, 404, 409),
    )
    async def record_event(
        detainer_id: DetainerId,
        body: EventRequest,
        actor: Annotated[Actor, Depends(requires(Permission.RECORD_EVENT))],
    ) -> EventResult:
        """Release eligibility (starts the hold clock), pickup by ICE, or release."""
        return EventResult.model_validate(
            await in_writer(desk.record_event, actor, detainer_id, body.event, body.at, body.override_reason)
        )

    @app.get(f"{API}/holds/overdue", tags=["custody"], responses=_errors(401, 403))
    async def overdue_holds(actor: Annotated[Actor, Depends(requires(Permission.READ_HOLDS))]) -> list[OverdueHold]:
        """People in custody past what their detainer allows (flagged as they are found)."""
        return [OverdueHold.model_validate(item) for item in await in_writer(desk.overdue_holds, actor)]

    report_formats = {
        "application/json": {"schema": {"type": "object"}},
        "text/csv": {"schema": {"type": "string"}},
        "text/html": {"schema": {"type": "string"}},
    }

    @app.get(
        f"{API}/reports/quarterly",
        tags=["reports"],
        response_class=JSONResponse,
        responses={200: {"content": report_formats, "description": "the report"}, **_errors(401, 403)},
    )
    def quarterly_report(
        request: Request,
        actor: Annotated[Actor, Depends(requires(Permission.READ_REPORTS))],
        quarter: Annotated[str, Query(pattern=reports.QUARTER_PATTERN, examples=["2014Q1"])],
        format: Annotated[Literal["json", "csv", "html"] | None, Query(description="overrides Accept")] = None,
    ) -> Response:
        """The quarterly transparency report: JSON, or CSV (Accept: text/csv), or a printable HTML page
        (Accept: text/html)."""
        report = desk.quarterly_report(actor, quarter)
        accept = request.headers.get("accept", "")
        chosen = format or ("csv" if "text/csv" in accept else "html" if "text/html" in accept else "json")
        if chosen == "csv":
            return PlainTextResponse(reports.report_csv(report), media_type="text/csv")
        if chosen == "html":
            return HTMLResponse(reports.report_html(report))
        return JSONResponse(report)

    @app.get(f"{API}/audit/verify", tags=["audit"], responses=_errors(401, 403))
    def verify_audit(_actor: Annotated[Actor, Depends(requires(Permission.READ_AUDIT))]) -> AuditVerification:
        """Check the whole hash chain; names the first entry that does not fit."""
        result = desk.verify_audit()
        return AuditVerification(
            ok=result.ok,
            entries=result.entries,
            head_hash=result.head_hash,
            first_broken_seq=result.first_broken_seq,
            problem=result.problem,
            message=result.describe(),
        )

    @app.get(f"{API}/audit/entries", tags=["audit"], responses=_errors(401, 403))
    def audit_entries(
        actor: Annotated[Actor, Depends(requires(Permission.READ_AUDIT))],
        after: Annotated[int, Query(ge=0, le=MAX_ID, description="the last seq already seen")] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[AuditEntryView]:
        """The audit chain, in order, a page at a time."""
        return [AuditEntryView.model_validate(entry) for entry in desk.audit_entries(actor, after, limit)]

    @app.get(f"{API}/users", tags=["users"], responses=_errors(401, 403))
    def list_users(actor: Annotated[Actor, Depends(requires(Permission.MANAGE_USERS))]) -> list[UserView]:
        return [UserView.model_validate(user) for user in desk.list_users(actor)]

    @app.post(f"{API}/users", status_code=201, tags=["users"], responses=_errors(401, 403, 409))
    def create_user(body: NewUser, actor: Annotated[Actor, Depends(requires(Permission.MANAGE_USERS))]) -> UserView:
        return UserView.model_validate(desk.add_user(body.username, body.password, body.role, actor))

    @app.post(f"{API}/users/{{username}}/unlock", tags=["users"], responses=_errors(401, 403, 404))
    def unlock_user(
        username: Username, actor: Annotated[Actor, Depends(requires(Permission.MANAGE_USERS))]
    ) -> UserView:
        """Lift a temporary lock now; the user's earlier tokens are revoked."""
        view = UserView.model_validate(desk.unlock_user(username, actor))
        throttle.clear_account(username)
        return view

    @app.post(f"{API}/users/{{username}}/disable", tags=["users"], responses=_errors(401, 403, 404, 409))
    def disable_user(
        username: Username, actor: Annotated[Actor, Depends(requires(Permission.MANAGE_USERS))]
    ) -> UserView:
        """No more logins, and the user's tokens are refused (403), until enabled again."""
        return UserView.model_validate(desk.disable_user(username, actor))

    @app.post(f"{API}/users/{{username}}/enable", tags=["users"], responses=_errors(401, 403, 404))
    def enable_user(
        username: Username, actor: Annotated[Actor, Depends(requires(Permission.MANAGE_USERS))]
    ) -> UserView:
        return UserView.model_validate(desk.enable_user(username, actor))

    @app.post(f"{API}/users/{{username}}/password", tags=["users"], responses=_errors(401, 403, 404))
    async def reset_password(
        username: Username,
        body: PasswordReset,
        actor: Annotated[Actor, Depends(requires(Permission.MANAGE_USERS))],
    ) -> UserView:
        """Set a temporary password: the user's tokens are revoked and they must change it at the next login."""
        async with login_slots:
            view = await asyncio.get_running_loop().run_in_executor(
                login_pool, desk.reset_password, username, body.new_password, actor
            )
        return UserView.model_validate(view)

    # --- the lean paths of the busiest routes (intake, review) ---------------------------------
    # The same checks in the same order as the routes above — a bearer token (from the token cache, else
    # checked by `Desk.authenticate` as the route checks it), the role's permission, the Idempotency-Key's
    # form, a JSON body the same model validates as the route does — then the same call of the desk and the
    # same answer, without FastAPI's per-request machinery (dependencies, Request objects, response classes:
    # most of a millisecond of CPU a request). Any request that is not plainly in order (no token, a token
    # refused, a refused role, a bad header, path or body, a replayed answer) goes to its route unchanged,
    # body included, which answers it as it always has (401, 403 with its audit entry, 422 naming the field).

    async def plain_request(
        scope: dict[str, Any], receive: Any, permission: Permission, model: Any, *, idempotency: bool = False
    ) -> tuple[tuple[Actor, Any, str | None] | None, Any]:
        """(actor, validated body, Idempotency-Key) for a request in order, else None; and the receive to
        hand the request on to its route with: the original, or one that gives the body read here again
        (None: the client went away)."""
        authorization = key = content_type = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                if authorization is not None:
                    return None, receive
                authorization = value
            elif name == b"content-type":
                if content_type is not None:
                    return None, receive
                content_type = value
            elif idempotency and name == b"idempotency-key":
                if key is not None:
                    return None, receive
                key = value
        if authorization is None or content_type is None:
            return None, receive
        if content_type.split(b";", 1)[0].strip().lower() != b"application/json":
            return None, receive
        scheme, _, token = authorization.decode("latin-1").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return None, receive
        try:
            actor = desk.recently_authenticated(token)
            if actor is None:  # not checked in the last second: checked here as the route checks it
                actor = await anyio.to_thread.run_sync(desk.authenticate, token)
        except (DeskError, OperationalError):  # the route answers (401, 403, 503)
            actor = None
        if actor is None or actor.must_change_password or not actor.may(permission):
            return None, receive
        idempotency_key = None
        if key is not None:
            idempotency_key = key.decode("latin-1")
            if not _IDEMPOTENCY_KEY.fullmatch(idempotency_key):
                return None, receive
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return None, None
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        unread = [{"type": "http.request", "body": body, "more_body": False}]

        async def replay() -> dict[str, Any]:  # the body once more, for the route
            return unread.pop() if unread else await receive()

        try:
            return (actor, model.model_validate(json.loads(body), from_attributes=True), idempotency_key), replay
        except ValueError:  # not JSON, or not valid (pydantic's ValidationError is a ValueError)
            return None, replay

    async def answer(send: Any, status: int, content: bytes) -> None:
        headers = [*_JSON_HEADERS, (b"content-length", str(len(content)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    async def refusal(scope: dict[str, Any], receive: Any, send: Any, error: Exception) -> None:
        """A refusal by the desk, answered by the application's own handler of it (as the route's is)."""
        if isinstance(error, DeskError):
            response = await desk_error(None, error)  # type: ignore[arg-type]
        elif isinstance(error, OperationalError):
            response = await database_busy(None, error)  # type: ignore[arg-type]
        else:
            raise error
        await response(scope, receive, send)

    async def acted(
        scope: dict[str, Any],
        receive: Any,
        send: Any,
        fallback: Any,
        permission: Permission,
        model: Any,
        act: Callable[[Actor, Any, str | None], Awaitable[Any]],
        *,
        idempotency: bool = False,
    ) -> tuple[Any, Any] | None:
        """(what `act` returned, the receive to hand the request on with) for a plain request; None when the
        normal route (a request not plainly in order) or a refusal has answered instead."""
        plain, passed_on = await plain_request(scope, receive, permission, model, idempotency=idempotency)
        if plain is None:
            if passed_on is not None:
                await fallback(scope, passed_on, send)
            return None
        try:
            return await act(*plain), passed_on
        except (DeskError, OperationalError) as error:
            await refusal(scope, receive, send, error)
            return None

    async def fast_intake(scope: dict[str, Any], receive: Any, send: Any, fallback: Any) -> None:
        """POST /api/v1/detainers (create_detainer)."""
        done = await acted(
            scope,
            receive,
            send,
            fallback,
            Permission.CREATE_DETAINER,
            DetainerIntake,
            lambda actor, body, idempotency_key: writes.intake(actor, body.model_dump(), idempotency_key),
            idempotency=True,
        )
        if done is None:
            return
        result, passed_on = done
        if result.get("replayed"):  # an answer stored earlier: the route gives it again, as it always has
            await fallback(scope, passed_on, send)
            return
        await answer(send, 201, intake_json(result))

    review_route = next(route for route in app.routes if getattr(route, "endpoint", None) is review_detainer)

    async def fast_review(scope: dict[str, Any], receive: Any, send: Any, fallback: Any) -> None:
        """POST /api/v1/detainers/{id}/review (review_detainer), answered as FastAPI answers it: the result
        checked and written by the route's own response field."""
        detainer_id = int(scope["path"][len(API) + 11 : -7])
        if detainer_id > MAX_ID:
            await fallback(scope, receive, send)
            return
        done = await acted(
            scope,
            receive,
            send,
            fallback,
            Permission.REVIEW,
            ReviewRequest,
            lambda actor, body, _: writes.review(actor, detainer_id, body.decision, body.reason),
        )
        if done is None:
            return
        result, _ = done
        field = review_route.response_field
        value, errors = field.validate(result, {}, loc=("response",))
        if errors:
            raise RuntimeError(f"a review's answer does not fit its model: {errors}")
        await answer(send, 200, field.serialize_json(value, by_alias=True))

    fast_routes.append(("POST", re.compile(rf"{API}/detainers"), fast_intake))
    fast_routes.append(("POST", re.compile(rf"{API}/detainers/[1-9][0-9]{{0,18}}/review"), fast_review))

    return app


def app_from_environment() -> FastAPI:
    """The application `securecomm serve` runs (in each worker process): its settings come from the
    environment variable SECURECOMM_DESK_SERVE (JSON) that the command sets."""
    import sys
    from pathlib import Path as FilePath

    from securecomm.desk.db import open_database

    settings = json.loads(os.environ["SECURECOMM_DESK_SERVE"])
    # Writes are one at a time, and a thread that returns from the commit's fsync must win the GIL
    # back before the next write can start: a short switch interval (default 5 ms) keeps that wait,
    # and so the write lock's hold time, short. It doubles intakes/s under load on SQLite.
    sys.setswitchinterval(0.001)
    return create_app(
        open_database(settings["url"]),
        token_lifetime=dt.timedelta(minutes=settings["token_minutes"]),
        audit_key=audit.AuditKey.load(FilePath(settings["audit_key"])),
        anchor_file=settings["anchor_file"],
        anchor_seconds=settings["anchor_seconds"],
        max_body_bytes=settings["max_body_bytes"],
        public_docs=settings["public_docs"],
    )
