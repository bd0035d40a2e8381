"""The audit log: an append-only chain of entries, each hashing the one before, keyed and anchored.

Every change and every read of personal data appends one entry in the same transaction as
the thing it records, so an entry exists exactly when its action happened. An entry names
the actor, the action and the subject (`detainer:42`) and carries details that are not
personal data — auditors read this log, and they may not see who was detained.

`hash = HMAC-SHA-256(key, previous hash + canonical JSON of the entry)`, with a key kept in a
file outside the database (`AuditKey`, created by `desk init`): someone who can write to the
database but cannot read the key cannot recompute the chain after changing it. Editing,
deleting, reordering or inserting an entry breaks the chain from that entry on; `verify_chain`
names the first entry that does not fit.

**The rows are in the chain too.** An entry that changes a detainer, an event, a user, a
policy period, a registered policy or a token carries `rows`: for each row it wrote, the HMAC of the
row's full new content (`row_digest`; a keyed digest, so the chain, which auditors read,
reveals nothing of the personal data in the row). `verify_chain` checks that every row of
those tables matches the latest digest the chain holds for it, that no row is missing, and that
none exists that the chain never recorded: `UPDATE detainers SET hold_until = …` is caught.

**Anchors.** Removing entries from the end and moving the head back leaves a shorter chain that
is consistent in itself; so does rewriting everything by someone who also holds the key. An
anchor (`make_anchor`: sequence, hash, time, signed with the key) kept somewhere else catches
both: `check_anchor` fails unless the chain still holds that very entry.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Dialect, Table, select
from sqlalchemy.orm import Session

from securecomm.desk.db import DriverInsert, driver_cursor, driver_sql, driver_values, pipeline
from securecomm.desk.models import (
    AuditEntry,
    AuditHead,
    DeskSettings,
    Detainer,
    Event,
    PolicyPeriod,
    RegisteredPolicy,
    Token,
    User,
)

GENESIS_HASH = "0" * 64
LOG = AuditEntry.__table__
HEAD = AuditHead.__table__
VERIFY_BATCH = 5000


@dataclass(frozen=True)
class ChainStatements:
    """The chain's statements on the DBAPI cursor (db.DriverInsert): lock and read the head (PostgreSQL:
    FOR UPDATE; SQLite's write transaction already holds the database's lock), add the entries, move it."""

    lock_head: str
    insert_entries: DriverInsert
    move_head: str

    @classmethod
    def of(cls, dialect: Dialect) -> ChainStatements:
        lock = " FOR UPDATE" if dialect.name == "postgresql" else ""
        return cls(
            driver_sql(dialect, f"SELECT seq, hash FROM {HEAD.name} WHERE id = 1{lock}"),
            DriverInsert.of(LOG, dialect),
            driver_sql(dialect, f"UPDATE {HEAD.name} SET seq = ?, hash = ? WHERE id = 1"),
        )


_CHAIN_STATEMENTS: dict[str, ChainStatements] = {}


# json.dumps with these options, without making an encoder at every call (several per entry and row).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def canonical_json(value: Mapping[str, Any]) -> str:
    """One spelling per value: sorted keys, no spaces, UTF-8 kept (the hash depends on it)."""
    return _CANONICAL.encode(value)


# A string as canonical_json spells it (ensure_ascii=False: json's encode_basestring, in C).
_json_string = json.encoder.encode_basestring
# canonical_json's spelling without the sort, for a mapping of scalars whose keys are already in sorted order.
_IN_ORDER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=str)


class AuditKeyError(RuntimeError):
    """The audit key file is missing or unreadable; the message says what to do."""


@dataclass(frozen=True)
class AuditKey:
    """The secret that keys the chain, kept in a file outside the database (mode 0600).

    `keyed_from_seq`: entries from this sequence number on are keyed. A desk created with a key
    has 1; a desk that had entries before it got a key (`desk audit-key`) keeps those older
    entries as plain SHA-256 links, covered from then on only by anchors.
    """

    secret: bytes
    keyed_from_seq: int = 1
    path: Path | None = None

    def mac(self, text: str) -> str:
        # hmac.digest: the one-shot C function, a fraction of the cost of an HMAC object; the same value.
        return hmac.digest(self.secret, text.encode("utf-8"), "sha256").hex()

    @classmethod
    def generate(cls, keyed_from_seq: int = 1) -> AuditKey:
        return cls(secrets.token_bytes(32), keyed_from_seq)

    def write(self, path: Path) -> None:
        """Write the key to a new file (never over an existing one), readable by its owner only."""
        document = {
            "version": 1,
            "secret": base64.b64encode(self.secret).decode(),
            "keyed_from_seq": self.keyed_from_seq,
            "created_utc": dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(timespec="seconds"),
        }
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            json.dump(document, file)
            file.write("\n")
            file.flush()
            os.fsync(file.fileno())

    @classmethod
    def load(cls, path: Path) -> AuditKey:
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            return cls(base64.b64decode(document["secret"]), int(document["keyed_from_seq"]), path)
        except FileNotFoundError:
            raise AuditKeyError(
                f"no audit key at {path}: `desk init` creates one (`desk audit-key` for a desk made before keys)"
            ) from None
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise AuditKeyError(f"cannot read the audit key {path}: {error}") from None


def entry_hash(
    prev_hash: str,
    seq: int,
    recorded_utc: dt.datetime,
    actor: str,
    action: str,
    subject: str,
    details: str,
    key: AuditKey | None = None,
) -> str:
    return _entry_hash(
        prev_hash, seq, recorded_utc.isoformat(timespec="microseconds"), actor, action, subject, details, key
    )


def _entry_hash(
    prev_hash: str,
    seq: int,
    recorded_utc: str,
    actor: str,
    action: str,
    subject: str,
    details: str,
    key: AuditKey | None,
) -> str:
    # canonical_json of {seq, recorded_utc, actor, action, subject, details}, spelt out in its sorted key order
    # with the encoder's own string spelling: the same text without a dict to build and sort (every entry).
    payload = (
        f'{{"action":{_json_string(action)},"actor":{_json_string(actor)},"details":{_json_string(details)},'
        f'"recorded_utc":{_json_string(recorded_utc)},"seq":{int.__repr__(seq)},"subject":{_json_string(subject)}}}'
    )
    if key is not None and seq >= key.keyed_from_seq:
        return key.mac(prev_hash + payload)
    return hashlib.sha256((prev_hash + payload).encode("utf-8")).hexdigest()


# --- rows in the chain ---------------------------------------------------------------------

# The tables whose every row the chain vouches for, with the label prefix of their rows.
TRACKED: dict[str, Table] = {
    "desk": DeskSettings.__table__,
    "policy_period": PolicyPeriod.__table__,
    "policy_file": RegisteredPolicy.__table__,
    "user": User.__table__,
    "detainer": Detainer.__table__,
    "event": Event.__table__,
    # Bearer tokens (only their SHA-256 is stored): each login's entry carries its new token's row, and
    # each logout, revocation or clean-up of expired tokens names the rows it deleted (null), so a token
    # row added, lengthened or deleted outside the desk shows — a token is someone's identity.
    "token": Token.__table__,
}
PRIMARY_KEYS = {
    "desk": "id",
    "policy_period": "id",
    "policy_file": "id",
    "user": "id",
    "detainer": "id",
    "event": "id",
    "token": "token_hash",
}
# In an entry's `rows`, a row's label mapped to null: the action deleted that row.
DELETED = None


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat(timespec="microseconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


# Columns added after rows were already in the chain (migration 0003). A row's digest includes them only
# when they hold a value, so a row written before they existed (null there) keeps its digest, while a
# value written into one outside the desk, or one cleared, still changes the digest.
LATER_COLUMNS: dict[str, frozenset[str]] = {
    "desk": frozenset({"place", "time_zone"}),
    "detainer": frozenset({"time_zone", "hold_until_utc", "hold_citation", "decided_by", "layers"}),
}


# In sorted order, so that a row's content is built in the order canonical_json would sort it into.
COLUMN_NAMES = {kind: tuple(sorted(column.name for column in table.columns)) for kind, table in TRACKED.items()}
# Every tracked column holds a scalar (none a JSON or array type; a test checks it): a row's content, built
# in sorted order, then has no mapping inside to sort, and _IN_ORDER spells it as canonical_json does.


def row_digest(key: AuditKey, kind: str, row: Mapping[str, Any]) -> str:
    """The keyed digest of a row's full content (all the table's columns, as stored; a column of
    `LATER_COLUMNS` only when it is not null)."""
    later = LATER_COLUMNS.get(kind, frozenset())
    content = {}
    for name in COLUMN_NAMES[kind]:
        value = row[name]
        if value is None:
            if name in later:
                continue
        elif isinstance(value, dt.date):  # _plain, inline: this runs for every column of every row written
            value = value.isoformat(timespec="microseconds") if isinstance(value, dt.datetime) else value.isoformat()
        content[name] = value
    return key.mac(f"row:{kind}:" + _IN_ORDER.encode(content))


def row_label(kind: str, row: Mapping[str, Any]) -> str:
    return f"{kind}:{row[PRIMARY_KEYS[kind]]}"


@dataclass(frozen=True)
class PendingEntry:
    """An entry to append when its transaction ends."""

    actor: str
    action: str
    subject: str
    details: Mapping[str, Any]


def append_and_commit(
    connection: Connection,
    entries: Sequence[PendingEntry],
    *,
    now_utc: dt.datetime,
    key: AuditKey | None,
    writes: Sequence[tuple[DriverInsert, Sequence[Mapping[str, Any]]]] = (),
) -> None:
    """Append entries in the caller's transaction, in order, and commit it; `writes` (inserts of rows,
    on the DBAPI cursor) are made first.

    Locks the chain's head row (PostgreSQL: SELECT … FOR UPDATE; on SQLite the transaction already
    holds the write lock), so concurrent transactions append one after another; the lock lasts until
    the commit, its fsync included, so everything that does not need the head is done before it is
    taken: the rows' inserts and the entries' JSON. On PostgreSQL the writes and the lock go in one round
    trip, and the entries, the head's move and the COMMIT in the next (psycopg's pipeline mode): the head
    stays locked for one round trip and the fsync, not one round trip each.
    """
    if not entries and not writes:
        connection.commit()
        return
    if key is None:
        raise AuditKeyError("the desk cannot write to its audit chain without the audit key (--audit-key)")
    dialect = connection.dialect
    statements = _CHAIN_STATEMENTS.get(dialect.name)
    if statements is None:
        statements = _CHAIN_STATEMENTS[dialect.name] = ChainStatements.of(dialect)
    # The database keeps microseconds; hash exactly what will be read back.
    recorded = now_utc.replace(tzinfo=None)
    recorded_text = recorded.isoformat(timespec="microseconds")
    texts = [canonical_json(entry.details) for entry in entries]
    cursor, head = driver_cursor(connection), driver_cursor(connection)
    with pipeline(connection):
        for statement, rows in writes:
            cursor.executemany(statement.sql, statement.rows(rows))
        if entries:
            head.execute(statements.lock_head)
    if not entries:
        connection.commit()
        return
    seq, previous = head.fetchone()
    processors = statements.insert_entries.processors
    rows = []
    for entry, text in zip(entries, texts, strict=True):
        seq += 1
        digest = _entry_hash(previous, seq, recorded_text, entry.actor, entry.action, entry.subject, text, key)
        rows.append(
            driver_values(processors, (seq, recorded, entry.actor, entry.action, entry.subject, text, previous, digest))
        )
        previous = digest
    with pipeline(connection):
        cursor.executemany(statements.insert_entries.sql, rows)
        cursor.execute(statements.move_head, (seq, previous))
        connection.commit()


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    entries: int
    head_hash: str
    first_broken_seq: int | None = None
    problem: str | None = None

    def describe(self) -> str:
        if self.ok:
            return f"audit chain intact: {self.entries} entries, head {self.head_hash}"
        if self.first_broken_seq is None:
            return f"audit chain broken: {self.problem}"
        return f"audit chain broken at entry {self.first_broken_seq}: {self.problem}"


def _check(
    entries: Iterable[AuditEntry], expected_seq: int, prev_hash: str, key: AuditKey, rows: dict[str, str | None]
) -> tuple[int, str, ChainReport | None]:
    for entry in entries:
        if entry.seq != expected_seq:
            problem = f"entry {expected_seq} is missing (the next entry is {entry.seq})"
            return expected_seq, prev_hash, ChainReport(False, expected_seq - 1, prev_hash, expected_seq, problem)
        if entry.prev_hash != prev_hash:
            problem = "its previous-hash does not match the hash of the entry before it"
            return expected_seq, prev_hash, ChainReport(False, expected_seq - 1, prev_hash, entry.seq, problem)
        recomputed = entry_hash(
            entry.prev_hash, entry.seq, entry.recorded_utc, entry.actor, entry.action, entry.subject, entry.details, key
        )
        if not hmac.compare_digest(recomputed, entry.hash):
            problem = "its contents do not match its hash (the entry was changed, or rehashed without the key)"
            return expected_seq, prev_hash, ChainReport(False, expected_seq - 1, prev_hash, entry.seq, problem)
        if '"rows"' in entry.details:
            written = json.loads(entry.details).get("rows")
            if isinstance(written, dict):
                rows.update(written)
        prev_hash = entry.hash
        expected_seq += 1
    return expected_seq, prev_hash, None


def _check_rows(
    session: Session, key: AuditKey, rows: dict[str, str | None], entries: int, head: str
) -> ChainReport | None:
    """Every row of the tracked tables must match the latest digest the chain holds for it (and no row the
    chain last records as deleted may be there)."""
    for kind, table in TRACKED.items():
        for row in session.execute(select(table)).mappings().yield_per(VERIFY_BATCH):
            label = row_label(kind, row)
            expected = rows.pop(label, DELETED)
            if expected is DELETED:
                problem = f"row {label} is not in the audit chain (written outside the desk)"
            elif not hmac.compare_digest(expected, row_digest(key, kind, row)):
                problem = f"row {label} differs from what the audit chain recorded (changed outside the desk)"
            else:
                continue
            return ChainReport(False, entries, head, None, problem)
    missing = [label for label, digest in rows.items() if digest is not DELETED]
    if missing:
        label = min(missing)
        return ChainReport(False, entries, head, None, f"row {label} is recorded in the audit chain but missing")
    return None


def verify_chain(
    session: Session, key: AuditKey, *, anchors: Sequence[Mapping[str, Any]] = (), check_rows: bool = True
) -> ChainReport:
    """Walk the whole chain in order, in batches; report the first entry that does not fit, then
    check that it extends each anchor, then the tracked tables' rows against it."""
    expected_seq, prev_hash = 1, GENESIS_HASH
    rows: dict[str, str | None] = {}
    while True:
        batch = (
            session.execute(
                select(AuditEntry).where(AuditEntry.seq >= expected_seq).order_by(AuditEntry.seq).limit(VERIFY_BATCH)
            )
            .scalars()
            .all()
        )
        if not batch:
            break
        expected_seq, prev_hash, broken = _check(batch, expected_seq, prev_hash, key, rows)
        session.expunge_all()
        if broken is not None:
            return broken
    entries = expected_seq - 1
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one_or_none()
    if head is None or head.seq != entries or head.hash != prev_hash:
        # Entries were removed from the end (or the head was edited): the head remembers more.
        return ChainReport(
            False,
            entries,
            prev_hash,
            entries + 1 if head is None or head.seq > entries else entries,
            "the chain's recorded head does not match its last entry (entries removed from the end?)",
        )
    for anchor in anchors:
        if (problem := check_anchor(session, key, anchor)) is not None:
            seq = anchor.get("seq") if isinstance(anchor.get("seq"), int) else None
            return ChainReport(False, entries, prev_hash, seq, problem)
    if check_rows and (broken := _check_rows(session, key, rows, entries, prev_hash)) is not None:
        return broken
    return ChainReport(True, entries, prev_hash)


