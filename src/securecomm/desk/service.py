"""The desk's work: set-up, users and logins, intake, review, custody events, overdue holds.

Every operation is one database transaction that ends with its audit entry. Decisions come
from the rules engine alone: the case facts are checked by `securecomm.core.cases` and decided by
`securecomm.law.per_case.evaluate_case` under the policy of the desk's dated list that is
in force on the day the detainer was received; hold deadlines come from `securecomm.law.holdclock`
and the policy's own hold.

The hold never outlives its deadline: release eligibility may only be recorded once (or moved
earlier), a reviewer's later "honor" counts the hold from the original release eligibility,
and a transfer to ICE after `hold_until` is refused.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from securecomm.core.cases import InputError, normalize_records
from securecomm.core.yamlfiles import PolicyFileError
from securecomm.desk import audit, reports, security
from securecomm.desk.db import Database
from securecomm.desk.models import DeskSettings, Detainer, Event, PolicyPeriod, Token, User
from securecomm.desk.security import DEFAULT_TOKEN_LIFETIME, MAX_FAILED_LOGINS, Permission, Role
from securecomm.law import holdclock
from securecomm.law.loader import UnknownPolicyError, load_policy
from securecomm.law.model import Policy
from securecomm.law.per_case import evaluate_case

EVENT_KINDS = ("release_eligible", "picked_up_by_ice", "released")
REVIEW_DECISIONS = ("honor", "decline")
# Fields of an intake besides the case facts of docs/design.md §2.
INTAKE_FIELDS = ("booking_ref", "received_at", "issuing_office")


# --- errors (api.py maps each to its HTTP status) ------------------------------------------


class DeskError(Exception):
    """Something the caller asked for cannot be done; the message says why."""


class NotInitialized(DeskError):
    pass


class InvalidInput(DeskError):
    """Bad input (422): `field` is the path of the offending field."""

    def __init__(self, field: str, message: str, *, location: str = "body") -> None:
        super().__init__(message)
        self.field = field
        self.location = location


class NotFound(DeskError):
    pass


class Conflict(DeskError):
    pass


class Unauthorized(DeskError):
    pass


class Forbidden(DeskError):
    pass


# --- time ----------------------------------------------------------------------------------


class Clock(Protocol):
    def utc_now(self) -> dt.datetime:
        """Naive UTC, for the machine's bookkeeping (tokens, audit)."""
        ...

    def local_now(self) -> dt.datetime:
        """Naive local wall-clock time of the jail, for holds and custody."""
        ...


class SystemClock:
    def utc_now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC).replace(tzinfo=None)

    def local_now(self) -> dt.datetime:
        return dt.datetime.now()


@dataclass(frozen=True)
class Actor:
    """Who is acting: a logged-in user, or a local command (`cli:…`) or the server itself."""

    username: str
    role: str

    def may(self, permission: Permission) -> bool:
        return security.allowed(self.role, permission)


SYSTEM = Actor("system", Role.SUPERVISOR.value)


def cli_actor(name: str) -> Actor:
    return Actor(f"cli:{name}", Role.SUPERVISOR.value)


def _check_calendar(value: dt.datetime, field: str) -> dt.datetime:
    # The hold clock knows the federal holidays of these years only.
    if value.year not in holdclock.CALENDAR_YEARS:
        first, last = holdclock.CALENDAR_YEARS.start, holdclock.CALENDAR_YEARS.stop - 1
        raise InvalidInput(field, f"must fall in the years {first}–{last}, not {value.year}")
    if value.tzinfo is not None:
        raise InvalidInput(field, "must be a local time with no zone (the jail's wall clock)")
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value


def _hold_deadline(policy: Policy, decision: str, release_eligible_at: dt.datetime | None) -> dt.datetime | None:
    if decision != "honor" or release_eligible_at is None or policy.hold is None:
        return None
    return holdclock.hold_until(release_eligible_at, policy.hold.hours, policy.hold.counting)


def custody_deadline(detainer: Mapping[str, Any]) -> dt.datetime | None:
    """The latest moment the person may be in the jail's custody on this detainer, once release
    eligibility is known: the hold deadline of an honored detainer, else release eligibility
    itself (a declined or still undecided detainer authorizes no hold at all)."""
    if detainer["release_eligible_at"] is None:
        return None
    if detainer["decision"] == "honor" and detainer["hold_until"] is not None:
        return detainer["hold_until"]
    return detainer["release_eligible_at"]


