"""The desk's work: set-up, users and logins, intake, review, custody events, overdue holds.

Every operation is one database transaction that ends with its audit entry. Decisions come
from the rules engine alone: the case facts are checked by `securecomm.core.cases` and decided by
`securecomm.law.per_case.evaluate_layers` under the policy of the desk's dated list that is in
force on the day the detainer was received, together with every policy it narrows that is in force
that day (`law.loader.layers_of`: a department's policy applies on top of the statute; the stricter
outcome governs). Hold deadlines are the engine's: the earlier of each layer's hold and the detainer
form's (an I-247N asks for notice only: no hold), counted on the jurisdiction's clock in its own
time zone (the desk's place, `core.places`), so clock hours are real hours across daylight saving.

The hold never outlives its deadline: release eligibility may only be recorded once (or moved
earlier), a reviewer's later "honor" counts the hold from the original release eligibility,
and a transfer to ICE after `hold_until` is refused.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Dialect, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from securecomm.core.cases import InputError, normalize_records
from securecomm.core.places import time_zones
from securecomm.core.yamlfiles import PolicyFileError, load_yaml
from securecomm.desk import audit, reports, security
from securecomm.desk.db import (
    Database,
    DriverInsert,
    bind_processors,
    driver_cursor,
    driver_sql,
    driver_values,
    pipeline,
)
from securecomm.desk.models import (
    DeskSettings,
    Detainer,
    Event,
    IdempotencyKey,
    PolicyPeriod,
    RegisteredPolicy,
    Token,
    User,
)
from securecomm.desk.security import DEFAULT_TOKEN_LIFETIME, LOCK_DURATION, MAX_FAILED_LOGINS, Permission, Role
from securecomm.law import holdclock
from securecomm.law.explain import clause_table
from securecomm.law.layers import check_layerable, combine_case, layer_label
from securecomm.law.loader import UnknownPolicyError, layers_of, load_forms, load_policy, parse_policy, policy_ids
from securecomm.law.model import Policy
from securecomm.law.outcomes import Outcome, question_outcomes
from securecomm.law.per_case import evaluate_case, hold_if, outcome_index

EVENT_KINDS = ("release_eligible", "picked_up_by_ice", "released")
REVIEW_DECISIONS = ("honor", "decline")
# Fields of an intake besides the case facts of docs/design.md §2.
INTAKE_FIELDS = ("booking_ref", "detainer_number", "received_at", "issuing_office")
# A detainer hold may last at most 48 hours, excluding Saturdays, Sundays and holidays (8 CFR 287.7(d)).
MAX_HOLD_HOURS = 48
REGISTERED_PREFIX = "file:"
# The columns of a detainer's hold (`_hold`).
HOLD_COLUMNS = ("hold_until", "hold_until_utc", "hold_citation")


# --- errors (api.py maps each to its HTTP status) ------------------------------------------


class DeskError(Exception):
    """Something the caller asked for cannot be done; the message says why."""


class NotInitialized(DeskError):
    pass


class InvalidInput(DeskError):
    """Bad input (422): `field` is the path of the offending field, `rule` the desk's rule it breaks."""

    def __init__(self, field: str, message: str, *, location: str = "body", rule: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.location = location
        self.rule = rule


class NotFound(DeskError):
    pass


class Conflict(DeskError):
    def __init__(self, message: str, *, existing_id: int | None = None) -> None:
        super().__init__(message)
        self.existing_id = existing_id


class Unauthorized(DeskError):
    pass


class Forbidden(DeskError):
    pass


class TooManyAttempts(DeskError):
    """Login attempts refused for a while (429); `retry_after` in seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# --- time ----------------------------------------------------------------------------------


class Clock(Protocol):
    def utc_now(self) -> dt.datetime:
        """Naive UTC, for the machine's bookkeeping (tokens, audit)."""
        ...

    def local_now(self) -> dt.datetime:
        """Naive local wall-clock time of the jail, for holds and custody."""
        ...


class SystemClock:
    """The machine's clock, read on the jail's wall clock: the server may run in another zone (or UTC)."""

    def __init__(self, zone: Callable[[], str | None] = lambda: None) -> None:
        self._zone = zone

    def utc_now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC).replace(tzinfo=None)

    def local_now(self) -> dt.datetime:
        zone = self._zone()
        if zone is None:  # a desk made before issue #12 keeps no zone: the machine's own is all there is
            return dt.datetime.now()
        return dt.datetime.now(ZoneInfo(zone)).replace(tzinfo=None)


@dataclass(frozen=True)
class Actor:
    """Who is acting: a logged-in user, or a local command (`cli:…`) or the server itself."""

    username: str
    role: str
    must_change_password: bool = False
    # The stored hash of the bearer token the user acts with (for logout), if any.
    token_digest: str | None = None

    def may(self, permission: Permission) -> bool:
        return security.allowed(self.role, permission)


SYSTEM = Actor("system", Role.SUPERVISOR.value)
# The actor of audit entries about someone not (yet) logged in: failed and refused logins.
ANONYMOUS = Actor("anonymous", "none")


def cli_actor(name: str) -> Actor:
    return Actor(f"cli:{name}", Role.SUPERVISOR.value)


def _in_calendar(value: dt.datetime, field: str) -> dt.datetime:
    # The hold clock knows the federal holidays of these years only.
    if value.year not in holdclock.CALENDAR_YEARS:
        first, last = holdclock.CALENDAR_YEARS.start, holdclock.CALENDAR_YEARS.stop - 1
        raise InvalidInput(field, f"must fall in the years {first}–{last}, not {value.year}")
    return value


def _wall_clock(value: dt.datetime, field: str, zone: str | None) -> dt.datetime:
    """A time of custody as the jail's wall clock in its zone: a time with a UTC offset is converted to
    the zone; one without is read in it as it is."""
    _in_calendar(value, field)  # first: a conversion from far outside the calendar could overflow
    if value.tzinfo is None:
        return value
    if zone is None:
        raise InvalidInput(
            field, "this desk has no time zone (made before issue #12): give the jail's local time, no UTC offset"
        )
    return _in_calendar(value.astimezone(ZoneInfo(zone)).replace(tzinfo=None), field)


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return dict(value)
    return str(value)


# canonical_json(_jsonable(value)) in one pass: the encoder calls _json_default only for what JSON has no
# spelling of (a datetime, a mapping that is not a dict; str() for the rest, as canonical_json does).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def _json_text(value: Any) -> str:
    """The canonical JSON text of a value holding datetimes (ISO, with a T), as canonical_json spells it."""
    return _CANONICAL.encode(value)


# Values _jsonable gives back as they are, found by their exact type before any isinstance: an entry's
# details are mostly these, and isinstance against the Mapping ABC costs a microsecond each.
_JSON_SCALARS = frozenset({str, int, float, bool, type(None)})


def _jsonable(value: Any) -> Any:
    if type(value) in _JSON_SCALARS:
        return value
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


def _naive_utc(moment: dt.datetime | None) -> dt.datetime | None:
    return None if moment is None else moment.astimezone(dt.UTC).replace(tzinfo=None)


def _hold(layers: Sequence[Policy], record: Mapping[str, Any], decision: str) -> dict[str, Any]:
    """The hold of a detainer whose decision in force is `decision`, from its release eligibility
    (`record`, normalized, with the desk's zone): after a review or a release time recorded later.

    The engine's own deadlines — those of the evaluator that decided the detainer at intake
    (`law.per_case.hold_if`, which the compiled evaluator's `holds` matches case by case): the earlier
    of a layer's hold and the form's, none for a notice-only form, in the zone's real hours — one per
    layer were the jail to honor, combined as `law.layers` combines layers: the earliest deadline wins."""
    hold: dict[str, Any] = dict.fromkeys(HOLD_COLUMNS)
    if decision != "honor" or record["release_eligible_at"] is None:
        return hold
    rows = [
        {
            "case_id": record["case_id"],
            "policy_id": layer.id,
            "decision": "honor",
            "rule": "review",
            "citation": "",
            "explanation": "",
            **hold_if(layer, record, "honor"),
        }
        for layer in layers
    ]
    earliest = combine_case(layers, rows)
    hold.update(
        hold_until=earliest["hold_until"],
        hold_until_utc=_naive_utc(earliest["hold_until_utc"]),
        hold_citation=earliest["hold_citation"],
    )
    return hold


# The outcomes of each question of each policy in use (`law.outcomes.question_outcomes`: its decisions,
# rules, citations and explanation sentences), made once rather than for every intake. Keyed by the
# objects' ids, with the policy kept in the value so that an id is never reused while it is here.
_OUTCOMES: dict[tuple[int, int], tuple[Policy, list[Outcome]]] = {}
_OUTCOMES_LOCK = threading.Lock()


def _outcomes(policy: Policy, question: Any) -> list[Outcome]:
    cached = _OUTCOMES.get((id(policy), id(question)))
    if cached is None:
        cached = (policy, question_outcomes(policy, question))
        with _OUTCOMES_LOCK:
            if len(_OUTCOMES) >= 10_000:
                _OUTCOMES.clear()
            _OUTCOMES[(id(policy), id(question))] = cached
    return cached[1]


def decide(layers: Sequence[Policy], record: dict[str, Any]) -> dict[str, Any]:
    """`law.per_case.evaluate_layers(layers, record)`, the same answer (tests/desk check it on every
    detainer policy of the library), with each question's outcomes made once per policy rather than
    once per intake: they were a third of an intake's own CPU time."""
    check_layerable(layers)
    return combine_case(layers, [_decide_one(policy, record) for policy in layers])


def _decide_one(policy: Policy, case: dict[str, Any]) -> dict[str, Any]:
    """`law.per_case.evaluate_case` of a detainer policy (other kinds: that function itself)."""
    if policy.kind != "detainer":
        return evaluate_case(policy, case)
    result: dict[str, Any] = {"case_id": case["case_id"], "policy_id": policy.id}
    first = None
    for question in policy.questions:
        outcome = _outcomes(policy, question)[outcome_index(question, case)]
        first = first or outcome
        result.update(decision=outcome.decision, rule=outcome.rule, citation=outcome.citation)
    assert first is not None
    result["explanation"] = first.explanation
    result.update(hold_if(policy, case, result["decision"]))
    return result


def custody_deadline(detainer: Mapping[str, Any]) -> dt.datetime | None:
    """The latest moment the person may be in the jail's custody on this detainer, once release
    eligibility is known: the hold deadline of an honored detainer, else release eligibility
    itself (a declined or still undecided detainer authorizes no hold at all)."""
    if detainer["release_eligible_at"] is None:
        return None
    if detainer["decision"] == "honor" and detainer["hold_until"] is not None:
        return detainer["hold_until"]
    return detainer["release_eligible_at"]


