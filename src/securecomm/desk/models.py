"""The desk's tables.

Times are of two kinds, never mixed: the jail's local wall-clock time without a zone
(received_at, release eligibility, hold deadlines, custody events — as docs/design.md §2 records
them) and UTC for the machine's own bookkeeping (token expiry, when a row was written,
audit entries). Columns say which: `*_utc`.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, Date, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only auto-numbers an INTEGER PRIMARY KEY; PostgreSQL needs 64 bits for a long-lived desk.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


class DeskSettings(Base):
    """The one row describing this desk."""

    __tablename__ = "desk_settings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    jurisdiction: Mapped[str] = mapped_column(String(200))
    created_utc: Mapped[dt.datetime] = mapped_column(DateTime)
    # Where the jail is (a county FIPS or a state code, core.places) and the IANA zone of its clock:
    # every local time of the desk is a wall-clock time in this zone (migration 0003; null on a desk
    # made before it, whose times are read in the zone of the policy's own places, if it keeps one).
    place: Mapped[str | None] = mapped_column(String(200), default=None)
    time_zone: Mapped[str | None] = mapped_column(String(64), default=None)


class PolicyPeriod(Base):
    """The desk's dated list of policies: each applies to detainers received from `effective_from`
    until the next period begins."""

    __tablename__ = "policy_periods"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    policy_id: Mapped[str] = mapped_column(String(200))
    effective_from: Mapped[dt.date] = mapped_column(Date, unique=True)
    recorded_utc: Mapped[dt.datetime] = mapped_column(DateTime)
    recorded_by: Mapped[str] = mapped_column(String(100))


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    # A temporary lock after too many failed logins: it ends by itself at this time (UTC).
    locked_until_utc: Mapped[dt.datetime | None] = mapped_column(DateTime, default=None)
    # Disabled by a supervisor: no login, and its tokens are refused (403).
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # Set by a supervisor's password reset: the user must choose a new password before anything else.
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    password_changed_utc: Mapped[dt.datetime | None] = mapped_column(DateTime, default=None)
    created_utc: Mapped[dt.datetime] = mapped_column(DateTime)


class Token(Base):
    """A bearer token; only its SHA-256 is stored, so a copy of the database logs nobody in."""

    __tablename__ = "tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    issued_utc: Mapped[dt.datetime] = mapped_column(DateTime)
    expires_utc: Mapped[dt.datetime] = mapped_column(DateTime)
    client_addr: Mapped[str | None] = mapped_column(String(64), default=None)


class Detainer(Base):
    """One detainer request and what the jail did with it."""

    __tablename__ = "detainers"
    __table_args__ = (
        Index("ix_detainers_decision", "decision"),
        Index("ix_detainers_received_at", "received_at"),
        Index("ix_detainers_custody", "custody", "release_eligible_at"),
        Index("ux_detainers_booking_number", "booking_ref", "detainer_number", unique=True),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    booking_ref: Mapped[str] = mapped_column(String(64))
    # ICE's number for the detainer: with the booking, it names one detainer (a second intake → 409).
    detainer_number: Mapped[str | None] = mapped_column(String(64))
    case_id: Mapped[str] = mapped_column(String(200))
    issuing_office: Mapped[str] = mapped_column(String(200))
    received_at: Mapped[dt.datetime] = mapped_column(DateTime)
    # The case facts of docs/design.md §2 as received, normalized by securecomm.core.cases (JSON text).
    facts: Mapped[str] = mapped_column(Text)
    detainer_form: Mapped[str | None] = mapped_column(String(10))
    policy_id: Mapped[str] = mapped_column(String(200))
    # The engine's decision at intake: honor, decline or review, with the rule that decided.
    auto_decision: Mapped[str] = mapped_column(String(10))
    rule: Mapped[str] = mapped_column(String(100))
    citation: Mapped[str] = mapped_column(String(300))
    explanation: Mapped[str] = mapped_column(Text)
    # The decision in force: the automatic one, or the reviewer's once a review is made.
    decision: Mapped[str] = mapped_column(String(10))
    review_reason: Mapped[str | None] = mapped_column(Text)
    reviewed_by: Mapped[str | None] = mapped_column(String(64))
    reviewed_utc: Mapped[dt.datetime | None] = mapped_column(DateTime)
    release_eligible_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    hold_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # Migration 0003: the zone of the detainer's local times, the hold's deadline as a UTC instant, the
    # limit that set it (the policy's hold or the detainer form's), the layer whose answer governs and
    # what every layer in force answered (law.layers).
    time_zone: Mapped[str | None] = mapped_column(String(64), default=None)
    hold_until_utc: Mapped[dt.datetime | None] = mapped_column(DateTime, default=None)
    hold_citation: Mapped[str | None] = mapped_column(String(300), default=None)
    decided_by: Mapped[str | None] = mapped_column(String(200), default=None)
    layers: Mapped[str | None] = mapped_column(Text, default=None)
    # in_custody until the person is released or picked up by ICE (custody_ended_at).
    custody: Mapped[str] = mapped_column(String(20), default="in_custody")
    custody_ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    overdue_flagged_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    created_utc: Mapped[dt.datetime] = mapped_column(DateTime)
    created_by: Mapped[str] = mapped_column(String(64))


class Event(Base):
    """Something that happened to a detainer: custody events, ICE notifications, overdue flags."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_detainer", "detainer_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    detainer_id: Mapped[int] = mapped_column(BigId, ForeignKey("detainers.id"))
    kind: Mapped[str] = mapped_column(String(30))
    at: Mapped[dt.datetime] = mapped_column(DateTime)
    recorded_utc: Mapped[dt.datetime] = mapped_column(DateTime)
    recorded_by: Mapped[str] = mapped_column(String(64))
    details: Mapped[str] = mapped_column(Text, default="{}")


class AuditEntry(Base):
    """One link of the audit chain; `hash` covers every other column and the previous hash.

    The table is append-only: database triggers refuse UPDATE and DELETE (migration 0001).
    """

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    recorded_utc: Mapped[dt.datetime] = mapped_column(DateTime)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(50))
    subject: Mapped[str] = mapped_column(String(100))
    details: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The chain's last link. Appending locks this one row, which orders all appends."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigId)
    hash: Mapped[str] = mapped_column(String(64))


class IdempotencyKey(Base):
    """The first answer to an intake sent with an `Idempotency-Key`, replayed to a retry."""

    __tablename__ = "idempotency_keys"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    detainer_id: Mapped[int] = mapped_column(BigId)
    response: Mapped[str] = mapped_column(Text)
    created_utc: Mapped[dt.datetime] = mapped_column(DateTime)


class RegisteredPolicy(Base):
    """A policy file registered with `desk add-policy`: validated, its text and SHA-256 kept, so
    that `set-policy` can use it and every decision is made by exactly the text registered."""

    __tablename__ = "registered_policies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    policy_id: Mapped[str] = mapped_column(String(200), unique=True)
    sha256: Mapped[str] = mapped_column(String(64))
    source_path: Mapped[str] = mapped_column(Text)
    content: Mapped[str] = mapped_column(Text)
    recorded_utc: Mapped[dt.datetime] = mapped_column(DateTime)
    recorded_by: Mapped[str] = mapped_column(String(100))