def _load_detainer_policy(policy_id: str) -> Policy:
    try:
        policy = load_policy(policy_id)
    except (UnknownPolicyError, PolicyFileError) as error:
        raise InvalidInput("policy", str(error)) from None
    if policy.kind != "detainer":
        raise InvalidInput("policy", f"{policy_id} is a {policy.kind} policy; the desk needs a detainer policy")
    return policy


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
        "release_eligible_at": detainer["release_eligible_at"],
        "hold_until": detainer["hold_until"],
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


@dataclass
class _Work:
    """One write transaction: its connection, an ORM session on it for the rare operations that
    use one (set-up, users), and the audit entries appended just before it commits."""

    connection: Connection
    entries: list[audit.PendingEntry]
    _session: Session | None = None

    @property
    def session(self) -> Session:
        if self._session is None:
            self._session = Session(bind=self.connection, expire_on_commit=False)
        return self._session

    def finish(self) -> None:
        if self._session is not None:
            self._session.flush()
            self._session.close()

    def audit(self, actor: Actor, action: str, subject: str, details: Mapping[str, Any] | None = None) -> None:
        self.entries.append(audit.PendingEntry(actor.username, action, subject, _jsonable(details or {})))


# Detainers and events are the hot path (hundreds of intakes a second): they are written with
# SQLAlchemy Core statements on these tables, which costs a fraction of the ORM's unit of work.
DETAINERS = Detainer.__table__
EVENTS = Event.__table__
PERIODS = PolicyPeriod.__table__
# How long a checked token is trusted without looking at the database again (a lock or an
# expiry is still honored within this many seconds).
TOKEN_CACHE_SECONDS = 5.0
# Statements built once: building one costs more than running it on SQLite.
INSERT_DETAINER = insert(DETAINERS)
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


# --- the desk ------------------------------------------------------------------------------