def _check_detainer_policy(policy: Policy, name: str) -> Policy:
    if policy.kind != "detainer":
        raise InvalidInput("policy", f"{name} is a {policy.kind} policy; the desk needs a detainer policy")
    if policy.hold is not None and policy.hold.hours > MAX_HOLD_HOURS:
        raise InvalidInput(
            "policy",
            f"{name} holds for {policy.hold.hours} hours; a detainer hold may last at most {MAX_HOLD_HOURS} hours "
            "(8 CFR 287.7(d))",
        )
    return policy


def _load_library_policy(policy_id: str) -> Policy:
    """A policy of the shipped library, by id — never a path (files go through `add-policy`)."""
    if policy_id not in set(policy_ids()):
        raise InvalidInput(
            "policy",
            f"unknown policy {policy_id!r}: give a policy id of the library (`securecomm policies`) or one "
            f"registered with `securecomm desk add-policy` ({REGISTERED_PREFIX}NAME)",
        )
    try:
        policy = load_policy(policy_id)
    except (UnknownPolicyError, PolicyFileError) as error:
        raise InvalidInput("policy", str(error)) from None
    return _check_detainer_policy(policy, policy_id)


def _parse_policy_text(text: str, policy_id: str, display: str) -> Policy:
    with tempfile.TemporaryDirectory(prefix="desk-policy-") as directory:
        path = Path(directory) / "policy.yaml"
        path.write_text(text, encoding="utf-8")
        return parse_policy(load_yaml(path, display), policy_id, display)


def _place_zone(place: str, time_zone: str | None) -> str:
    """The zone of the desk's clock: the one its place keeps, or the one given among the place's zones."""
    try:
        zones = time_zones([place])
    except ValueError as error:
        raise InvalidInput("place", str(error)) from None
    if time_zone is None:
        if len(zones) != 1:
            raise InvalidInput(
                "time_zone",
                f"{place} keeps {len(zones)} time zones: give the jail's county (place) or its zone (time_zone)",
            )
        return next(iter(zones))
    if time_zone not in zones:
        raise InvalidInput("time_zone", f"{time_zone} is not a zone of {place} ({', '.join(sorted(zones))})")
    return time_zone


def _record(detainer: Mapping[str, Any], release_eligible_at: dt.datetime | None) -> dict[str, Any]:
    """A detainer's case facts as normalized at intake, with release eligibility as it now stands."""
    (record,) = normalize_records([(f"detainer {detainer['id']}", json.loads(detainer["facts"]))])
    record["release_eligible_at"] = release_eligible_at
    return record


def _request_hash(request: Mapping[str, Any]) -> str:
    """What an Idempotency-Key remembers of an intake's body."""
    return hashlib.sha256(_json_text(request).encode("utf-8")).hexdigest()


def _without_offset(value: Any) -> bool:
    """A time given without a UTC offset: read in the jurisdiction's zone (the answer says so)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return isinstance(value, dt.datetime) and value.tzinfo is None


# --- views (plain data handed to the API and the CLI) --------------------------------------


def detainer_summary(detainer: Mapping[str, Any], now: dt.datetime) -> dict[str, Any]:
    """A detainer row (a mapping of its columns) as the API shows it, without facts or events."""
    deadline = custody_deadline(detainer)
    review = None
    if detainer["reviewed_by"] is not None:
        review = {
            "decision": detainer["decision"],
            "reason": detainer["review_reason"],
            "reviewed_by": detainer["reviewed_by"],
            "reviewed_at_utc": detainer["reviewed_utc"],
        }
    return {
        "id": detainer["id"],
        "booking_ref": detainer["booking_ref"],
        "case_id": detainer["case_id"],
        "issuing_office": detainer["issuing_office"],
        "received_at": detainer["received_at"],
        "detainer_form": detainer["detainer_form"],
        "policy_id": detainer["policy_id"],
        "decision": detainer["decision"],
        "automatic_decision": detainer["auto_decision"],
        "rule": detainer["rule"],
        "citation": detainer["citation"],
        "explanation": detainer["explanation"],
        "review": review,
        "decided_by": detainer["decided_by"],
        "layers": detainer["layers"],
        "time_zone": detainer["time_zone"],
        "release_eligible_at": detainer["release_eligible_at"],
        "hold_until": detainer["hold_until"],
        "hold_until_utc": detainer["hold_until_utc"],
        "hold_citation": detainer["hold_citation"],
        "custody": detainer["custody"],
        "custody_ended_at": detainer["custody_ended_at"],
        "overdue": detainer["custody"] == "in_custody" and deadline is not None and now > deadline,
        "overdue_flagged_at": detainer["overdue_flagged_at"],
    }


def _event_view(event: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": event["id"],
        "kind": event["kind"],
        "at": event["at"],
        "recorded_by": event["recorded_by"],
        "recorded_at_utc": event["recorded_utc"],
        "details": json.loads(event["details"]),
    }


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_utc: dt.datetime
    username: str
    role: str
    must_change_password: bool = False


@dataclass(frozen=True)
class _IntakeRequest:
    """An intake checked and normalized (`Desk._intake_request`), ready to be recorded."""

    actor: Actor
    booking_ref: str
    detainer_number: str
    issuing_office: str
    received_at: dt.datetime
    record: dict[str, Any]
    read_in_zone: list[str]
    idempotency_key: str | None
    # The hashes of the body an earlier answer under the same Idempotency-Key may have been stored with.
    same_request: tuple[str, ...]


@dataclass
class _Work:
    """One write transaction: its connection, an ORM session on it for the rare operations that
    use one (set-up, users), and the audit entries appended just before it commits."""

    connection: Connection
    entries: list[audit.PendingEntry]
    key: audit.AuditKey | None = None
    _session: Session | None = None
    # Inserts made on the DBAPI cursor just before the entries (audit.append_and_commit: on PostgreSQL in the same
    # round trip as the lock of the chain's head).
    writes: list[tuple[DriverInsert, Sequence[Mapping[str, Any]]]] = dataclasses.field(default_factory=list)

    @property
    def session(self) -> Session:
        if self._session is None:
            self._session = Session(bind=self.connection, expire_on_commit=False)
        return self._session

    def finish(self) -> None:
        if self._session is not None:
            self._session.flush()
            self._session.close()

    def write(self, statement: DriverInsert, rows: Sequence[Mapping[str, Any]]) -> None:
        """Rows to insert just before the audit entries (`writes`)."""
        self.writes.append((statement, rows))

    def write_now(self) -> None:
        """Make the inserts still to make now (before a statement that may read what they add)."""
        cursor = driver_cursor(self.connection)
        for statement, rows in self.writes:
            cursor.executemany(statement.sql, statement.rows(rows))
        self.writes.clear()

    def audit(
        self,
        actor: Actor,
        action: str,
        subject: str,
        details: Mapping[str, Any] | None = None,
        rows: list[tuple[str, Mapping[str, Any]]] = (),  # type: ignore[assignment]
        deleted: Sequence[str] = (),
    ) -> None:
        """An entry; `rows` are the (kind, full new row) pairs the action wrote, put in the chain
        as keyed digests (audit.row_digest); `deleted`, the labels of the rows it deleted (null)."""
        content = _jsonable(details or {})
        if rows or deleted:
            if self.key is None:
                raise audit.AuditKeyError("the desk cannot change records without the audit key (--audit-key)")
            content["rows"] = {label: audit.DELETED for label in deleted}
            content["rows"].update(
                {audit.row_label(kind, row): audit.row_digest(self.key, kind, row) for kind, row in rows}
            )
        self.entries.append(audit.PendingEntry(actor.username, action, subject, content))

    def orm_row(self, kind: str, instance: Any) -> tuple[str, dict[str, Any]]:
        """(kind, row) of an ORM object, flushed so that its id and defaults are there."""
        self.session.flush()
        table = audit.TRACKED[kind]
        return kind, {column.name: getattr(instance, column.key) for column in table.columns}


# Detainers and events are the hot path (hundreds of intakes a second): they are written with
# SQLAlchemy Core statements on these tables, which costs a fraction of the ORM's unit of work.
DETAINERS = Detainer.__table__
EVENTS = Event.__table__
TOKENS = Token.__table__
PERIODS = PolicyPeriod.__table__
# How long a checked token is trusted without looking at the database again: a revocation, a disabled
# account or a password change made by another server process (`serve --workers N`) reaches this one
# within this many seconds (the process that makes it forgets its tokens at once). At 1 s it costs one
# read per token and process a second, however busy the desk.
TOKEN_CACHE_SECONDS = 1.0
# Statements built once: building one costs more than running it on SQLite.
INSERT_EVENT = insert(EVENTS)
SELECT_DETAINER = select(DETAINERS).where(DETAINERS.c.id == bindparam("detainer_id"))
SELECT_DETAINER_FOR_UPDATE = SELECT_DETAINER.with_for_update()
SELECT_POLICY_IN_FORCE = (
    select(PERIODS.c.policy_id)
    .where(PERIODS.c.effective_from <= bindparam("day"))
    .order_by(PERIODS.c.effective_from.desc())
    .limit(1)
)
TOKEN_CACHE_SIZE = 10_000
IDEMPOTENCY = IdempotencyKey.__table__
SELECT_IDEMPOTENT = select(IDEMPOTENCY.c.request_hash, IDEMPOTENCY.c.detainer_id, IDEMPOTENCY.c.response).where(
    IDEMPOTENCY.c.username == bindparam("username"), IDEMPOTENCY.c.key == bindparam("key")
)
INSERT_IDEMPOTENT = insert(IDEMPOTENCY)


@dataclass(frozen=True)
class BatchStatements:
    """The batch path of intake (Desk._intake_together) on the DBAPI cursor (db.DriverInsert): the policy in
    force on a day, the twins already recorded, new ids, the rows."""

    dialect: Dialect
    policy_in_force: str
    day_processors: tuple[Any, ...]
    new_ids: str
    insert_detainers: DriverInsert
    insert_events: DriverInsert

    @classmethod
    def of(cls, dialect: Dialect) -> BatchStatements:
        if dialect.name == "postgresql":
            new_ids = (
                "SELECT ARRAY(SELECT nextval(pg_get_serial_sequence('detainers', 'id')) FROM generate_series(1, ?)), "
                "ARRAY(SELECT nextval(pg_get_serial_sequence('events', 'id')) FROM generate_series(1, ?))"
            )
        else:
            new_ids = "SELECT (SELECT coalesce(max(id), 0) FROM detainers), (SELECT coalesce(max(id), 0) FROM events)"
        return cls(
            dialect,
            driver_sql(
                dialect,
                f"SELECT policy_id FROM {PERIODS.name} WHERE effective_from <= ? ORDER BY effective_from DESC LIMIT 1",
            ),
            bind_processors(dialect, [PERIODS.c.effective_from]),
            driver_sql(dialect, new_ids),
            DriverInsert.of(DETAINERS, dialect),
            DriverInsert.of(EVENTS, dialect),
        )

    def day(self, day: dt.date) -> list[Any]:
        return driver_values(self.day_processors, (day,))

    def bookings(self, count: int) -> str:
        placeholders = ", ".join("?" for _ in range(count))
        return driver_sql(
            self.dialect,
            f"SELECT id, booking_ref, detainer_number FROM {DETAINERS.name} WHERE booking_ref IN ({placeholders})",
        )

    def id_counts(self, detainers: int, events: int) -> tuple[int, ...]:
        return (detainers, events) if self.dialect.name == "postgresql" else ()

    def ids(self, found: Sequence[Any], detainers: int, events: int) -> tuple[list[int], list[int]]:
        """Ids for so many new detainers and events, ascending, from what `new_ids` found."""
        if self.dialect.name == "postgresql":
            return sorted(found[0]), sorted(found[1])
        return list(range(found[0] + 1, found[0] + 1 + detainers)), list(range(found[1] + 1, found[1] + 1 + events))


# A review's change, conditional on the detainer still awaiting one (built once: see INSERT_EVENT).
REVIEW_DETAINER = (
    update(DETAINERS)
    .where(DETAINERS.c.id == bindparam("detainer_id"), DETAINERS.c.decision == "review")
    .values(
        {
            name: bindparam(f"new_{name}")
            for name in ("decision", "review_reason", "reviewed_by", "reviewed_utc", *HOLD_COLUMNS)
        }
    )
)
SELECT_SAME_DETAINER = select(DETAINERS.c.id).where(
    DETAINERS.c.booking_ref == bindparam("booking_ref"), DETAINERS.c.detainer_number == bindparam("detainer_number")
)


def _insert_detainer(dialect: str) -> Any:
    """INSERT … ON CONFLICT (booking_ref, detainer_number) DO NOTHING RETURNING id, in the dialect's words."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    statement = dialect_insert(DETAINERS).on_conflict_do_nothing(index_elements=["booking_ref", "detainer_number"])
    return statement.returning(DETAINERS.c.id)


