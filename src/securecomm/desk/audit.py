"""The audit log: an append-only chain of entries, each hashing the one before.

Every change and every read of personal data appends one entry in the same transaction as
the thing it records, so an entry exists exactly when its action happened. An entry names
the actor, the action and the subject (`detainer:42`) and carries details that are not
personal data — auditors read this log, and they may not see who was detained.

`hash = SHA-256(previous hash + canonical JSON of the entry)`. Editing, deleting,
reordering or inserting an entry breaks the chain from that entry on; `verify_chain`
names the first entry that does not fit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.orm import Session

from securecomm.desk.models import AuditEntry, AuditHead

GENESIS_HASH = "0" * 64
LOG = AuditEntry.__table__
HEAD = AuditHead.__table__
LOCK_HEAD = select(HEAD.c.seq, HEAD.c.hash).where(HEAD.c.id == 1).with_for_update()
INSERT_ENTRY = insert(LOG)
MOVE_HEAD = update(HEAD).where(HEAD.c.id == 1).values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
VERIFY_BATCH = 5000


def canonical_json(value: Mapping[str, Any]) -> str:
    """One spelling per value: sorted keys, no spaces, UTF-8 kept (the hash depends on it)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def entry_hash(
    prev_hash: str, seq: int, recorded_utc: dt.datetime, actor: str, action: str, subject: str, details: str
) -> str:
    payload = canonical_json(
        {
            "seq": seq,
            "recorded_utc": recorded_utc.isoformat(timespec="microseconds"),
            "actor": actor,
            "action": action,
            "subject": subject,
            "details": details,
        }
    )
    return hashlib.sha256((prev_hash + payload).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class PendingEntry:
    """An entry to append when its transaction ends."""

    actor: str
    action: str
    subject: str
    details: Mapping[str, Any]


def append(connection: Connection, entries: Sequence[PendingEntry], *, now_utc: dt.datetime) -> None:
    """Append entries in the caller's transaction, in order.

    Locks the chain's head row first (PostgreSQL: SELECT … FOR UPDATE; on SQLite the
    transaction already holds the write lock), so concurrent transactions append one after
    another. Call it last in a transaction, so the lock is held as briefly as possible.
    """
    if not entries:
        return
    head = connection.execute(LOCK_HEAD).one()
    # The database keeps microseconds; hash exactly what will be read back.
    recorded = now_utc.replace(tzinfo=None)
    seq, previous = head.seq, head.hash
    rows = []
    for entry in entries:
        seq += 1
        text = canonical_json(entry.details)
        digest = entry_hash(previous, seq, recorded, entry.actor, entry.action, entry.subject, text)
        rows.append(
            {
                "seq": seq,
                "recorded_utc": recorded,
                "actor": entry.actor,
                "action": entry.action,
                "subject": entry.subject,
                "details": text,
                "prev_hash": previous,
                "hash": digest,
            }
        )
        previous = digest
    connection.execute(INSERT_ENTRY, rows)
    connection.execute(MOVE_HEAD, {"new_seq": seq, "new_hash": previous})


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
        return f"audit chain broken at entry {self.first_broken_seq}: {self.problem}"


def _check(entries: Iterable[AuditEntry], expected_seq: int, prev_hash: str) -> tuple[int, str, ChainReport | None]:
    for entry in entries:
        if entry.seq != expected_seq:
            problem = f"entry {expected_seq} is missing (the next entry is {entry.seq})"
            return expected_seq, prev_hash, ChainReport(False, expected_seq - 1, prev_hash, expected_seq, problem)
        if entry.prev_hash != prev_hash:
            problem = "its previous-hash does not match the hash of the entry before it"
            return expected_seq, prev_hash, ChainReport(False, expected_seq - 1, prev_hash, entry.seq, problem)
        recomputed = entry_hash(
            entry.prev_hash, entry.seq, entry.recorded_utc, entry.actor, entry.action, entry.subject, entry.details
        )
        if recomputed != entry.hash:
            problem = "its contents do not match its hash (the entry was changed)"
            return expected_seq, prev_hash, ChainReport(False, expected_seq - 1, prev_hash, entry.seq, problem)
        prev_hash = entry.hash
        expected_seq += 1
    return expected_seq, prev_hash, None


def verify_chain(session: Session) -> ChainReport:
    """Walk the whole chain in order, in batches; report the first entry that does not fit."""
    expected_seq, prev_hash = 1, GENESIS_HASH
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
        expected_seq, prev_hash, broken = _check(batch, expected_seq, prev_hash)
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
    return ChainReport(True, entries, prev_hash)


def entries_page(session: Session, after_seq: int, limit: int) -> list[AuditEntry]:
    return list(
        session.execute(select(AuditEntry).where(AuditEntry.seq > after_seq).order_by(AuditEntry.seq).limit(limit))
        .scalars()
        .all()
    )