class Desk:
    """The desk's operations over one database."""

    def __init__(
        self,
        database: Database,
        *,
        clock: Clock | None = None,
        token_lifetime: dt.timedelta = DEFAULT_TOKEN_LIFETIME,
    ) -> None:
        self.database = database
        self.clock = clock or SystemClock()
        self.token_lifetime = token_lifetime
        self._initialized = False
        self._tokens: dict[str, tuple[Actor, dt.datetime, float]] = {}
        self._tokens_lock = threading.Lock()

    # -- helpers --

    @contextmanager
    def _transaction(self) -> Iterator[_Work]:
        """A write transaction whose audit entries are appended last, just before it commits."""
        with self.database.write_connection() as connection:
            work = _Work(connection, [])
            yield work
            work.finish()
            audit.append(connection, work.entries, now_utc=self.clock.utc_now())

    def _event(
        self, work: _Work, detainer_id: int, actor: Actor, kind: str, at: dt.datetime, details: Mapping[str, Any]
    ) -> dict[str, Any]:
        row = {
            "detainer_id": detainer_id,
            "kind": kind,
            "at": at,
            "recorded_utc": self.clock.utc_now(),
            "recorded_by": actor.username,
            "details": audit.canonical_json(_jsonable(details)),
        }
        row["id"] = work.connection.execute(INSERT_EVENT, row).inserted_primary_key[0]
        return row

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

    def _check_initialized(self, session: Session) -> None:
        # Once set up, a desk stays set up: ask the database only until it says so.
        if not self._initialized:
            self._settings(session)
            self._initialized = True

    # -- set-up --

    def initialize(
        self,
        *,
        jurisdiction: str,
        policy_id: str,
        admin_username: str,
        admin_password: str,
        effective_from: dt.date | None = None,
        actor: Actor = SYSTEM,
    ) -> None:
        """Create the desk: its jurisdiction, first policy and a supervisor."""
        if not jurisdiction.strip():
            raise InvalidInput("jurisdiction", "must be non-empty text")
        policy = _load_detainer_policy(policy_id)
        start = effective_from or policy.effective
        if start is None:
            raise InvalidInput("from", f"{policy_id} has no effective date: give the date it applies from")
        self._check_new_user(admin_username, admin_password, Role.SUPERVISOR.value)
        password_hash = security.hash_password(admin_password)
        with self._transaction() as work:
            if work.session.get(DeskSettings, 1) is not None:
                raise Conflict("this desk is already initialized")
            work.session.add(DeskSettings(id=1, jurisdiction=jurisdiction.strip(), created_utc=self.clock.utc_now()))
            work.audit(actor, "desk.init", "desk", {"jurisdiction": jurisdiction.strip()})
            self._add_period(work, policy, start, actor)
            self._add_user(work, admin_username, password_hash, Role.SUPERVISOR.value, actor)

    def _add_period(self, work: _Work, policy: Policy, start: dt.date, actor: Actor) -> None:
        if work.session.execute(select(PolicyPeriod).where(PolicyPeriod.effective_from == start)).scalar() is not None:
            raise Conflict(f"a policy already starts on {start.isoformat()}")
        work.session.add(
            PolicyPeriod(
                policy_id=policy.id, effective_from=start, recorded_utc=self.clock.utc_now(), recorded_by=actor.username
            )
        )
        work.audit(actor, "policy.set", "desk", {"policy_id": policy.id, "from": start.isoformat()})

    def set_policy(self, policy_id: str, effective_from: dt.date, actor: Actor = SYSTEM) -> None:
        """Add a policy to the desk's dated list: detainers received from that day on are decided by it."""
        policy = _load_detainer_policy(policy_id)
        with self._transaction() as work:
            self._settings(work.session)
            self._add_period(work, policy, effective_from, actor)

    @staticmethod
    def _settings(session: Session) -> DeskSettings:
        settings = session.get(DeskSettings, 1)
        if settings is None:
            raise NotInitialized("this desk is not initialized: run `securecomm desk init` first")
        return settings

    def describe(self) -> dict[str, Any]:
        """The jurisdiction and the dated list of policies (no personal data)."""
        with self.database.read() as session:
            settings = self._settings(session)
            periods = session.execute(select(PolicyPeriod).order_by(PolicyPeriod.effective_from)).scalars().all()
            rows = []
            for period in periods:
                policy = load_policy(period.policy_id)
                rows.append(
                    {
                        "policy_id": period.policy_id,
                        "title": policy.title,
                        "effective_from": period.effective_from,
                        "hold": policy.hold.describe() if policy.hold else None,
                        "notifies_ice_of": sorted(policy.notice.decisions) if policy.notice else [],
                    }
                )
            return {"jurisdiction": settings.jurisdiction, "policies": rows}

    @staticmethod
    def policy_in_force(connection: Connection, day: dt.date) -> Policy | None:
        policy_id = connection.execute(SELECT_POLICY_IN_FORCE, {"day": day}).scalar()
        return None if policy_id is None else load_policy(policy_id)

    # -- users and logins --

    @staticmethod
    def _check_new_user(username: str, password: str, role: str) -> None:
        if (problem := security.check_username(username)) is not None:
            raise InvalidInput("username", problem)
        if role not in {r.value for r in Role}:
            raise InvalidInput("role", f"unknown role {role!r}; expected one of: {', '.join(r.value for r in Role)}")
        if (problem := security.check_password(password)) is not None:
            raise InvalidInput("password", problem)

    def _add_user(self, work: _Work, username: str, password_hash: str, role: str, actor: Actor) -> User:
        if work.session.execute(select(User.id).where(User.username == username)).scalar() is not None:
            raise Conflict(f"the user {username!r} already exists")
        user = User(
            username=username,
            password_hash=password_hash,
            role=role,
            failed_logins=0,
            locked=False,
            created_utc=self.clock.utc_now(),
        )
        work.session.add(user)
        work.audit(actor, "user.create", f"user:{username}", {"role": role})
        return user

    def add_user(self, username: str, password: str, role: str, actor: Actor = SYSTEM) -> dict[str, Any]:
        self._require(actor, Permission.MANAGE_USERS)
        self._check_new_user(username, password, role)
        password_hash = security.hash_password(password)  # slow on purpose: outside the transaction
        try:
            with self._transaction() as work:
                self._settings(work.session)
                user = self._add_user(work, username, password_hash, role, actor)
                work.session.flush()
                view = self._user_view(user)
        except IntegrityError:
            raise Conflict(f"the user {username!r} already exists") from None
        return view

    @staticmethod
    def _user_view(user: User) -> dict[str, Any]:
        return {
            "username": user.username,
            "role": user.role,
            "locked": user.locked,
            "failed_logins": user.failed_logins,
            "created_at_utc": user.created_utc,
        }

    def list_users(self, actor: Actor) -> list[dict[str, Any]]:
        self._require(actor, Permission.MANAGE_USERS)
        with self.database.read() as session:
            return [self._user_view(user) for user in session.execute(select(User).order_by(User.id)).scalars()]

    def unlock_user(self, username: str, actor: Actor = SYSTEM) -> dict[str, Any]:
        self._require(actor, Permission.MANAGE_USERS)
        with self._transaction() as work:
            user = work.session.execute(select(User).where(User.username == username).with_for_update()).scalar()
            if user is None:
                raise NotFound(f"no user {username!r}")
            user.locked = False
            user.failed_logins = 0
            work.audit(actor, "user.unlock", f"user:{username}")
            view = self._user_view(user)
        self._forget_tokens()
        return view

    def login(self, username: str, password: str) -> IssuedToken:
        """A bearer token for a correct password; the fifth failure in a row locks the account."""
        with self.database.read() as session:
            user = session.execute(select(User).where(User.username == username)).scalar()
        if user is None:
            security.spend_verification_time(password)
            with self._transaction() as work:
                work.audit(SYSTEM, "auth.failed", "user:unknown")
            raise Unauthorized("wrong username or password")
        locked_message = f"the account is locked after {MAX_FAILED_LOGINS} failed logins; a supervisor must unlock it"
        if user.locked:
            raise Forbidden(locked_message)
        # argon2 takes ~0.1 s and must not hold the write lock; the counters are updated atomically after.
        correct = security.verify_password(user.password_hash, password)
        subject = f"user:{username}"
        issued = None
        with self._transaction() as work:
            current = work.session.execute(select(User).where(User.id == user.id).with_for_update()).scalar_one()
            if not correct:
                current.failed_logins += 1
                current.locked = current.failed_logins >= MAX_FAILED_LOGINS
                details = {"failed_logins": current.failed_logins, "locked": current.locked}
                work.audit(SYSTEM, "auth.failed", subject, details)
            elif not current.locked:  # (a concurrent failure may have locked it meanwhile)
                now = self.clock.utc_now()
                token, digest = security.new_token()
                current.failed_logins = 0
                if security.needs_rehash(current.password_hash):
                    current.password_hash = security.hash_password(password)
                work.session.execute(delete(Token).where(Token.user_id == user.id, Token.expires_utc <= now))
                work.session.add(
                    Token(token_hash=digest, user_id=user.id, issued_utc=now, expires_utc=now + self.token_lifetime)
                )
                work.audit(Actor(username, current.role), "auth.login", subject)
                issued = IssuedToken(token, now + self.token_lifetime, username, current.role)
            locked = current.locked
        if issued is not None:
            return issued
        if locked:
            self._forget_tokens()
            raise Forbidden(locked_message)
        raise Unauthorized("wrong username or password")

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
        """The actor a bearer token stands for; expired, unknown or locked → Unauthorized."""
        digest = security.token_hash(token)
        now = self.clock.utc_now()
        cached = self._tokens.get(digest)
        if cached is not None and time.monotonic() - cached[2] < TOKEN_CACHE_SECONDS:
            actor, expires, _ = cached
        else:
            with self.database.read() as session:
                row = session.execute(
                    select(Token.expires_utc, User.username, User.role, User.locked)
                    .join(User, User.id == Token.user_id)
                    .where(Token.token_hash == digest)
                ).first()
            if row is None:
                raise Unauthorized("unknown token: log in at /api/v1/auth/token")
            if row.locked:
                raise Unauthorized("the account is locked")
            actor, expires = Actor(row.username, row.role), row.expires_utc
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
        try:
            self._require(actor, permission)
        except Forbidden as error:
            return error
        return Forbidden("forbidden")

    # -- intake --

    def intake(self, actor: Actor, request: Mapping[str, Any]) -> dict[str, Any]:
        """Record a detainer and decide it under the policy in force on the day it was received."""
        self._require(actor, Permission.CREATE_DETAINER)
        for field in INTAKE_FIELDS:
            if request.get(field) in (None, ""):
                raise InvalidInput(field, "is required")
        booking_ref = str(request["booking_ref"])
        received_at = _check_calendar(request["received_at"], "received_at")
        facts = {key: value for key, value in request.items() if key not in INTAKE_FIELDS}
        if facts.get("case_id") is None:
            facts["case_id"] = booking_ref
        try:
            (record,) = normalize_records([(f"detainer {booking_ref}", facts)])
        except InputError as error:
            raise InvalidInput(error.field or "body", str(error)) from None
        if record["release_eligible_at"] is not None:
            _check_calendar(record["release_eligible_at"], "release_eligible_at")

        with self._transaction() as work:
            self._check_initialized(work.session)
            policy = self.policy_in_force(work.connection, received_at.date())
            if policy is None:
                first = work.connection.execute(select(func.min(PERIODS.c.effective_from))).scalar()
                raise InvalidInput(
                    "received_at",
                    f"no policy of this desk is in force on {received_at.date().isoformat()}"
                    + (f" (the first starts {first.isoformat()}; see `securecomm desk set-policy`)" if first else ""),
                )
            result = evaluate_case(policy, record)
            row: dict[str, Any] = {
                "booking_ref": booking_ref,
                "case_id": record["case_id"],
                "issuing_office": str(request["issuing_office"]),
                "received_at": received_at,
                "facts": audit.canonical_json(_jsonable(record)),
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
                "custody": "in_custody",
                "custody_ended_at": None,
                "overdue_flagged_at": None,
                "created_utc": self.clock.utc_now(),
                "created_by": actor.username,
            }
            row["id"] = work.connection.execute(INSERT_DETAINER, row).inserted_primary_key[0]
            work.audit(
                actor,
                "detainer.create",
                f"detainer:{row['id']}",
                {"policy_id": policy.id, "decision": row["decision"], "rule": row["rule"]},
            )
            self._notify_ice(work, row, policy, actor)
        return detainer_summary(row, self.clock.local_now())

    def _notify_ice(self, work: _Work, detainer: Mapping[str, Any], policy: Policy, actor: Actor) -> None:
        """Record the notice to ICE that the policy requires for this decision, if any."""
        decision = detainer["decision"]
        if policy.notice is None or decision not in policy.notice.decisions:
            return
        hold_until = detainer["hold_until"]
        if decision == "honor":
            until = f" until {hold_until:%Y-%m-%d %H:%M}" if hold_until else ""
            hold = policy.hold.describe() if policy.hold else "the policy's maximum"
            message = f"Detainer honored: the person will be held for up to {hold}{until}."
        else:
            message = "Detainer declined: the person will not be held beyond release."
        details = {
            "decision": decision,
            "hold_until": hold_until,
            "issuing_office": detainer["issuing_office"],
            "duty": policy.notice.citation,
            "message": message,
        }
        self._event(work, detainer["id"], actor, "ice_notified", self.clock.local_now(), details)
        work.audit(actor, "ice.notify", f"detainer:{detainer['id']}", {"decision": decision})

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

    # -- review --

    def review(self, actor: Actor, detainer_id: int, decision: str, reason: str) -> dict[str, Any]:
        """A reviewer's decision on a detainer in the queue; 409 (Conflict) if it was decided already."""
        self._require(actor, Permission.REVIEW)
        if decision not in REVIEW_DECISIONS:
            raise InvalidInput("decision", f"must be one of: {', '.join(REVIEW_DECISIONS)}")
        if not reason.strip():
            raise InvalidInput("reason", "a review needs a written reason")
        with self._transaction() as work:
            detainer = self._detainer(work, detainer_id)
            if detainer["decision"] != "review":
                how = f"by {detainer['reviewed_by']}" if detainer["reviewed_by"] else "automatically"
                raise Conflict(f"detainer {detainer_id} was already decided {how}: {detainer['decision']}")
            policy = load_policy(detainer["policy_id"])
            changes = {
                "decision": decision,
                "review_reason": reason.strip(),
                "reviewed_by": actor.username,
                "reviewed_utc": self.clock.utc_now(),
                # The hold runs from release eligibility, not from the review: a late decision never lengthens it.
                "hold_until": _hold_deadline(policy, decision, detainer["release_eligible_at"]),
            }
            # The condition on the current decision makes the check and the change one step: of two
            # reviewers racing on PostgreSQL, the second's UPDATE waits, re-reads and matches nothing.
            changed = work.connection.execute(
                update(DETAINERS)
                .where(DETAINERS.c.id == detainer_id, DETAINERS.c.decision == "review")
                .values({name: bindparam(f"new_{name}") for name in changes}),
                {f"new_{name}": value for name, value in changes.items()},
            ).rowcount
            if changed != 1:
                raise Conflict(f"detainer {detainer_id} was decided by another reviewer meanwhile")
            detainer.update(changes)
            work.audit(
                actor,
                "detainer.review",
                f"detainer:{detainer_id}",
                {"decision": decision, "hold_until": changes["hold_until"]},
            )
            self._notify_ice(work, detainer, policy, actor)
        return detainer_summary(detainer, self.clock.local_now())

    # -- custody events --

    def record_event(self, actor: Actor, detainer_id: int, kind: str, at: dt.datetime) -> dict[str, Any]:
        """Release eligibility (starts the hold clock), pickup by ICE, or release."""
        self._require(actor, Permission.RECORD_EVENT)
        if kind not in EVENT_KINDS:
            raise InvalidInput("event", f"must be one of: {', '.join(EVENT_KINDS)}")
        _check_calendar(at, "at")
        with self._transaction() as work:
            detainer = self._detainer(work, detainer_id, lock=True)
            if detainer["custody"] != "in_custody":
                raise Conflict(
                    f"custody of detainer {detainer_id} already ended: {detainer['custody'].replace('_', ' ')} "
                    f"at {detainer['custody_ended_at']:%Y-%m-%d %H:%M}"
                )
            details: dict[str, Any] = {}
            if kind == "release_eligible":
                changes = self._release_eligible(detainer, at)
                details = {**changes, "previous_release_eligible_at": detainer["release_eligible_at"]}
            elif kind == "picked_up_by_ice":
                self._check_transfer(detainer, at)
                changes = {"custody": "picked_up_by_ice", "custody_ended_at": at}
            else:
                changes = {"custody": "released", "custody_ended_at": at}
            work.connection.execute(update(DETAINERS).where(DETAINERS.c.id == detainer_id).values(changes))
            detainer.update(changes)
            event = self._event(work, detainer_id, actor, kind, at, details)
            work.audit(actor, "detainer.event", f"detainer:{detainer_id}", {"event": kind, "at": at})
        view = detainer_summary(detainer, self.clock.local_now())
        view["event"] = _event_view(event)
        return view

    @staticmethod
    def _release_eligible(detainer: Mapping[str, Any], at: dt.datetime) -> dict[str, Any]:
        previous = detainer["release_eligible_at"]
        if previous is not None and at >= previous:
            raise Conflict(
                f"release eligibility is already recorded for {previous:%Y-%m-%d %H:%M}; a later time would "
                "move the hold deadline later, and a hold is never extended past hold_until"
            )
        policy = load_policy(detainer["policy_id"])
        return {"release_eligible_at": at, "hold_until": _hold_deadline(policy, detainer["decision"], at)}

    @staticmethod
    def _check_transfer(detainer: Mapping[str, Any], at: dt.datetime) -> None:
        if detainer["decision"] != "honor":
            state = "declined" if detainer["decision"] == "decline" else "awaiting review"
            raise Conflict(f"detainer {detainer['id']} is {state}: the person may not be handed to ICE on it")
        hold_until = detainer["hold_until"]
        if hold_until is not None and at > hold_until:
            raise Conflict(
                f"the hold ended at {hold_until:%Y-%m-%d %H:%M}; after it the person must be released, "
                "not handed to ICE"
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
        fresh = [detainer for detainer in overdue if detainer["overdue_flagged_at"] is None]
        for detainer in fresh:
            detainer["overdue_flagged_at"] = now
            work.connection.execute(
                update(DETAINERS).where(DETAINERS.c.id == detainer["id"]).values(overdue_flagged_at=now)
            )
            self._event(work, detainer["id"], actor, "hold_overdue", now, {"deadline": custody_deadline(detainer)})
        if fresh:
            work.audit(actor, "holds.flag_overdue", "holds", {"detainers": [d["id"] for d in fresh]})
        return len(fresh)

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
            return reports.quarterly_report(session, parsed, self.clock.local_now())

    # -- audit --

    def verify_audit(self) -> audit.ChainReport:
        with self.database.read() as session:
            return audit.verify_chain(session)

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
