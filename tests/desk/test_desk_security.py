"""Security of the desk, on SQLite and PostgreSQL: tokens and their expiry, lockout, roles on every
route, argon2 hashes, and the append-only hash-chained audit log."""

import itertools
import json

import pytest
from sqlalchemy import select, text

from securecomm.desk.models import AuditEntry, User
from securecomm.desk.security import ROLE_PERMISSIONS, Permission, Role

from .conftest import PASSWORD

THURSDAY_5PM = "2014-03-06T17:00:00"


def login(desk, username, password):
    return desk.client.post("/api/v1/auth/token", json={"username": username, "password": password})


def test_passwords_are_stored_as_argon2_hashes(desk):
    with desk.database.read() as session:
        hashes = session.execute(select(User.password_hash)).scalars().all()
    assert hashes and all(value.startswith("$argon2id$") for value in hashes)
    assert all(PASSWORD not in value for value in hashes)


def test_no_token_or_a_bad_one_is_401(desk):
    assert desk.client.get("/api/v1/review-queue").status_code == 401
    response = desk.client.get("/api/v1/review-queue", headers={"Authorization": "Bearer not-a-token"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert login(desk, "reviewer", "wrong password").status_code == 401
    assert login(desk, "nobody", PASSWORD).status_code == 401


def test_tokens_expire(desk):
    headers = desk.headers("reviewer")
    token = login(desk, "reviewer", PASSWORD).json()
    assert token["token_type"] == "bearer"
    assert token["expires_at_utc"] == "2014-03-05T15:00:00"  # one hour from the clock's 14:00 UTC
    assert desk.client.get("/api/v1/review-queue", headers=headers).status_code == 200
    desk.clock.advance(minutes=61)
    response = desk.client.get("/api/v1/review-queue", headers=headers)
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


# (method, path, body, the permission it needs)
ROUTES = [
    (
        "post",
        "/detainers",
        {"booking_ref": "B-9", "detainer_number": "D-9", "received_at": "2014-03-05T09:00:00", "issuing_office": "ERO"},
        Permission.CREATE_DETAINER,
    ),
    ("get", "/detainers/{id}", None, Permission.READ_DETAINER),
    ("get", "/review-queue", None, Permission.REVIEW),
    ("post", "/detainers/{id}/review", {"decision": "decline", "reason": "checked"}, Permission.REVIEW),
    ("post", "/detainers/{id}/events", {"event": "release_eligible", "at": THURSDAY_5PM}, Permission.RECORD_EVENT),
    ("get", "/holds/overdue", None, Permission.READ_HOLDS),
    ("get", "/reports/quarterly?quarter=2014Q1", None, Permission.READ_REPORTS),
    ("get", "/audit/verify", None, Permission.READ_AUDIT),
    ("get", "/audit/entries", None, Permission.READ_AUDIT),
    ("get", "/users", None, Permission.MANAGE_USERS),
    ("post", "/users", {"username": "newcomer", "password": PASSWORD, "role": "intake"}, Permission.MANAGE_USERS),
    ("get", "/desk", None, Permission.READ_DESK),
]


@pytest.mark.parametrize("role", [role.value for role in Role])
def test_roles_are_enforced_on_every_route(desk, role):
    pending = desk.intake()  # awaiting review
    seen = set()
    for method, path, body, permission in ROUTES:
        url = path.format(id=pending["id"])
        response = desk.get(url, role) if method == "get" else desk.post(url, role, body)
        allowed = permission in ROLE_PERMISSIONS[Role(role)]
        assert (response.status_code != 403) == allowed, (role, method, url, response.status_code, response.text)
        assert response.status_code < 500
        if not allowed:
            assert role in response.json()["detail"]
        seen.add(permission)
    assert seen == set(Permission)
    denied = [e for e in desk.get("/audit/entries?limit=1000", "auditor").json() if e["action"] == "access.denied"]
    assert len(denied) == sum(permission not in ROLE_PERMISSIONS[Role(role)] for *_, permission in ROUTES)


def test_the_auditor_sees_reports_and_the_chain_but_no_personal_data(desk):
    detainer = desk.intake(booking_ref="SECRET-REF-77", final_order=True)
    assert desk.get(f"/detainers/{detainer['id']}", "auditor").status_code == 403
    assert desk.get("/holds/overdue", "auditor").status_code == 403
    assert desk.get("/reports/quarterly?quarter=2014Q1", "auditor").status_code == 200
    entries = desk.get("/audit/entries?limit=1000", "auditor").json()
    assert "SECRET-REF-77" not in json.dumps(entries)
    assert "ERO Hartford" not in json.dumps(entries)


def test_every_change_and_every_read_of_personal_data_is_audited(desk):
    detainer = desk.intake(release_eligible_at=THURSDAY_5PM)
    subject = f"detainer:{detainer['id']}"
    desk.get(f"/detainers/{detainer['id']}", "reviewer")
    desk.get("/review-queue", "reviewer")
    desk.post(f"/detainers/{detainer['id']}/review", "reviewer", {"decision": "honor", "reason": "risk"})
    desk.post(f"/detainers/{detainer['id']}/events", "intake", {"event": "released", "at": "2014-03-07T10:00:00"})
    desk.get("/holds/overdue", "intake")
    desk.headers("auditor")  # log in now: a login is audited too
    entries = desk.get("/audit/entries?limit=1000", "supervisor").json()
    trail = [(e["actor"], e["action"]) for e in entries if e["subject"] in (subject, "review_queue", "holds")]
    assert trail == [
        ("intake", "detainer.create"),
        ("reviewer", "detainer.read"),
        ("reviewer", "review_queue.read"),
        ("reviewer", "detainer.review"),
        ("reviewer", "ice.notify"),
        ("intake", "detainer.event"),
        ("intake", "holds.read"),
    ]
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    assert all(a["hash"] == b["prev_hash"] for a, b in itertools.pairwise(entries))
    verified = desk.get("/audit/verify", "auditor").json()
    assert verified["ok"] is True
    assert verified["entries"] == len(entries)
    assert verified["head_hash"] == entries[-1]["hash"]


def test_the_audit_log_is_append_only_in_the_database(desk):
    desk.intake()
    for statement in ("UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log"):
        with pytest.raises(Exception, match="append-only"), desk.database.write() as session:
            session.execute(text(statement))


def _drop_append_only_triggers(session, dialect):
    if dialect == "sqlite":
        session.execute(text("DROP TRIGGER audit_log_no_update"))
        session.execute(text("DROP TRIGGER audit_log_no_delete"))
    else:
        session.execute(text("DROP TRIGGER audit_log_no_change ON audit_log"))


@pytest.mark.parametrize("tampering", ["edit", "delete", "truncate_tail"])
def test_verify_names_the_first_broken_entry(desk, tampering):
    for number in range(3):
        desk.intake(booking_ref=f"B-{number}")
    with desk.database.read() as session:
        count = len(session.execute(select(AuditEntry.seq)).all())
    target = 5
    with desk.database.write() as session:
        _drop_append_only_triggers(session, desk.database.dialect)
        if tampering == "edit":
            session.execute(text("UPDATE audit_log SET details = '{}' WHERE seq = :seq"), {"seq": target})
        elif tampering == "delete":
            session.execute(text("DELETE FROM audit_log WHERE seq = :seq"), {"seq": target})
        else:
            session.execute(text("DELETE FROM audit_log WHERE seq = :seq"), {"seq": count})
    result = desk.get("/audit/verify", "auditor").json()
    assert result["ok"] is False
    assert result["first_broken_seq"] == (count if tampering == "truncate_tail" else target)
    assert f"entry {result['first_broken_seq']}" in result["message"]