# --- the desk ------------------------------------------------------------------------------


class Desk:
    """The desk's operations over one database."""

    def __init__(
        self,
        database: Database,
        *,
        clock: Clock | None = None,
        token_lifetime: dt.timedelta = DEFAULT_TOKEN_LIFETIME,
        audit_key: audit.AuditKey | None = None,
    ) -> None:
        self.database = database
        self._insert_detainer = _insert_detainer(database.dialect)
        self._statements = BatchStatements.of(database.engine.dialect)
        self.clock = clock or SystemClock(self._clock_zone)
        self.token_lifetime = token_lifetime
        self.audit_key = audit_key
        # The desk's place and zone once read (they never change after `initialize`).
        self._place: tuple[str | None, str | None] | None = None
        self._policies: dict[str, Policy] = {}
        self._tokens: dict[str, tuple[Actor, dt.datetime, float]] = {}
        self._tokens_lock = threading.Lock()

    # -- helpers --

    @contextmanager
    def _transaction(self) -> Iterator[_Work]:
        """A write transaction whose audit entries are appended last, as it commits."""
        with self.database.write_connection() as connection:
            work = _Work(connection, [], self.audit_key)
            yield work
            work.finish()
            audit.append_and_commit(
                connection, work.entries, now_utc=self.clock.utc_now(), key=self.audit_key, writes=work.writes
            )

    def _event(
        self, work: _Work, detainer_id: int, actor: Actor, kind: str, at: dt.datetime, details: Mapping[str, Any]
    ) -> dict[str, Any]:
        row = self._event_row(detainer_id, actor, kind, at, details)
        row["id"] = work.connection.execute(INSERT_EVENT, row).inserted_primary_key[0]
        return row

    def _event_row(
        self, detainer_id: int, actor: Actor, kind: str, at: dt.datetime, details: Mapping[str, Any]
    ) -> dict[str, Any]:
        return {
            "detainer_id": detainer_id,
            "kind": kind,
            "at": at,
            "recorded_utc": self.clock.utc_now(),
            "recorded_by": actor.username,
            "details": _json_text(details),
        }

    def _policy(self, connection: Connection, policy_id: str) -> Policy:
        """A policy by the id a period or a detainer records: the library's, or a registered file's
        text as registered (its SHA-256 checked each time it is first loaded)."""
        policy = self._policies.get(policy_id)
        if policy is not None:
            return policy
        if policy_id.startswith(REGISTERED_PREFIX):
            row = connection.execute(
                select(RegisteredPolicy.__table__).where(RegisteredPolicy.__table__.c.policy_id == policy_id)
            ).first()
            if row is None:
                raise InvalidInput("policy", f"no registered policy {policy_id!r}")
            if hashlib.sha256(row.content.encode("utf-8")).hexdigest() != row.sha256:
                raise DeskError(f"the registered policy {policy_id} no longer matches its recorded SHA-256")
            policy = _parse_policy_text(row.content, policy_id, row.source_path)
        else:
            policy = load_policy(policy_id)
        self._policies[policy_id] = policy
        return policy

    @staticmethod
    def _require(actor: Actor, permission: Permission) -> None:
        if not actor.may(permission):
            raise Forbidden(
                f"the role '{actor.role}' may not {permission.value}; roles that may: "
                + ", ".join(security.roles_with(permission))
            )

    @staticmethod
    def _detainer(work: _Work, detainer_id: int, *, lock: bool = False) -> dict[str, Any]:
        query = SELECT_DETAINER_FOR_UPDATE if lock else SELECT_DETAINER
        row = work.connection.execute(query, {"detainer_id": detainer_id}).mappings().first()
        if row is None:
            raise NotFound(f"no detainer {detainer_id}")
        return dict(row)

    def is_initialized(self) -> bool:
        with self.database.read() as session:
            return session.get(DeskSettings, 1) is not None

    def place_and_zone(self) -> tuple[str | None, str | None]:
        """The desk's place and the IANA zone of its clock (None on a desk made before issue #12);
        NotInitialized before `initialize`. Kept once known: a zone, once set, never changes. A desk
        without one is read again each time, so that `set_place` reaches a running server at once."""
        if self._place is not None:
            return self._place
        with self.database.read() as session:
            settings = self._settings(session)
            found = (settings.place, settings.time_zone)
        if found[1] is not None:
            self._place = found
        return found

    def set_place(self, place: str, time_zone: str | None = None, actor: Actor = SYSTEM) -> tuple[str, str]:
        """Give a desk made before migration 0003 (issue #12) its place and the zone of its clock, once.

        Its earlier local times stay as they were recorded (wall-clock times of the jail); from now on
        times with a UTC offset are converted to this zone, hold deadlines are counted in it and have
        their UTC instant. A desk that has a zone keeps it (409): changing it would change what the local
        times already recorded mean."""
        place = place.strip().upper()
        zone = _place_zone(place, time_zone)
        with self._transaction() as work:
            settings = work.session.execute(select(DeskSettings).where(DeskSettings.id == 1).with_for_update()).scalar()
            if settings is None:
                raise NotInitialized("this desk is not initialized: run `securecomm desk init` first")
            if settings.time_zone is not None:
                raise Conflict(
                    f"this desk already keeps its times in {settings.time_zone} ({settings.place}): a desk's zone "
                    "is set once"
                )
            settings.place, settings.time_zone = place, zone
            work.audit(
                actor,
                "desk.set_place",
                "desk",
                {"place": place, "time_zone": zone},
                [work.orm_row("desk", settings)],
            )
        self._place = (place, zone)
        return place, zone

    def _clock_zone(self) -> str | None:
        """The zone the desk's wall clock reads in; none before `initialize` or on a desk without one."""
        try:
            return self.place_and_zone()[1]
        except NotInitialized:
            return None

    def _layers(self, connection: Connection, policy_id: str, received: dt.date) -> list[Policy]:
        """The layers that decide a detainer received on a day: the desk's policy in force and,
        broadest first, every policy it narrows in force that day (`law.loader.layers_of`)."""
        return layers_of(self._policy(connection, policy_id), received)

    # -- set-up --

    def initialize(
        self,
        *,
        jurisdiction: str,
        policy_id: str,
        admin_username: str,
        admin_password: str,
        effective_from: dt.date | None = None,
        place: str | None = None,
        time_zone: str | None = None,
        actor: Actor = SYSTEM,
    ) -> None:
        """Create the desk: its jurisdiction, its place and time zone, first policy and a supervisor.

        `place` (a county FIPS or a state code) defaults to the policy's own places; `time_zone` to the
        one zone of the place's counties (needed when they keep several)."""
        if not jurisdiction.strip():
            raise InvalidInput("jurisdiction", "must be non-empty text")
        policy = _load_library_policy(policy_id)
        start = effective_from or policy.effective
        if start is None:
            raise InvalidInput("from", f"{policy_id} has no effective date: give the date it applies from")
        place = (place or ",".join(policy.jurisdiction.places)).strip().upper()
        time_zone = _place_zone(place, time_zone)
        self._check_new_user(admin_username, admin_password, Role.SUPERVISOR.value)
        password_hash = security.hash_password(admin_password)
        with self._transaction() as work:
            if work.session.get(DeskSettings, 1) is not None:
                raise Conflict("this desk is already initialized")
            settings = DeskSettings(
                id=1,
                jurisdiction=jurisdiction.strip(),
                created_utc=self.clock.utc_now(),
                place=place,
                time_zone=time_zone,
            )
            work.session.add(settings)
            work.audit(
                actor,
                "desk.init",
                "desk",
                {"jurisdiction": jurisdiction.strip(), "place": place, "time_zone": time_zone},
                [work.orm_row("desk", settings)],
            )
            self._add_period(work, policy, start, actor)
            self._add_user(work, admin_username, password_hash, Role.SUPERVISOR.value, actor)

    def _add_period(self, work: _Work, policy: Policy, start: dt.date, actor: Actor) -> None:
        if work.session.execute(select(PolicyPeriod).where(PolicyPeriod.effective_from == start)).scalar() is not None:
            raise Conflict(f"a policy already starts on {start.isoformat()}")
        period = PolicyPeriod(
            policy_id=policy.id, effective_from=start, recorded_utc=self.clock.utc_now(), recorded_by=actor.username
        )
        work.session.add(period)
        work.audit(
            actor,
            "policy.set",
            "desk",
            {"policy_id": policy.id, "from": start.isoformat()},
            [work.orm_row("policy_period", period)],
        )

    def set_policy(self, policy_id: str, effective_from: dt.date, actor: Actor = SYSTEM) -> None:
        """Add a policy to the desk's dated list: detainers received from that day on are decided by it.

        Only a policy id of the library, or a file registered with `add_policy` (`file:NAME`)."""
        with self._transaction() as work:
            self._settings(work.session)
            if policy_id.startswith(REGISTERED_PREFIX):
                policy = _check_detainer_policy(self._policy(work.connection, policy_id), policy_id)
            else:
                policy = _load_library_policy(policy_id)
            self._add_period(work, policy, effective_from, actor)

    def add_policy(self, path: Path, name: str, actor: Actor = SYSTEM) -> dict[str, Any]:
        """Register a policy file: validated like the library's, its text and SHA-256 recorded, so that
        `set_policy("file:NAME")` may use it and decisions follow exactly the text registered."""
        if (problem := security.check_username(name)) is not None or name.lower() in security.RESERVED_USERNAMES:
            raise InvalidInput("name", f"a policy name {problem or 'must not be reserved'}")
        try:
            content = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise InvalidInput("file", f"cannot read {path}: {error}") from None
        policy_id = f"{REGISTERED_PREFIX}{name}"
        try:
            policy = _parse_policy_text(content, policy_id, path.name)
        except PolicyFileError as error:
            raise InvalidInput("file", str(error)) from None
        _check_detainer_policy(policy, str(path))
        digest = hashlib.sha256(content.encode("utf-8")).hexdigest()
        with self._transaction() as work:
            self._settings(work.session)
            if work.session.execute(
                select(RegisteredPolicy.id).where(RegisteredPolicy.policy_id == policy_id)
            ).scalar():
                raise Conflict(f"a policy named {policy_id!r} is already registered")
            registered = RegisteredPolicy(
                policy_id=policy_id,
                sha256=digest,
                source_path=str(path),
                content=content,
                recorded_utc=self.clock.utc_now(),
                recorded_by=actor.username,
            )
            work.session.add(registered)
            work.audit(
                actor,
                "policy.register",
                f"policy:{policy_id}",
                {"sha256": digest, "file": str(path), "title": policy.title},
                [work.orm_row("policy_file", registered)],
            )
        return {"policy_id": policy_id, "sha256": digest, "title": policy.title}

    @staticmethod
    def _settings(session: Session) -> DeskSettings:
        settings = session.get(DeskSettings, 1)
        if settings is None:
            raise NotInitialized("this desk is not initialized: run `securecomm desk init` first")
        return settings

    def describe(self) -> dict[str, Any]:
        """The jurisdiction, its place and time zone, and the dated list of policies, each with the
        layers it decides with on its first day (no personal data)."""
        with self.database.read() as session:
            settings = self._settings(session)
            periods = session.execute(select(PolicyPeriod).order_by(PolicyPeriod.effective_from)).scalars().all()
            rows = []
            for period in periods:
                policy = self._policy(session.connection(), period.policy_id)
                rows.append(
                    {
                        "policy_id": period.policy_id,
                        "title": policy.title,
                        "effective_from": period.effective_from,
                        "hold": policy.hold.describe() if policy.hold else None,
                        "notifies_ice_of": sorted(policy.notice.decisions) if policy.notice else [],
                        "layers": [layer_label(layer) for layer in layers_of(policy, period.effective_from)],
                    }
                )
            return {
                "jurisdiction": settings.jurisdiction,
                "place": settings.place,
                "time_zone": settings.time_zone,
                "policies": rows,
            }

    def policy_in_force_view(self, day: dt.date | None = None) -> dict[str, Any]:
        """The policy in force on a day (default: today, local) as the desk decides under it: every
        layer in force that day, broadest first, each with its hold, notice duty and its text clause by
        clause (`law.explain.clause_table`: quoted or paraphrased, what the code does with each)."""
        day = day or self.clock.local_now().date()
        with self.database.read() as session:
            self._settings(session)
            policy = self.policy_in_force(session.connection(), day)
        if policy is None:
            raise InvalidInput("on", f"no policy of this desk is in force on {day.isoformat()}", location="query")
        layers = layers_of(policy, day)
        return {
            "on": day,
            "policy_id": policy.id,
            "combination": (
                "Every layer decides; the stricter outcome governs: decline beats review beats honor, and when "
                "every layer honors, the earliest hold deadline wins (law.layers)."
            ),
            "layers": [
                {
                    "policy_id": layer.id,
                    "title": layer.title,
                    "level": layer.layer.level,
                    "effective": layer.effective,
                    "status": layer.status,
                    "hold": layer.hold.describe() if layer.hold else None,
                    "hold_citation": layer.hold.citation if layer.hold else None,
                    "notifies_ice_of": sorted(layer.notice.decisions) if layer.notice else [],
                    "clauses": [
                        {
                            "citation": row.citation,
                            "text": row.text,
                            "quoted": row.quoted,
                            "status": row.status,
                            "status_phrase": row.status_phrase,
                            "note": row.note,
                            "applied_by": list(row.applied_by),
                        }
                        for row in clause_table(layer)
                    ],
                }
                for layer in layers
            ],
        }

    def policy_in_force(self, connection: Connection, day: dt.date) -> Policy | None:
        policy_id = connection.execute(SELECT_POLICY_IN_FORCE, {"day": day}).scalar()
        return None if policy_id is None else self._policy(connection, policy_id)

    # -- users and logins --

    @staticmethod
    def _check_new_user(username: str, password: str, role: str) -> None:
        if (problem := security.check_username(username)) is not None:
            raise InvalidInput("username", problem)
        if role not in {r.value for r in Role}:
            raise InvalidInput("role", f"unknown role {role!r}; expected one of: {', '.join(r.value for r in Role)}")
        if (problem := security.check_password(password, username)) is not None:
            raise InvalidInput("password", problem)

    def _add_user(self, work: _Work, username: str, password_hash: str, role: str, actor: Actor) -> User:
        if work.session.execute(select(User.id).where(User.username == username)).scalar() is not None:
            raise Conflict(f"the user {username!r} already exists")
        now = self.clock.utc_now()
        user = User(
            username=username,
            password_hash=password_hash,
            role=role,
            failed_logins=0,
            locked_until_utc=None,
            disabled=False,
            must_change_password=False,
            password_changed_utc=now,
            created_utc=now,
        )
        work.session.add(user)
        work.audit(actor, "user.create", f"user:{username}", {"role": role}, [work.orm_row("user", user)])
        return user

    def add_user(self, username: str, password: str, role: str, actor: Actor = SYSTEM) -> dict[str, Any]:
        self._require(actor, Permission.MANAGE_USERS)
        self._check_new_user(username, password, role)
        password_hash = security.hash_password(password)  # slow on purpose: outside the transaction
        try:
            with self._transaction() as work:
                self._settings(work.session)
                user = self._add_user(work, username, password_hash, role, actor)
                view = self._user_view(user, self.clock.utc_now())
        except IntegrityError:
            raise Conflict(f"the user {username!r} already exists") from None
        return view

    @staticmethod
    def _user_view(user: User, now: dt.datetime) -> dict[str, Any]:
        locked = user.locked_until_utc is not None and user.locked_until_utc > now
        return {
            "username": user.username,
            "role": user.role,
            "locked": locked,
            "locked_until_utc": user.locked_until_utc if locked else None,
            "disabled": user.disabled,
            "must_change_password": user.must_change_password,
            "failed_logins": user.failed_logins,
            "created_at_utc": user.created_utc,
        }

    def list_users(self, actor: Actor) -> list[dict[str, Any]]:
        self._require(actor, Permission.MANAGE_USERS)
        now = self.clock.utc_now()
        with self.database.read() as session:
            return [self._user_view(user, now) for user in session.execute(select(User).order_by(User.id)).scalars()]

    def _change_user(
        self, username: str, actor: Actor, action: str, change: Any, details: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Change a user (`change(user)`), revoke all their tokens, audit it with the new row."""
        self._require(actor, Permission.MANAGE_USERS)
        with self._transaction() as work:
            user = work.session.execute(select(User).where(User.username == username).with_for_update()).scalar()
            if user is None:
                raise NotFound(f"no user {username!r}")
            change(user)
            revoked = self._revoke_all(work, user.id)
            work.audit(
                actor,
                action,
                f"user:{username}",
                {**(details or {}), "tokens_revoked": len(revoked)},
                [work.orm_row("user", user)],
                revoked,
            )
            view = self._user_view(user, self.clock.utc_now())
        self._forget_tokens()
        return view

    @staticmethod
    def _delete_tokens(work: _Work, *conditions: Any) -> list[str]:
        """Delete tokens; the labels of the rows deleted, for the chain (audit.DELETED)."""
        work.session.flush()
        deleted = work.connection.execute(delete(TOKENS).where(*conditions).returning(TOKENS.c.token_hash))
        return [f"token:{token_hash}" for token_hash in deleted.scalars()]

    def _revoke_all(self, work: _Work, user_id: int) -> list[str]:
        return self._delete_tokens(work, TOKENS.c.user_id == user_id)

    def unlock_user(self, username: str, actor: Actor = SYSTEM) -> dict[str, Any]:
        """Lift a temporary lock now; the user's earlier tokens are revoked (they log in afresh)."""

        def unlock(user: User) -> None:
            user.locked_until_utc = None
            user.failed_logins = 0

        return self._change_user(username, actor, "user.unlock", unlock)

    def disable_user(self, username: str, actor: Actor = SYSTEM) -> dict[str, Any]:
        """No more logins for the user, and their tokens are refused (403) until `enable_user`."""
        if username == actor.username:
            raise Conflict("a supervisor cannot disable their own account")

        def disable(user: User) -> None:
            user.disabled = True

        return self._change_user(username, actor, "user.disable", disable)

    def enable_user(self, username: str, actor: Actor = SYSTEM) -> dict[str, Any]:
        def enable(user: User) -> None:
            user.disabled = False
            user.failed_logins = 0
            user.locked_until_utc = None

        return self._change_user(username, actor, "user.enable", enable)

    def reset_password(self, username: str, new_password: str, actor: Actor = SYSTEM) -> dict[str, Any]:
        """A supervisor sets a temporary password; the user must change it at the next login."""
        if (problem := security.check_password(new_password, username)) is not None:
            raise InvalidInput("password", problem)
        password_hash = security.hash_password(new_password)
        now = self.clock.utc_now()

        def reset(user: User) -> None:
            user.password_hash = password_hash
            user.must_change_password = True
            user.password_changed_utc = now
            user.failed_logins = 0
            user.locked_until_utc = None

        return self._change_user(username, actor, "user.password_reset", reset)

    def change_password(self, actor: Actor, current: str, new: str, client: str) -> IssuedToken:
        """A user changes their own password: every earlier token is revoked and a new one issued."""
        if (problem := security.check_password(new, actor.username)) is not None:
            raise InvalidInput("new_password", problem)
        if new == current:
            raise InvalidInput("new_password", "must differ from the current password")
        with self.database.read() as session:
            user = session.execute(select(User).where(User.username == actor.username)).scalar_one()
        if not security.verify_password(user.password_hash, current):
            with self._transaction() as work:
                work.audit(actor, "auth.password_change_failed", f"user:{actor.username}", {"client": client})
            raise Forbidden("the current password is wrong")
        password_hash = security.hash_password(new)
        now = self.clock.utc_now()
        with self._transaction() as work:
            current_user = work.session.execute(select(User).where(User.id == user.id).with_for_update()).scalar_one()
            current_user.password_hash = password_hash
            current_user.must_change_password = False
            current_user.password_changed_utc = now
            revoked = self._revoke_all(work, user.id)
            issued, token_rows, expired = self._issue(work, current_user, client, now)
            work.audit(
                actor,
                "auth.password_change",
                f"user:{actor.username}",
                {"client": client, "tokens_revoked": len(revoked)},
                [work.orm_row("user", current_user), *token_rows],
                [*revoked, *expired],
            )
        self._forget_tokens()
        return issued

    def _issue(
        self, work: _Work, user: User, client: str, now: dt.datetime
    ) -> tuple[IssuedToken, list[tuple[str, dict[str, Any]]], list[str]]:
        """A new token for the user (and their expired ones deleted): the token, its row and the labels of
        the rows deleted, for the entry that records the login."""
        token, digest = security.new_token()
        expired = self._delete_tokens(work, TOKENS.c.user_id == user.id, TOKENS.c.expires_utc <= now)
        row = {
            "token_hash": digest,
            "user_id": user.id,
            "issued_utc": now,
            "expires_utc": now + self.token_lifetime,
            "client_addr": client[:64],
        }
        work.connection.execute(insert(TOKENS), row)
        issued = IssuedToken(token, row["expires_utc"], user.username, user.role, user.must_change_password)
        return issued, [("token", row)], expired

    def login(self, username: str, password: str, client: str = "local") -> IssuedToken:
        """A bearer token for a correct password.

        `MAX_FAILED_LOGINS` failures in a row lock the account for `LOCK_DURATION`; the lock ends by
        itself, and attempts during it are refused without checking the password. A lock never
        touches tokens already issued: whoever holds one proved the password before the attack.
        Every attempt is audited with the username tried and the client's address."""
        tried = username[:64]
        with self.database.read() as session:
            user = session.execute(select(User).where(User.username == username)).scalar()
        now = self.clock.utc_now()
        if user is None:
            security.spend_verification_time(password)
            with self._transaction() as work:
                work.audit(ANONYMOUS, "auth.failed", "user:unknown", {"username_tried": tried, "client": client})
            raise Unauthorized("wrong username or password")
        subject = f"user:{username}"
        if user.disabled:
            with self._transaction() as work:
                work.audit(
                    ANONYMOUS,
                    "auth.refused",
                    subject,
                    {"username_tried": tried, "client": client, "reason": "disabled"},
                )
            raise Forbidden("the account is disabled; a supervisor can enable it")
        if user.locked_until_utc is not None and user.locked_until_utc > now:
            with self._transaction() as work:
                work.audit(
                    ANONYMOUS, "auth.refused", subject, {"username_tried": tried, "client": client, "reason": "locked"}
                )
            raise Forbidden(self._locked_message(user.locked_until_utc))
        # argon2 takes ~0.1 s and must not hold the write lock; the counters are updated atomically after.
        correct = security.verify_password(user.password_hash, password)
        issued = None
        with self._transaction() as work:
            current = work.session.execute(select(User).where(User.id == user.id).with_for_update()).scalar_one()
            if current.locked_until_utc is not None and current.locked_until_utc <= now:
                current.locked_until_utc = None  # the lock has run out: start counting afresh
                current.failed_logins = 0
            locked = current.locked_until_utc is not None or current.disabled
            if not correct and not locked:
                current.failed_logins += 1
                details: dict[str, Any] = {
                    "username_tried": tried,
                    "client": client,
                    "failed_logins": current.failed_logins,
                }
                if current.failed_logins >= MAX_FAILED_LOGINS:
                    current.locked_until_utc = now + LOCK_DURATION
                    details["locked_until_utc"] = current.locked_until_utc
                work.audit(ANONYMOUS, "auth.failed", subject, details, [work.orm_row("user", current)])
            elif correct and not locked:
                changed = current.failed_logins != 0
                current.failed_logins = 0
                if security.needs_rehash(current.password_hash):
                    current.password_hash = security.hash_password(password)
                    changed = True
                issued, token_rows, expired = self._issue(work, current, client, now)
                rows = [work.orm_row("user", current)] if changed else []
                work.audit(
                    Actor(username, current.role), "auth.login", subject, {"client": client}, rows + token_rows, expired
                )
            else:  # a concurrent attempt locked it, or a supervisor disabled it, meanwhile
                work.audit(
                    ANONYMOUS, "auth.refused", subject, {"username_tried": tried, "client": client, "reason": "locked"}
                )
            locked_until = current.locked_until_utc
        if issued is not None:
            return issued
        if locked_until is not None and locked_until > now:
            raise Forbidden(self._locked_message(locked_until))
        raise Unauthorized("wrong username or password")

    @staticmethod
    def _locked_message(until: dt.datetime) -> str:
        return (
            f"the account is locked after {MAX_FAILED_LOGINS} failed logins until {until:%Y-%m-%d %H:%M} UTC "
            "(a supervisor can unlock it sooner); tokens already issued still work"
        )

    def record_throttled(self, rejected: Mapping[tuple[str, str], int]) -> None:
        """Audit the login attempts refused by the throttle since the last call, in one entry."""
        if not rejected:
            return
        attempts = [
            {"username_tried": username, "client": client, "refused": count}
            for (username, client), count in sorted(rejected.items())
        ]
        with self._transaction() as work:
            work.audit(ANONYMOUS, "auth.throttled", "auth", {"attempts": attempts})

    def logout(self, actor: Actor) -> None:
        """Revoke the token the actor is using."""
        with self._transaction() as work:
            revoked = []
            if actor.token_digest is not None:
                revoked = self._delete_tokens(work, TOKENS.c.token_hash == actor.token_digest)
            work.audit(actor, "auth.logout", f"user:{actor.username}", deleted=revoked)
        self._forget_tokens()

    def sessions(self, actor: Actor, username: str | None = None) -> list[dict[str, Any]]:
        """Active tokens: the actor's own, or (a supervisor) anyone's, or one user's."""
        everyone = actor.may(Permission.MANAGE_USERS)
        now = self.clock.utc_now()
        query = (
            select(Token.token_hash, Token.issued_utc, Token.expires_utc, Token.client_addr, User.username)
            .join(User, User.id == Token.user_id)
            .where(Token.expires_utc > now)
            .order_by(Token.issued_utc)
        )
        if not everyone:
            query = query.where(User.username == actor.username)
        elif username is not None:
            query = query.where(User.username == username)
        with self.database.read() as session:
            rows = session.execute(query).all()
        return [
            {
                "id": row.token_hash[:16],
                "username": row.username,
                "issued_at_utc": row.issued_utc,
                "expires_at_utc": row.expires_utc,
                "client": row.client_addr,
                "current": row.token_hash == actor.token_digest,
            }
            for row in rows
        ]

    def revoke_session(self, actor: Actor, session_id: str) -> None:
        """Revoke one token by its id (the first 16 hex digits of its hash): one's own, or any (a supervisor)."""
        if len(session_id) != 16 or any(c not in "0123456789abcdef" for c in session_id):
            raise NotFound(f"no session {session_id!r}")
        with self._transaction() as work:
            row = work.session.execute(
                select(Token.token_hash, User.username)
                .join(User, User.id == Token.user_id)
                .where(Token.token_hash.startswith(session_id, autoescape=True))
            ).first()
            if row is None or (row.username != actor.username and not actor.may(Permission.MANAGE_USERS)):
                raise NotFound(f"no session {session_id!r}")
            revoked = self._delete_tokens(work, TOKENS.c.token_hash == row.token_hash)
            work.audit(actor, "auth.revoke", f"user:{row.username}", {"session": session_id}, deleted=revoked)
        self._forget_tokens()

    def _forget_tokens(self) -> None:
        with self._tokens_lock:
            self._tokens.clear()

    def recently_authenticated(self, token: str) -> Actor | None:
        """The actor of a token checked in the last few seconds, without touching the database
        (None: ask `authenticate`); an expired token → Unauthorized."""
        cached = self._tokens.get(security.token_hash(token))
        if cached is None or time.monotonic() - cached[2] >= TOKEN_CACHE_SECONDS:
            return None
        if cached[1] <= self.clock.utc_now():
            raise Unauthorized("the token has expired: log in again")
        return cached[0]

    def authenticate(self, token: str) -> Actor:
        """The actor a bearer token stands for; expired or unknown → Unauthorized, disabled → Forbidden."""
        digest = security.token_hash(token)
        now = self.clock.utc_now()
        cached = self._tokens.get(digest)
        if cached is not None and time.monotonic() - cached[2] < TOKEN_CACHE_SECONDS:
            actor, expires, _ = cached
        else:
            with self.database.read() as session:
                row = session.execute(
                    select(Token.expires_utc, User.username, User.role, User.disabled, User.must_change_password)
                    .join(User, User.id == Token.user_id)
                    .where(Token.token_hash == digest)
                ).first()
            if row is None:
                raise Unauthorized("unknown or revoked token: log in at /api/v1/auth/token")
            if row.disabled:
                raise Forbidden("the account is disabled")
            actor = Actor(row.username, row.role, row.must_change_password, digest)
            expires = row.expires_utc
            with self._tokens_lock:
                if len(self._tokens) >= TOKEN_CACHE_SIZE:
                    self._tokens.clear()
                self._tokens[digest] = (actor, expires, time.monotonic())
        if expires <= now:
            raise Unauthorized("the token has expired: log in again")
        return actor

    def record_denied(self, actor: Actor, permission: Permission) -> Forbidden:
        """Audit a refused attempt and return the error to raise."""
        with self._transaction() as work:
            work.audit(actor, "access.denied", f"user:{actor.username}", {"wanted": permission.value})
        if actor.must_change_password:
            return Forbidden("change your password first: POST /api/v1/auth/password")
        try:
            self._require(actor, permission)
        except Forbidden as error:
            return error
        return Forbidden("forbidden")

    # -- intake --

    def intake(self, actor: Actor, request: Mapping[str, Any], idempotency_key: str | None = None) -> dict[str, Any]:
        """Record a detainer and decide it under the policy in force on the day it was received.

        With an idempotency key, a retry with the same body gets the first answer back (`replayed`
        set) and a different body under the same key is refused (409). The same booking and ICE
        detainer number a second time is refused (409, naming the detainer that has them)."""
        return self._intake_alone(self._intake_request(actor, request, idempotency_key))

    def write_many(
        self,
        intakes: Sequence[tuple[Actor, Mapping[str, Any], str | None]],
        reviews: Sequence[tuple[Actor, int, str, str]] = (),
    ) -> tuple[list[dict[str, Any] | Exception], list[dict[str, Any] | Exception]]:
        """Intakes (actor, body, Idempotency-Key) and reviews (actor, detainer id, decision, reason) in one
        transaction: one commit — one fsync, one lock of the audit chain's head — for them all (group
        commit). Each gets exactly the answer `intake` or `review` would give it alone, or its error: one
        refused (404, 409, 422) writes nothing and the others go on. The intakes are written first, in
        order; then the reviews, by detainer id (in order of arrival for one id), so that two server
        processes lock the detainers they review in the same order. If one fails after it began writing
        (a twin committed meanwhile by another server process, a deadlock), the transaction is rolled back
        and each is run alone."""
        prepared: list[_IntakeRequest | Exception] = []
        for actor, request, idempotency_key in intakes:
            try:
                prepared.append(self._intake_request(actor, request, idempotency_key))
            except DeskError as error:
                prepared.append(error)
        checked: list[tuple[Actor, int, str, str] | Exception] = []
        for actor, detainer_id, decision, reason in reviews:
            try:
                checked.append((actor, detainer_id, decision, self._review_reason(actor, decision, reason)))
            except DeskError as error:
                checked.append(error)
        if all(isinstance(item, Exception) for item in [*prepared, *checked]):
            return prepared, checked  # type: ignore[return-value]
        valid = [item for item in prepared if not isinstance(item, Exception)]
        # Together (two statements for the batch's rows rather than two per intake, on the DBAPI cursor; on
        # PostgreSQL fewer round trips, so also for a batch of one) when no answer in the batch can depend on
        # another's: no Idempotency-Key, no booking and ICE number twice.
        together = (
            bool(valid)
            and all(item.idempotency_key is None for item in valid)
            and len({(item.booking_ref, item.detainer_number) for item in valid}) == len(valid)
        )
        try:
            with self._transaction() as work:
                if together:
                    answers = self._intake_together(work, prepared)
                else:
                    day_policies: dict[dt.date, Policy | None] = {}
                    answers = []
                    for item in prepared:
                        if isinstance(item, Exception):
                            answers.append(item)
                            continue
                        try:
                            answers.append(self._intake_in(work, item, day_policies))
                        except DeskError as error:  # refused before it wrote anything (see _intake_in)
                            answers.append(error)
                reviewed: list[Any] = list(checked)
                ordered = sorted((item[1], index) for index, item in enumerate(checked) if isinstance(item, tuple))
                if ordered:
                    # The batch's rows first: a review finds a detainer this very batch adds, as one by one, and
                    # the ids its own rows take (SQLite: after the highest) are not the batch's.
                    work.write_now()
                for _, index in ordered:
                    try:
                        reviewed[index] = self._review_in(work, *checked[index])  # type: ignore[misc]
                    except DeskError as error:  # refused before it wrote anything (see _review_in)
                        reviewed[index] = error
            return answers, reviewed
        except Exception:
            return (
                [item if isinstance(item, Exception) else self._intake_alone(item, answer=True) for item in prepared],
                [item if isinstance(item, Exception) else self._review_alone(*item) for item in checked],
            )

    def _intake_alone(self, item: _IntakeRequest, *, answer: bool = False) -> Any:
        """One intake in its own transaction (`answer`: its error is returned rather than raised)."""
        try:
            for attempt in range(2):
                try:
                    with self._transaction() as work:
                        return self._intake_in(work, item, {})
                except IntegrityError:
                    if attempt:
                        raise
                    # A concurrent twin (PostgreSQL) committed first: now the checks in _intake_in see it.
            raise AssertionError("unreachable")
        except Exception as error:
            if answer:
                return error
            raise

    def _intake_request(self, actor: Actor, request: Mapping[str, Any], idempotency_key: str | None) -> _IntakeRequest:
        """An intake checked and normalized, before the database is touched (InvalidInput, Forbidden)."""
        self._require(actor, Permission.CREATE_DETAINER)
        for field in INTAKE_FIELDS:
            if request.get(field) in (None, ""):
                raise InvalidInput(field, "is required")
        booking_ref = str(request["booking_ref"])
        _place, zone = self.place_and_zone()
        received_at = _wall_clock(request["received_at"], "received_at", zone)
        facts = {key: value for key, value in request.items() if key not in INTAKE_FIELDS}
        if facts.get("case_id") is None:
            facts["case_id"] = booking_ref
        if facts.get("time_zone") not in (None, zone):
            raise InvalidInput("time_zone", f"this desk's times are in {zone}, its jurisdiction's zone")
        # The engine reads the case's times in the desk's zone (a desk made before zones: the policy's own).
        facts["time_zone"] = zone
        try:
            (record,) = normalize_records([(f"detainer {booking_ref}", facts)])
        except InputError as error:
            raise InvalidInput(error.field or "body", str(error)) from None
        read_in_zone = [
            field for field in ("received_at", "release_eligible_at") if _without_offset(request.get(field))
        ]
        if record["release_eligible_at"] is not None:
            record["release_eligible_at"] = _wall_clock(record["release_eligible_at"], "release_eligible_at", zone)
        same_request: tuple[str, ...] = ()
        if idempotency_key is not None:
            same_request = (_request_hash(request),)
            if "time_zone" in request and request["time_zone"] is None:
                # The intake of a desk before 0003 had no time_zone field: the first answer to a retry that
                # spans the upgrade was stored under the hash of the body without it.
                same_request += (_request_hash({k: v for k, v in request.items() if k != "time_zone"}),)
        return _IntakeRequest(
            actor,
            booking_ref,
            str(request["detainer_number"]),
            str(request["issuing_office"]),
            received_at,
            record,
            read_in_zone,
            idempotency_key,
            same_request,
        )

    def _intake_in(
        self, work: _Work, item: _IntakeRequest, day_policies: dict[dt.date, Policy | None]
    ) -> dict[str, Any]:
        """Record one checked intake in a transaction. Every refusal (DeskError: 409, 422) comes before
        its first write, so that the other intakes of a batch may go on; an error after it is not a
        DeskError. `day_policies`: the policy in force by day, as read in this transaction."""
        actor = item.actor
        if item.idempotency_key is not None:
            first = work.connection.execute(
                SELECT_IDEMPOTENT, {"username": actor.username, "key": item.idempotency_key}
            ).first()
            if first is not None:
                if first.request_hash not in item.same_request:
                    raise Conflict(
                        "this Idempotency-Key was used for a different detainer "
                        f"(detainer {first.detainer_id}); use a new key for a new request",
                        existing_id=first.detainer_id,
                    )
                return {**json.loads(first.response), "replayed": True}
        row, layers = self._decided_row(work, item, day_policies)
        # The first write, and the duplicate check in one: the same booking and ICE detainer number as a row
        # already there (or one another server process is committing) inserts nothing and answers no id.
        row["id"] = work.connection.execute(self._insert_detainer, row).scalar()
        if row["id"] is None:
            existing = work.connection.execute(
                SELECT_SAME_DETAINER, {"booking_ref": item.booking_ref, "detainer_number": item.detainer_number}
            ).scalar()
            raise self._twin(item, existing)
        try:
            return self._write_intake(work, item, row, layers)
        except DeskError as error:  # not a refusal: it came after a write
            raise RuntimeError(f"intake failed after it began writing: {error}") from error

    @staticmethod
    def _twin(item: _IntakeRequest, existing: int | None) -> Conflict:
        return Conflict(
            f"detainer {existing} already records ICE detainer {item.detainer_number} for booking {item.booking_ref}",
            existing_id=existing,
        )

    def _decided_row(
        self, work: _Work, item: _IntakeRequest, day_policies: dict[dt.date, Policy | None]
    ) -> tuple[dict[str, Any], list[Policy]]:
        """An intake's detainer row (without its id), decided under the layers in force on the day received,
        and those layers; InvalidInput if no policy of the desk is in force that day."""
        day = item.received_at.date()
        if day not in day_policies:
            day_policies[day] = self.policy_in_force(work.connection, day)
        policy = day_policies[day]
        if policy is None:
            first_day = work.connection.execute(select(func.min(PERIODS.c.effective_from))).scalar()
            raise InvalidInput(
                "received_at",
                f"no policy of this desk is in force on {day.isoformat()}"
                + (
                    f" (the first starts {first_day.isoformat()}; see `securecomm desk set-policy`)"
                    if first_day
                    else ""
                ),
            )
        layers = layers_of(policy, day)
        return self._detainer_row(item, policy, decide(layers, item.record)), layers

    def _intake_together(self, work: _Work, prepared: Sequence[_IntakeRequest | Exception]) -> list[Any]:
        """The intakes of a batch in which no answer depends on another's (no Idempotency-Key, each booking
        and ICE number once), each answered as `_intake_in` answers it — the same refusals, rows, audit
        entries in the same order, and answers — with their detainers and notices to ICE written by one
        statement each, on the DBAPI cursor (`BatchStatements`), just before the audit entries (`_Work.write`).
        What the batch reads first goes in one round trip on PostgreSQL: the policy in force on each day
        received and the twins already recorded; then the new rows' ids, by one query (SQLite: after the
        highest, under the transaction's write lock; PostgreSQL: from the tables' sequences). A twin another
        server process commits meanwhile fails the batch's insert; `write_many` then runs each intake alone,
        and that one gets its 409."""
        answers: list[Any] = list(prepared)
        valid = [(index, item) for index, item in enumerate(prepared) if not isinstance(item, Exception)]
        if not valid:
            return answers
        statements = self._statements
        days = sorted({item.received_at.date() for _, item in valid})
        bookings = sorted({item.booking_ref for _, item in valid})
        connection = work.connection
        with pipeline(connection):
            policy_cursors = {}
            for day in days:
                policy_cursors[day] = driver_cursor(connection)
                policy_cursors[day].execute(statements.policy_in_force, statements.day(day))
            bookings_cursor = driver_cursor(connection)
            bookings_cursor.execute(statements.bookings(len(bookings)), bookings)
        day_policies: dict[dt.date, Policy | None] = {}
        for day, cursor in policy_cursors.items():
            found = cursor.fetchone()
            day_policies[day] = None if found is None else self._policy(connection, found[0])
        recorded = {(booking, number): found for found, booking, number in bookings_cursor.fetchall()}
        decided = []
        for index, item in valid:
            try:
                row, layers = self._decided_row(work, item, day_policies)
            except DeskError as error:
                answers[index] = error
                continue
            twin = recorded.get((item.booking_ref, item.detainer_number))
            if twin is not None:
                answers[index] = self._twin(item, twin)
            else:
                decided.append((index, item, row, layers))
        if not decided:
            return answers
        notices = [self._ice_notice(row, layers) for _, _, row, layers in decided]
        counts = (len(decided), sum(notice is not None for notice in notices))
        ids = driver_cursor(connection)
        ids.execute(statements.new_ids, statements.id_counts(*counts))
        detainer_ids, event_ids = statements.ids(ids.fetchone(), *counts)
        rows, events = [], []
        for (index, item, row, _), notice, detainer_id in zip(decided, notices, detainer_ids, strict=True):
            row["id"] = detainer_id
            rows.append(row)
            self._audit_intake(work, item, row)
            if notice is not None:
                event = self._event_row(row["id"], item.actor, "ice_notified", self.clock.local_now(), notice)
                event["id"] = event_ids[len(events)]
                events.append(event)
                self._audit_notice(work, row, event, item.actor)
            answers[index] = self._intake_summary(item, row)
        work.write(statements.insert_detainers, rows)
        if events:
            work.write(statements.insert_events, events)
        return answers

    def _detainer_row(self, item: _IntakeRequest, policy: Policy, result: Mapping[str, Any]) -> dict[str, Any]:
        actor, record = item.actor, item.record
        return {
            "booking_ref": item.booking_ref,
            "detainer_number": item.detainer_number,
            "case_id": record["case_id"],
            "issuing_office": item.issuing_office,
            "received_at": item.received_at,
            "facts": _json_text(record),
            "detainer_form": record["detainer_form"],
            "policy_id": policy.id,
            "auto_decision": result["decision"],
            "rule": result["rule"],
            "citation": result["citation"],
            "explanation": result["explanation"],
            "decision": result["decision"],
            "review_reason": None,
            "reviewed_by": None,
            "reviewed_utc": None,
            "release_eligible_at": record["release_eligible_at"],
            "hold_until": result["hold_until"],
            "time_zone": result["time_zone"],
            "hold_until_utc": _naive_utc(result["hold_until_utc"]),
            "hold_citation": result["hold_citation"],
            "decided_by": result["policy_id"],
            "layers": result["layers"],
            "custody": "in_custody",
            "custody_ended_at": None,
            "overdue_flagged_at": None,
            "created_utc": self.clock.utc_now(),
            "created_by": actor.username,
        }

    def _write_intake(
        self, work: _Work, item: _IntakeRequest, row: dict[str, Any], layers: Sequence[Policy]
    ) -> dict[str, Any]:
        """The rest of an intake once its detainer row is in: the audit entry, the notice to ICE, the answer."""
        actor = item.actor
        self._audit_intake(work, item, row)
        self._notify_ice(work, row, layers, actor)
        summary = self._intake_summary(item, row)
        if item.idempotency_key is not None:
            work.connection.execute(
                INSERT_IDEMPOTENT,
                {
                    "username": actor.username,
                    "key": item.idempotency_key,
                    "request_hash": item.same_request[0],
                    "detainer_id": row["id"],
                    "response": _json_text(summary),
                    "created_utc": row["created_utc"],
                },
            )
        return summary

    @staticmethod
    def _audit_intake(work: _Work, item: _IntakeRequest, row: dict[str, Any]) -> None:
        work.audit(
            item.actor,
            "detainer.create",
            f"detainer:{row['id']}",
            {
                "policy_id": row["policy_id"],
                "decided_by": row["decided_by"],
                "decision": row["decision"],
                "rule": row["rule"],
            },
            [("detainer", row)],
        )

    def _intake_summary(self, item: _IntakeRequest, row: dict[str, Any]) -> dict[str, Any]:
        summary = detainer_summary(row, self.clock.local_now())
        summary["times_read_in_zone"] = item.read_in_zone
        return summary

    def _notify_ice(self, work: _Work, detainer: Mapping[str, Any], layers: Sequence[Policy], actor: Actor) -> None:
        """Record the notice to ICE that any layer in force requires for this decision, if one does."""
        details = self._ice_notice(detainer, layers)
        if details is None:
            return
        event = self._event(work, detainer["id"], actor, "ice_notified", self.clock.local_now(), details)
        self._audit_notice(work, detainer, event, actor)

    @staticmethod
    def _audit_notice(work: _Work, detainer: Mapping[str, Any], event: dict[str, Any], actor: Actor) -> None:
        work.audit(
            actor, "ice.notify", f"detainer:{detainer['id']}", {"decision": detainer["decision"]}, [("event", event)]
        )

    @staticmethod
    def _ice_notice(detainer: Mapping[str, Any], layers: Sequence[Policy]) -> dict[str, Any] | None:
        """The details of the notice to ICE that any layer in force requires for this decision (None: none)."""
        decision = detainer["decision"]
        duties = [layer.notice for layer in layers if layer.notice is not None and decision in layer.notice.decisions]
        if not duties:
            return None
        hold_until = detainer["hold_until"]
        form = load_forms().get(detainer["detainer_form"] or "")
        if decision != "honor":
            message = "Detainer declined: the person will not be held beyond release."
        elif form is not None and not form.detention:
            message = f"Detainer honored as a request for notice only ({form.citation}): no hold beyond release."
        elif hold_until is not None:
            message = (
                f"Detainer honored: the person will be held until {hold_until:%Y-%m-%d %H:%M} "
                f"({detainer['time_zone'] or 'local time'}) at the latest ({detainer['hold_citation']})."
            )
        else:
            limits = [layer.hold.describe() for layer in layers if layer.hold is not None]
            limits += [form.describe()] if form is not None else []
            message = (
                "Detainer honored: from release eligibility the person will be held no longer than "
                + "; ".join(limits)
                + "."
            )
        return {
            "decision": decision,
            "hold_until": hold_until,
            "issuing_office": detainer["issuing_office"],
            "duty": "; ".join(duty.citation for duty in duties),
            "message": message,
        }

    # -- reading --

    def get_detainer(self, actor: Actor, detainer_id: int) -> dict[str, Any]:
        self._require(actor, Permission.READ_DETAINER)
        with self._transaction() as work:
            detainer = self._detainer(work, detainer_id)
            events = work.connection.execute(
                select(EVENTS).where(EVENTS.c.detainer_id == detainer_id).order_by(EVENTS.c.id)
            ).mappings()
            view = detainer_summary(detainer, self.clock.local_now())
            view["facts"] = json.loads(detainer["facts"])
            view["events"] = [_event_view(event) for event in events]
            work.audit(actor, "detainer.read", f"detainer:{detainer_id}")
        return view

    def review_queue(self, actor: Actor, limit: int = 100) -> list[dict[str, Any]]:
        """Undecided detainers, the most urgent first (release eligibility known and earliest)."""
        self._require(actor, Permission.REVIEW)
        with self._transaction() as work:
            rows = (
                work.connection.execute(
                    select(DETAINERS)
                    .where(DETAINERS.c.decision == "review", DETAINERS.c.custody == "in_custody")
                    .order_by(
                        DETAINERS.c.release_eligible_at.is_(None),
                        DETAINERS.c.release_eligible_at,
                        DETAINERS.c.received_at,
                        DETAINERS.c.id,
                    )
                    .limit(limit)
                )
                .mappings()
                .all()
            )
            now = self.clock.local_now()
            views = [detainer_summary(row, now) for row in rows]
            work.audit(actor, "review_queue.read", "review_queue", {"detainers": [row["id"] for row in rows]})
        return views

    def detainer_list(
        self,
        actor: Actor,
        *,
        custody: str | None = "in_custody",
        decision: str | None = None,
        review_needed: bool | None = None,
        office: str | None = None,
        limit: int = 500,
    ) -> list[dict[str, Any]]:
        """The desk's queue: detainers (in custody by default) filtered by custody, decision, whether a
        review is awaited and issuing office (contains, any case) — overdue first, then the nearest
        deadline, then those without one (a read of personal data: audited)."""
        self._require(actor, Permission.READ_DETAINER)
        query = select(DETAINERS)
        if custody is not None:
            query = query.where(DETAINERS.c.custody == custody)
        if decision is not None:
            query = query.where(DETAINERS.c.decision == decision)
        if review_needed is not None:
            query = query.where((DETAINERS.c.decision == "review") == review_needed)
        if office:
            query = query.where(func.lower(DETAINERS.c.issuing_office).contains(office.lower(), autoescape=True))
        with self._transaction() as work:
            rows = work.connection.execute(query.order_by(DETAINERS.c.id.desc()).limit(limit)).mappings().all()
            now = self.clock.local_now()
            views = [detainer_summary(row, now) for row in rows]
            deadlines = {row["id"]: custody_deadline(row) for row in rows}
            views.sort(
                key=lambda view: (
                    not view["overdue"],
                    deadlines[view["id"]] is None,
                    deadlines[view["id"]] or dt.datetime.max,
                    view["id"],
                )
            )
            work.audit(actor, "detainers.read", "detainers", {"detainers": [view["id"] for view in views]})
        return views

    # -- review --

    def review(self, actor: Actor, detainer_id: int, decision: str, reason: str) -> dict[str, Any]:
        """A reviewer's decision on a detainer in the queue; 409 (Conflict) if it was decided already."""
        reason = self._review_reason(actor, decision, reason)
        with self._transaction() as work:
            return self._review_in(work, actor, detainer_id, decision, reason)

    def _review_alone(self, actor: Actor, detainer_id: int, decision: str, reason: str) -> Any:
        """A review in its own transaction, its error returned rather than raised."""
        try:
            return self.review(actor, detainer_id, decision, reason)
        except Exception as error:
            return error

    def _review_reason(self, actor: Actor, decision: str, reason: str) -> str:
        """The reason of a review in order, stripped (Forbidden, InvalidInput), before the database is touched."""
        self._require(actor, Permission.REVIEW)
        if decision not in REVIEW_DECISIONS:
            raise InvalidInput("decision", f"must be one of: {', '.join(REVIEW_DECISIONS)}")
        if not reason.strip():
            raise InvalidInput("reason", "a review needs a written reason")
        return reason.strip()

    def _review_in(self, work: _Work, actor: Actor, detainer_id: int, decision: str, reason: str) -> dict[str, Any]:
        """A checked review in a transaction. Every refusal (DeskError: 404, 409) comes before its first
        write, so that the other writes of a batch may go on."""
        # Locked (PostgreSQL): the row digest written below must be of the row as it then is.
        detainer = self._detainer(work, detainer_id, lock=True)
        if detainer["decision"] != "review":
            how = f"by {detainer['reviewed_by']}" if detainer["reviewed_by"] else "automatically"
            raise Conflict(f"detainer {detainer_id} was already decided {how}: {detainer['decision']}")
        layers = self._layers(work.connection, detainer["policy_id"], detainer["received_at"].date())
        changes = {
            "decision": decision,
            "review_reason": reason,
            "reviewed_by": actor.username,
            "reviewed_utc": self.clock.utc_now(),
            # The hold runs from release eligibility, not from the review: a late decision never lengthens it.
            **_hold(layers, _record(detainer, detainer["release_eligible_at"]), decision),
        }
        # The condition on the current decision makes the check and the change one step: of two
        # reviewers racing on PostgreSQL, the second's UPDATE waits, re-reads and matches nothing.
        changed = work.connection.execute(
            REVIEW_DETAINER, {"detainer_id": detainer_id, **{f"new_{name}": value for name, value in changes.items()}}
        ).rowcount
        if changed != 1:
            raise Conflict(f"detainer {detainer_id} was decided by another reviewer meanwhile")
        detainer.update(changes)
        work.audit(
            actor,
            "detainer.review",
            f"detainer:{detainer_id}",
            {"decision": decision, "hold_until": changes["hold_until"]},
            [("detainer", detainer)],
        )
        self._notify_ice(work, detainer, layers, actor)
        return detainer_summary(detainer, self.clock.local_now())

    # -- custody events --

    def record_event(
        self,
        actor: Actor,
        detainer_id: int,
        kind: str,
        at: dt.datetime,
        override_reason: str | None = None,
    ) -> dict[str, Any]:
        """Release eligibility (starts the hold clock), pickup by ICE, or release.

        Ordering rules (422 naming the rule): no custody event before the detainer was received
        (`no-event-before-receipt`); no pickup by ICE before release eligibility is recorded and
        reached (`no-pickup-before-release-eligibility`) unless flagged as an override with a reason."""
        self._require(actor, Permission.RECORD_EVENT)
        if kind not in EVENT_KINDS:
            raise InvalidInput("event", f"must be one of: {', '.join(EVENT_KINDS)}")
        if override_reason is not None and not override_reason.strip():
            raise InvalidInput("override_reason", "an override needs a written reason")
        _place, zone = self.place_and_zone()
        read_in_zone = ["at"] if _without_offset(at) else []
        at = _wall_clock(at, "at", zone)
        with self._transaction() as work:
            detainer = self._detainer(work, detainer_id, lock=True)
            if detainer["custody"] != "in_custody":
                raise Conflict(
                    f"custody of detainer {detainer_id} already ended: {detainer['custody'].replace('_', ' ')} "
                    f"at {detainer['custody_ended_at']:%Y-%m-%d %H:%M}"
                )
            if at < detainer["received_at"]:
                raise InvalidInput(
                    "at",
                    f"rule no-event-before-receipt: a custody event cannot precede the detainer's receipt "
                    f"({detainer['received_at']:%Y-%m-%d %H:%M})",
                    rule="no-event-before-receipt",
                )
            details: dict[str, Any] = {}
            if kind == "release_eligible":
                changes = self._release_eligible(work, detainer, at)
                details = {**changes, "previous_release_eligible_at": detainer["release_eligible_at"]}
            elif kind == "picked_up_by_ice":
                self._check_transfer(detainer, at)
                eligible = detainer["release_eligible_at"]
                if eligible is None or at < eligible:
                    if override_reason is None:
                        when = "is not recorded" if eligible is None else f"is {eligible:%Y-%m-%d %H:%M}"
                        raise InvalidInput(
                            "at",
                            f"rule no-pickup-before-release-eligibility: release eligibility {when}; a pickup "
                            "before it needs override_reason (a written reason, recorded and audited)",
                            rule="no-pickup-before-release-eligibility",
                        )
                    details = {"override": "no-pickup-before-release-eligibility", "reason": override_reason.strip()}
                changes = {"custody": "picked_up_by_ice", "custody_ended_at": at}
            else:
                changes = {"custody": "released", "custody_ended_at": at}
            work.connection.execute(update(DETAINERS).where(DETAINERS.c.id == detainer_id).values(changes))
            detainer.update(changes)
            event = self._event(work, detainer_id, actor, kind, at, details)
            audited: dict[str, Any] = {"event": kind, "at": at}
            if "override" in details:
                audited["override"] = details["override"]
            work.audit(
                actor, "detainer.event", f"detainer:{detainer_id}", audited, [("detainer", detainer), ("event", event)]
            )
        view = detainer_summary(detainer, self.clock.local_now())
        view["event"] = _event_view(event)
        view["times_read_in_zone"] = read_in_zone
        return view

    def _release_eligible(self, work: _Work, detainer: Mapping[str, Any], at: dt.datetime) -> dict[str, Any]:
        previous = detainer["release_eligible_at"]
        if previous is not None and at >= previous:
            raise Conflict(
                f"release eligibility is already recorded for {previous:%Y-%m-%d %H:%M}; a later time would "
                "move the hold deadline later, and a hold is never extended past hold_until"
            )
        layers = self._layers(work.connection, detainer["policy_id"], detainer["received_at"].date())
        return {"release_eligible_at": at, **_hold(layers, _record(detainer, at), detainer["decision"])}

    @staticmethod
    def _check_transfer(detainer: Mapping[str, Any], at: dt.datetime) -> None:
        if detainer["decision"] != "honor":
            state = "declined" if detainer["decision"] == "decline" else "awaiting review"
            raise Conflict(f"detainer {detainer['id']} is {state}: the person may not be handed to ICE on it")
        deadline = custody_deadline(detainer)
        if deadline is not None and at > deadline:
            if detainer["hold_until"] is None:  # honored without a hold: a form asking for notice only
                raise Conflict(
                    f"the detainer authorizes no hold ({detainer['hold_citation']}); after release eligibility at "
                    f"{deadline:%Y-%m-%d %H:%M} the person must be released, not handed to ICE"
                )
            raise Conflict(
                f"the hold ended at {deadline:%Y-%m-%d %H:%M}; after it the person must be released, not handed to ICE"
            )

    # -- overdue holds --

    @staticmethod
    def _overdue(work: _Work, now: dt.datetime) -> list[dict[str, Any]]:
        candidates = work.connection.execute(
            select(DETAINERS)
            .where(
                DETAINERS.c.custody == "in_custody",
                DETAINERS.c.release_eligible_at.is_not(None),
                DETAINERS.c.release_eligible_at < now,
            )
            .order_by(DETAINERS.c.release_eligible_at, DETAINERS.c.id)
        ).mappings()
        return [dict(d) for d in candidates if (deadline := custody_deadline(d)) is not None and now > deadline]

    def flag_overdue_holds(self, actor: Actor = SYSTEM) -> int:
        """Flag (once, with an event and an audit entry) every hold that has passed its deadline."""
        with self._transaction() as work:
            return self._flag(work, actor, self._overdue(work, self.clock.local_now()))

    def _flag(self, work: _Work, actor: Actor, overdue: list[dict[str, Any]]) -> int:
        now = self.clock.local_now()
        rows: list[tuple[str, Mapping[str, Any]]] = []
        flagged = []
        for detainer in overdue:
            if detainer["overdue_flagged_at"] is not None:
                continue
            # Conditional: of two server processes flagging at once, one flags each detainer.
            changed = work.connection.execute(
                update(DETAINERS)
                .where(DETAINERS.c.id == detainer["id"], DETAINERS.c.overdue_flagged_at.is_(None))
                .values(overdue_flagged_at=now)
            ).rowcount
            if changed != 1:
                continue
            detainer["overdue_flagged_at"] = now
            event = self._event(
                work, detainer["id"], actor, "hold_overdue", now, {"deadline": custody_deadline(detainer)}
            )
            rows += [("detainer", detainer), ("event", event)]
            flagged.append(detainer["id"])
        if flagged:
            work.audit(actor, "holds.flag_overdue", "holds", {"detainers": flagged}, rows)
        return len(flagged)

    def overdue_holds(self, actor: Actor) -> list[dict[str, Any]]:
        """People still in custody past what their detainer allows, flagged, the longest overdue first."""
        self._require(actor, Permission.READ_HOLDS)
        now = self.clock.local_now()
        with self._transaction() as work:
            overdue = self._overdue(work, now)
            self._flag(work, actor, overdue)
            views = []
            for detainer in overdue:
                deadline = custody_deadline(detainer)
                assert deadline is not None
                view = detainer_summary(detainer, now)
                view["deadline"] = deadline
                view["overdue_hours"] = round((now - deadline).total_seconds() / 3600, 2)
                if detainer["decision"] == "honor" and detainer["hold_until"] is not None:
                    view["reason"] = "held past the hold deadline"
                else:
                    state = "declined" if detainer["decision"] == "decline" else "awaiting review"
                    view["reason"] = f"held past release eligibility on a detainer that is {state}"
                views.append(view)
            views.sort(key=lambda view: view["deadline"])
            work.audit(actor, "holds.read", "holds", {"detainers": [d["id"] for d in overdue]})
        return views

    # -- reports --

    def quarterly_report(self, actor: Actor, quarter: str) -> dict[str, Any]:
        """The transparency report of a quarter (`2014Q1`): counts only, no personal data."""
        self._require(actor, Permission.READ_REPORTS)
        try:
            parsed = reports.parse_quarter(quarter)
        except ValueError as error:
            raise InvalidInput("quarter", str(error), location="query") from None
        with self.database.read() as session:
            self._settings(session)
            connection = session.connection()
            return reports.quarterly_report(
                session, parsed, self.clock.local_now(), lambda policy_id: self._policy(connection, policy_id).title
            )

    # -- audit --

    def _key(self) -> audit.AuditKey:
        if self.audit_key is None:
            raise audit.AuditKeyError("checking the audit chain needs the audit key (--audit-key)")
        return self.audit_key

    def verify_audit(self, anchors: list[Mapping[str, Any]] = ()) -> audit.ChainReport:  # type: ignore[assignment]
        """The whole chain, every tracked row against it, and each anchor given (kept elsewhere)."""
        key = self._key()
        with self.database.read() as session:
            return audit.verify_chain(session, key, anchors=anchors)

    def anchor(self) -> dict[str, Any]:
        """The signed head of the chain now (sequence, hash, time), to keep somewhere else."""
        with self.database.read() as session:
            return audit.current_anchor(session, self._key(), self.clock.utc_now())

    def adopt_audit_key(self, key: audit.AuditKey, actor: Actor = SYSTEM) -> None:
        """Start keying the chain of a desk made before audit keys: the chain from the next entry on
        is keyed, and one entry records a digest of every row as it stands (the baseline)."""
        with self.database.read() as session:
            head = session.execute(select(audit.HEAD.c.seq)).scalar_one()
        if key.keyed_from_seq != head + 1:
            raise Conflict(f"the key must start at entry {head + 1} (the chain's next entry)")
        self.audit_key = key
        with self._transaction() as work:
            rows = [
                (kind, row)
                for kind, table in audit.TRACKED.items()
                for row in work.connection.execute(select(table)).mappings()
            ]
            work.audit(actor, "audit.keyed", "audit", {"from_seq": key.keyed_from_seq}, rows)

    def audit_entries(self, actor: Actor, after_seq: int, limit: int) -> list[dict[str, Any]]:
        self._require(actor, Permission.READ_AUDIT)
        with self.database.read() as session:
            return [
                {
                    "seq": entry.seq,
                    "recorded_at_utc": entry.recorded_utc,
                    "actor": entry.actor,
                    "action": entry.action,
                    "subject": entry.subject,
                    "details": json.loads(entry.details),
                    "prev_hash": entry.prev_hash,
                    "hash": entry.hash,
                }
                for entry in audit.entries_page(session, after_seq, limit)
            ]


__all__ = [
    "DEFAULT_TOKEN_LIFETIME",
    "EVENT_KINDS",
    "SYSTEM",
    "Actor",
    "Clock",
    "Conflict",
    "Desk",
    "DeskError",
    "Forbidden",
    "InvalidInput",
    "IssuedToken",
    "NotFound",
    "NotInitialized",
    "SystemClock",
    "Unauthorized",
    "cli_actor",
    "custody_deadline",
    "detainer_summary",
]
