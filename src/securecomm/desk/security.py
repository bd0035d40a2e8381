"""Who may do what: password hashing (argon2), bearer tokens and roles.

Roles (issue #7): intake creates detainers and records custody events; reviewer decides
the cases in the review queue; supervisor manages users and sees and may do everything;
auditor sees reports and the audit chain, never personal data.
"""

from __future__ import annotations

import datetime as dt
import functools
import gzip
import hashlib
import re
import secrets
from enum import StrEnum
from importlib import resources
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

DEFAULT_TOKEN_LIFETIME: Final = dt.timedelta(hours=1)
# Consecutive failed logins that lock an account for LOCK_DURATION; the lock expires by itself
# (a stranger must not be able to shut a user out for good), and a supervisor may lift it sooner.
MAX_FAILED_LOGINS: Final = 10
LOCK_DURATION: Final = dt.timedelta(minutes=15)
MIN_PASSWORD_LENGTH: Final = 12
USERNAME_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"
# Names the desk itself writes as the actor of audit entries: no user may take them.
RESERVED_USERNAMES: Final = frozenset({"system", "anonymous", "unknown", "server", "cli", "root", "desk"})
# 20,000 common passwords (Royce Williams' list, shipped by Django as
# django/contrib/auth/common-passwords.txt.gz, BSD-3-Clause; see data/SOURCE.md).
COMMON_PASSWORDS_FILE: Final = "common-passwords.txt.gz"


class Role(StrEnum):
    INTAKE = "intake"
    REVIEWER = "reviewer"
    SUPERVISOR = "supervisor"
    AUDITOR = "auditor"


class Permission(StrEnum):
    CREATE_DETAINER = "create detainers"
    READ_DETAINER = "read detainers (personal data)"
    REVIEW = "review detainers"
    RECORD_EVENT = "record custody events"
    READ_HOLDS = "list overdue holds (personal data)"
    READ_REPORTS = "read reports"
    READ_AUDIT = "read the audit chain"
    MANAGE_USERS = "manage users"
    READ_DESK = "read the desk's settings"


ROLE_PERMISSIONS: Final[dict[Role, frozenset[Permission]]] = {
    Role.INTAKE: frozenset(
        {
            Permission.CREATE_DETAINER,
            Permission.READ_DETAINER,
            Permission.RECORD_EVENT,
            Permission.READ_HOLDS,
            Permission.READ_DESK,
        }
    ),
    Role.REVIEWER: frozenset(
        {Permission.READ_DETAINER, Permission.REVIEW, Permission.READ_HOLDS, Permission.READ_DESK}
    ),
    Role.SUPERVISOR: frozenset(Permission),
    Role.AUDITOR: frozenset({Permission.READ_REPORTS, Permission.READ_AUDIT, Permission.READ_DESK}),
}


def allowed(role: str, permission: Permission) -> bool:
    try:
        return permission in ROLE_PERMISSIONS[Role(role)]
    except ValueError:
        return False


def roles_with(permission: Permission) -> list[str]:
    return [role.value for role, permissions in ROLE_PERMISSIONS.items() if permission in permissions]


# argon2id with argon2-cffi's defaults (RFC 9106 low-memory profile: 64 MiB, 3 passes).
_hasher = PasswordHasher()


def use_password_hasher(hasher: PasswordHasher) -> None:
    """Swap the hasher (tests use cheap parameters; existing hashes still verify)."""
    global _hasher
    _hasher = hasher


def check_username(username: str) -> str | None:
    """The problem with a username, or None."""
    if not re.fullmatch(USERNAME_PATTERN, username):
        return "must be 1–64 letters, digits or . _ @ - and start with a letter or digit"
    if username.lower() in RESERVED_USERNAMES:
        return f"{username!r} is reserved for the desk's own audit entries"
    return None


@functools.cache
def common_passwords() -> frozenset[str]:
    data = (resources.files("securecomm.desk") / "data" / COMMON_PASSWORDS_FILE).read_bytes()
    return frozenset(line.strip().lower() for line in gzip.decompress(data).decode("utf-8").splitlines() if line)


def check_password(password: str, username: str | None = None) -> str | None:
    """The problem with a new password, or None (CJIS 5.6.2.1.1: length, no common or derived passwords)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"must be at least {MIN_PASSWORD_LENGTH} characters"
    if "\x00" in password:
        return "must not contain NUL characters"
    folded = password.strip().lower()
    if username is not None and username.lower() in folded:
        return "must not contain the username"
    if folded in common_passwords():
        return "is in the list of common passwords; choose another"
    return None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# A hash to verify against when the user does not exist, so that the answer takes as long
# as for a real user and does not reveal which usernames exist.
_DUMMY_HASH: str | None = None


def spend_verification_time(password: str) -> None:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))
    verify_password(_DUMMY_HASH, password)


def needs_rehash(password_hash: str) -> bool:
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


def new_token() -> tuple[str, str]:
    """A fresh bearer token and the hash under which it is stored."""
    token = secrets.token_urlsafe(32)
    return token, token_hash(token)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()