# --- anchors -------------------------------------------------------------------------------


def make_anchor(key: AuditKey, seq: int, head_hash: str, now_utc: dt.datetime) -> dict[str, Any]:
    """A signed statement of the chain's head, to keep somewhere the database's users cannot write."""
    body = {"seq": seq, "hash": head_hash, "time_utc": now_utc.replace(tzinfo=None).isoformat(timespec="seconds")}
    return {**body, "signature": key.mac("anchor:" + canonical_json(body))}


def current_anchor(session: Session, key: AuditKey, now_utc: dt.datetime) -> dict[str, Any]:
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one()
    return make_anchor(key, head.seq, head.hash, now_utc)


def read_anchors(path: Path) -> list[dict[str, Any]]:
    """The anchors of a file: one JSON object, or one per line (the server appends them)."""
    text = path.read_text(encoding="utf-8").strip()
    if not text:
        raise ValueError(f"{path} holds no anchor")
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return document if isinstance(document, list) else [document]


def check_anchor(session: Session, key: AuditKey, anchor: Mapping[str, Any]) -> str | None:
    """None if the chain still extends the anchored head; else what is wrong."""
    try:
        body = {"seq": int(anchor["seq"]), "hash": str(anchor["hash"]), "time_utc": str(anchor["time_utc"])}
        signature = str(anchor["signature"])
    except (KeyError, TypeError, ValueError):
        return "not an anchor (it needs seq, hash, time_utc and signature)"
    if not hmac.compare_digest(signature, key.mac("anchor:" + canonical_json(body))):
        return f"the anchor of entry {body['seq']} is not signed with this desk's audit key"
    if body["seq"] == 0:
        return None
    recorded = session.execute(select(AuditEntry.hash).where(AuditEntry.seq == body["seq"])).scalar()
    if recorded is None:
        return f"the chain no longer has entry {body['seq']} anchored at {body['time_utc']} (entries removed)"
    if recorded != body["hash"]:
        return f"entry {body['seq']} is not the one anchored at {body['time_utc']} (the chain was rewritten)"
    return None


def entries_page(session: Session, after_seq: int, limit: int) -> list[AuditEntry]:
    return list(
        session.execute(select(AuditEntry).where(AuditEntry.seq > after_seq).order_by(AuditEntry.seq).limit(limit))
        .scalars()
        .all()
    )
