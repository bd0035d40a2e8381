"""Issue #13, on SQLite and PostgreSQL through the API: lock-out that strangers cannot turn into a
weapon, the keyed and anchored audit chain with the rows in it, the account life cycle, security
headers and docs behind login, and the input rules (size limit, idempotency, duplicates, policies,
event ordering). Each test names the numbered failure of the issue it proves fixed."""

import json
import stat

import pytest
from sqlalchemy import select, text

from securecomm.desk import audit
from securecomm.desk.models import AuditEntry, AuditHead
from securecomm.desk.security import MAX_FAILED_LOGINS

from .conftest import PASSWORD, cli

THURSDAY_5PM = "2014-03-06T17:00:00"


def login(desk, username, password):
    return desk.client.post("/api/v1/auth/token", json={"username": username, "password": password})


def fail_logins(desk, username, count):
    """`count` wrong passwords that reach the password check, waiting out the back-off (429) as told."""
    statuses = []
    done = 0
    while done < count:
        response = login(desk, username, f"wrong guess {done}")
        if response.status_code == 429:
            desk.clock.advance(seconds=int(response.headers["retry-after"]))
            continue
        statuses.append(response.status_code)
        done += 1
    return statuses


def audit_trail(desk):
    return desk.get("/audit/entries?limit=1000", "auditor").json()


def body(number, **facts):
    return {
        "booking_ref": f"B-{number}",
        "detainer_number": f"D-{number}",
        "received_at": "2014-03-05T09:00:00",
        "issuing_office": "ERO Hartford",
        **facts,
    }


# --- 1. lock-out ---------------------------------------------------------------------------


def test_1_a_stranger_locking_the_admin_does_not_stop_the_admins_live_token(desk):
    admin = desk.headers("supervisor")
    statuses = fail_logins(desk, "supervisor", MAX_FAILED_LOGINS + 2)
    assert statuses[: MAX_FAILED_LOGINS - 1] == [401] * (MAX_FAILED_LOGINS - 1)
    assert statuses[MAX_FAILED_LOGINS - 1 :] == [403, 403, 403]  # locked (then refused without a password check)
    assert desk.client.get("/api/v1/users", headers=admin).status_code == 200


def test_1_failed_logins_back_off_exponentially_per_account_and_per_address(desk):
    waits = []
    for attempt in range(7):
        response = login(desk, "reviewer", f"guess {attempt}")
        if response.status_code == 429:
            waits.append(int(response.headers["retry-after"]))
            desk.clock.advance(seconds=waits[-1])
    assert waits == [1, 2], waits  # after 3 free failures: 1 s, 2 s, then (next turn) 4 s …
    throttled = login(desk, "reviewer", PASSWORD)  # even the right password waits its turn
    assert throttled.status_code == 429 and throttled.headers["retry-after"] == "4"
    # Per address: guessing many usernames from one address is slowed down too.
    codes = [login(desk, f"someone{n}", "x" * 12).status_code for n in range(14)]
    assert 429 in codes and codes[:5] == [401] * 5


def test_1_the_temporary_lock_expires_by_itself(desk):
    desk.headers("supervisor")
    fail_logins(desk, "intake", MAX_FAILED_LOGINS)
    locked = login(desk, "intake", PASSWORD)
    assert locked.status_code in (403, 429)
    desk.clock.advance(minutes=16)
    assert login(desk, "intake", PASSWORD).status_code == 200
    users = {user["username"]: user for user in desk.get("/users", "supervisor").json()}
    assert users["intake"]["locked"] is False and users["intake"]["failed_logins"] == 0


def test_1_a_supervisor_unlock_revokes_earlier_tokens(desk):
    old = desk.headers("intake")
    desk.headers("supervisor")  # (logged in before the guessing from this address begins)
    fail_logins(desk, "intake", MAX_FAILED_LOGINS)
    assert desk.get("/users", "supervisor").json()[1]["locked"] is True
    assert desk.post("/users/intake/unlock", "supervisor", {}).status_code == 200
    response = desk.client.get("/api/v1/holds/overdue", headers=old)
    assert response.status_code == 401
    retry = login(desk, "intake", PASSWORD)  # the address's own back-off still runs
    assert retry.status_code == 429
    desk.clock.advance(seconds=int(retry.headers["retry-after"]))
    assert login(desk, "intake", PASSWORD).status_code == 200


# --- 2. the audit chain --------------------------------------------------------------------


def _drop_triggers(session, dialect):
    if dialect == "sqlite":
        session.execute(text("DROP TRIGGER audit_log_no_update"))
        session.execute(text("DROP TRIGGER audit_log_no_delete"))
    else:
        session.execute(text("DROP TRIGGER audit_log_no_change ON audit_log"))


def test_2_a_detainer_row_changed_outside_the_desk_is_caught(desk):
    detainer = desk.intake(final_order=True, release_eligible_at=THURSDAY_5PM)
    assert desk.get("/audit/verify", "auditor").json()["ok"] is True
    with desk.database.write() as session:
        session.execute(
            text("UPDATE detainers SET hold_until = '2014-12-24 17:00:00.000000' WHERE id = :id"),
            {"id": detainer["id"]},
        )
    result = desk.get("/audit/verify", "auditor").json()
    assert result["ok"] is False
    assert f"row detainer:{detainer['id']} differs" in result["message"]


def test_2_event_rows_deleted_or_added_outside_the_desk_are_caught(desk):
    detainer = desk.intake(public_safety_risk=False)  # declined: a notice event
    with desk.database.write() as session:
        session.execute(text("DELETE FROM events WHERE detainer_id = :id"), {"id": detainer["id"]})
    result = desk.get("/audit/verify", "auditor").json()
    assert result["ok"] is False and "missing" in result["message"]


def test_2_token_rows_are_in_the_chain(desk):
    """A DBA without the key who adds a token row (to act as a supervisor), lengthens one, or deletes one
    is caught; the desk's own logins, logouts, revocations and clean-ups of expired tokens are recorded."""
    import datetime as dt

    from securecomm.desk.security import token_hash

    first = token_hash(desk.headers("supervisor")["Authorization"].split()[1])
    assert desk.client.post("/api/v1/auth/logout", headers=desk.headers("intake")).status_code == 204
    desk.clock.advance(days=2)  # the supervisor's first token has expired: the next login deletes it
    desk.tokens.clear()
    live = token_hash(desk.headers("supervisor")["Authorization"].split()[1])
    desk.headers("auditor")
    assert desk.get("/audit/verify", "auditor").json()["ok"] is True
    entries = audit_trail(desk)
    logins = [e for e in entries if e["action"] == "auth.login" and e["subject"] == "user:supervisor"]
    assert logins[0]["details"]["rows"] == {f"token:{first}": logins[0]["details"]["rows"][f"token:{first}"]}
    assert logins[-1]["details"]["rows"][f"token:{first}"] is None  # the expired one, deleted
    assert isinstance(logins[-1]["details"]["rows"][f"token:{live}"], str)
    (logout,) = [e for e in entries if e["action"] == "auth.logout"]
    assert list(logout["details"]["rows"].values()) == [None]  # the token it revoked

    def verify_after(statement, **values):
        with desk.database.write() as session:
            session.execute(text(statement), values)
        return desk.desk.verify_audit()

    with desk.database.read() as session:
        supervisor_id = session.execute(text("SELECT id FROM users WHERE username = 'supervisor'")).scalar_one()
    forged = "f" * 64
    report = verify_after(
        "INSERT INTO tokens (token_hash, user_id, issued_utc, expires_utc) VALUES (:h, :u, :t, :t2)",
        h=forged,
        u=supervisor_id,
        t=desk.clock.utc,
        t2=desk.clock.utc + dt.timedelta(days=365),
    )
    assert (
        not report.ok and report.problem == f"row token:{forged} is not in the audit chain (written outside the desk)"
    )
    assert verify_after("DELETE FROM tokens WHERE token_hash = :h", h=forged).ok
    report = verify_after(
        "INSERT INTO tokens (token_hash, user_id, issued_utc, expires_utc) VALUES (:h, :u, :t, :t)",
        h=first,
        u=supervisor_id,
        t=desk.clock.utc,
    )
    assert not report.ok and f"row token:{first} is not in the audit chain" in report.problem  # deleted, back
    assert verify_after("DELETE FROM tokens WHERE token_hash = :h", h=first).ok
    report = verify_after("UPDATE tokens SET expires_utc = :t WHERE token_hash = :h", t=dt.datetime(2030, 1, 1), h=live)
    assert not report.ok and f"row token:{live} differs" in report.problem
    report = verify_after("DELETE FROM tokens WHERE token_hash = :h", h=live)
    assert not report.ok and f"row token:{live} is recorded in the audit chain but missing" in report.problem


def test_2_a_chain_recomputed_without_the_key_is_caught(desk):
    for number in range(3):
        desk.intake(booking_ref=f"B-{number}")
    victim = 2
    with desk.database.write() as session:
        _drop_triggers(session, desk.database.dialect)
        session.execute(text("DELETE FROM audit_log WHERE subject = :s"), {"s": f"detainer:{victim}"})
        session.execute(text("DELETE FROM events WHERE detainer_id = :id"), {"id": victim})
        session.execute(text("DELETE FROM detainers WHERE id = :id"), {"id": victim})
        # Renumber and recompute the chain as SHA-256, the way it was made before it was keyed.
        entries = session.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars().all()
        rows = [(e.recorded_utc, e.actor, e.action, e.subject, e.details) for e in entries]
        session.expunge_all()
        session.execute(text("DELETE FROM audit_log"))
        previous = audit.GENESIS_HASH
        for seq, (recorded, actor, action, subject, details) in enumerate(rows, start=1):
            digest = audit.entry_hash(previous, seq, recorded, actor, action, subject, details)
            session.add(
                AuditEntry(
                    seq=seq,
                    recorded_utc=recorded,
                    actor=actor,
                    action=action,
                    subject=subject,
                    details=details,
                    prev_hash=previous,
                    hash=digest,
                )
            )
            previous = digest
        session.flush()
        session.execute(text("UPDATE audit_head SET seq = :seq, hash = :hash"), {"seq": len(rows), "hash": previous})
    result = desk.get("/audit/verify", "auditor").json()
    assert result["ok"] is False
    assert result["first_broken_seq"] == 1 and "without the key" in result["message"]


def test_2_entries_cut_from_the_end_with_the_head_moved_back_are_caught_by_an_anchor(desk):
    detainer = desk.intake()
    desk.get(f"/detainers/{detainer['id']}", "reviewer")
    before = desk.desk.anchor()
    desk.get(f"/detainers/{detainer['id']}", "reviewer")
    desk.get(f"/detainers/{detainer['id']}", "reviewer")
    anchor = desk.desk.anchor()
    with desk.database.write() as session:
        _drop_triggers(session, desk.database.dialect)
        session.execute(text("DELETE FROM audit_log WHERE seq > :seq"), {"seq": before["seq"]})
        session.execute(
            text("UPDATE audit_head SET seq = :seq, hash = :hash"), {"seq": before["seq"], "hash": before["hash"]}
        )
    assert desk.desk.verify_audit().ok  # consistent in itself: only a copy of the head kept elsewhere shows it
    assert desk.desk.verify_audit([before]).ok
    report = desk.desk.verify_audit([anchor])
    assert not report.ok and f"no longer has entry {anchor['seq']}" in report.problem


def test_2_a_rewrite_by_someone_with_the_key_is_caught_by_an_anchor(desk):
    for number in range(2):
        desk.intake(booking_ref=f"B-{number}")
    anchor = desk.desk.anchor()
    key = desk.desk.audit_key
    with desk.database.write() as session:
        _drop_triggers(session, desk.database.dialect)
        session.execute(text("UPDATE audit_log SET actor = 'someone else' WHERE seq = 3"))
        entries = session.execute(select(AuditEntry).order_by(AuditEntry.seq)).scalars().all()
        previous = audit.GENESIS_HASH
        for entry in entries:
            session.refresh(entry)
            entry.prev_hash = previous
            entry.hash = audit.entry_hash(
                previous, entry.seq, entry.recorded_utc, entry.actor, entry.action, entry.subject, entry.details, key
            )
            previous = entry.hash
        session.flush()
        session.execute(text("UPDATE audit_head SET hash = :hash"), {"hash": previous})
    assert desk.desk.verify_audit().ok
    report = desk.desk.verify_audit([anchor])
    assert not report.ok and "rewritten" in report.problem


def test_2_every_change_carries_its_rows(desk):
    detainer = desk.intake(final_order=True, release_eligible_at=THURSDAY_5PM)
    desk.post(f"/detainers/{detainer['id']}/events", "intake", {"event": "released", "at": "2014-03-07T10:00:00"})
    desk.post("/users", "supervisor", {"username": "clerk2", "password": PASSWORD, "role": "intake"})
    by_action = {}
    for entry in audit_trail(desk):
        by_action.setdefault(entry["action"], []).append(entry)
    assert f"detainer:{detainer['id']}" in by_action["detainer.create"][-1]["details"]["rows"]
    event_rows = by_action["detainer.event"][-1]["details"]["rows"]
    assert f"detainer:{detainer['id']}" in event_rows and any(label.startswith("event:") for label in event_rows)
    assert any(label.startswith("user:") for label in by_action["user.create"][-1]["details"]["rows"])
    assert any(label.startswith("policy_period:") for label in by_action["policy.set"][0]["details"]["rows"])
    assert "SECRET" not in json.dumps(by_action)


# --- 4. accounts ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "password", "problem"),
    [
        ("clerk3", "password", "at least 12"),
        ("clerk3", "12345678", "at least 12"),
        ("clerk3", "q1w2e3r4t5y6", "common passwords"),
        ("clerk3-long-name", "clerk3-long-name", "username"),
        ("clerk3", "my clerk3 password", "username"),
        ("system", PASSWORD, "reserved"),
        ("Anonymous", PASSWORD, "reserved"),
    ],
)
def test_4_weak_passwords_and_reserved_names_are_refused(desk, username, password, problem):
    response = desk.post("/users", "supervisor", {"username": username, "password": password, "role": "intake"})
    assert response.status_code == 422, response.text
    assert problem in json.dumps(response.json())


def test_4_changing_ones_password_revokes_earlier_tokens(desk):
    old = desk.headers("reviewer")
    wrong = desk.client.post(
        "/api/v1/auth/password",
        headers=old,
        json={"current_password": "not it at all", "new_password": "a brand new passphrase"},
    )
    assert wrong.status_code == 403
    changed = desk.client.post(
        "/api/v1/auth/password",
        headers=old,
        json={"current_password": PASSWORD, "new_password": "a brand new passphrase"},
    )
    assert changed.status_code == 200, changed.text
    assert desk.client.get("/api/v1/review-queue", headers=old).status_code == 401
    new = {"Authorization": f"Bearer {changed.json()['access_token']}"}
    assert desk.client.get("/api/v1/review-queue", headers=new).status_code == 200
    assert login(desk, "reviewer", PASSWORD).status_code == 401
    assert login(desk, "reviewer", "a brand new passphrase").status_code == 200


def test_4_an_admin_reset_forces_a_change_at_the_next_login(desk):
    old = desk.headers("intake")
    reset = desk.post("/users/intake/password", "supervisor", {"new_password": "temporary passphrase 1"})
    assert reset.status_code == 200 and reset.json()["must_change_password"] is True
    assert desk.client.get("/api/v1/holds/overdue", headers=old).status_code == 401
    token = login(desk, "intake", "temporary passphrase 1").json()
    assert token["must_change_password"] is True
    headers = {"Authorization": f"Bearer {token['access_token']}"}
    refused = desk.client.get("/api/v1/holds/overdue", headers=headers)
    assert refused.status_code == 403 and "change your password" in refused.json()["detail"]
    changed = desk.client.post(
        "/api/v1/auth/password",
        headers=headers,
        json={"current_password": "temporary passphrase 1", "new_password": "my own passphrase"},
    )
    assert changed.status_code == 200 and changed.json()["must_change_password"] is False
    fresh = {"Authorization": f"Bearer {changed.json()['access_token']}"}
    assert desk.client.get("/api/v1/holds/overdue", headers=fresh).status_code == 200


def test_4_disable_and_enable_a_user_and_a_disabled_accounts_token_gets_403(desk):
    token = desk.headers("reviewer")
    assert desk.post("/users/reviewer/disable", "supervisor", {}).json()["disabled"] is True
    refused = desk.client.get("/api/v1/review-queue", headers=token)
    assert refused.status_code in (401, 403)  # its tokens were revoked with the change
    assert login(desk, "reviewer", PASSWORD).status_code == 403
    assert desk.post("/users/supervisor/disable", "supervisor", {}).status_code == 409
    assert desk.post("/users/reviewer/enable", "supervisor", {}).json()["disabled"] is False
    assert login(desk, "reviewer", PASSWORD).status_code == 200


def test_6_a_token_of_a_disabled_account_gets_403_as_documented(desk):
    token = desk.headers("auditor")
    # Disabled directly in the database (as a migrated lock of the old kind is): the token is refused, 403.
    with desk.database.write() as session:
        session.execute(text("UPDATE users SET disabled = :yes WHERE username = 'auditor'"), {"yes": True})
    desk.desk._forget_tokens()
    response = desk.client.get("/api/v1/reports/quarterly?quarter=2014Q1", headers=token)
    assert response.status_code == 403 and "disabled" in response.json()["detail"]


def test_4_logout_and_sessions(desk):
    first = desk.headers("intake")
    second = {"Authorization": f"Bearer {login(desk, 'intake', PASSWORD).json()['access_token']}"}
    mine = desk.client.get("/api/v1/auth/sessions", headers=first).json()
    assert len(mine) == 2 and {s["username"] for s in mine} == {"intake"} and sum(s["current"] for s in mine) == 1
    assert mine[0]["client"] == "testclient"
    everyone = desk.get("/auth/sessions", "supervisor").json()
    assert {s["username"] for s in everyone} >= {"intake", "supervisor"}
    assert desk.client.post("/api/v1/auth/logout", headers=second).status_code == 204
    assert desk.client.get("/api/v1/holds/overdue", headers=second).status_code == 401
    assert desk.client.get("/api/v1/holds/overdue", headers=first).status_code == 200
    (remaining,) = desk.client.get("/api/v1/auth/sessions", headers=first).json()
    assert (
        desk.client.delete(f"/api/v1/auth/sessions/{remaining['id']}", headers=desk.headers("supervisor")).status_code
        == 204
    )
    assert desk.client.get("/api/v1/holds/overdue", headers=first).status_code == 401


def test_a_revocation_reaches_another_server_process_within_a_second(desk):
    """Two server processes (two Desk objects on one database, as `serve --workers 2` runs): a session
    revoked, or an account disabled, through one is refused by the other once its second of trust in the
    token it checked has run out (TOKEN_CACHE_SECONDS)."""
    import time

    from securecomm.desk.service import TOKEN_CACHE_SECONDS, Desk, Unauthorized

    assert TOKEN_CACHE_SECONDS <= 1.0
    other = Desk(desk.database, clock=desk.clock, audit_key=desk.desk.audit_key)
    intake = desk.headers("intake")["Authorization"].split()[1]
    reviewer = desk.headers("reviewer")["Authorization"].split()[1]
    assert other.authenticate(intake).username == "intake"  # checked, and now trusted for a moment
    assert other.authenticate(reviewer).username == "reviewer"
    started = time.monotonic()
    assert desk.client.post("/api/v1/auth/logout", headers=desk.headers("intake")).status_code == 204
    desk.desk.disable_user("reviewer")
    if time.monotonic() - started < TOKEN_CACHE_SECONDS * 0.8:
        assert other.authenticate(intake).username == "intake"  # still trusted, for the rest of the second
    time.sleep(TOKEN_CACHE_SECONDS + 0.05)
    with pytest.raises(Unauthorized):
        other.authenticate(intake)
    with pytest.raises(Unauthorized):  # disabling revoked the reviewer's tokens
        other.authenticate(reviewer)


def test_4_every_authentication_event_is_audited_with_the_name_tried_and_the_address(desk):
    desk.headers("reviewer"), desk.headers("auditor")  # before the guessing from this address
    login(desk, "nobody-such", "wrong password!")
    fail_logins(desk, "intake", MAX_FAILED_LOGINS)
    desk.clock.advance(seconds=120)
    assert login(desk, "intake", PASSWORD).status_code == 403  # locked
    entries = audit_trail(desk)
    unknown = [e for e in entries if e["action"] == "auth.failed" and e["subject"] == "user:unknown"]
    assert unknown[0]["details"] == {"username_tried": "nobody-such", "client": "testclient"}
    assert unknown[0]["actor"] == "anonymous"
    refused = [e for e in entries if e["action"] == "auth.refused"]
    assert refused and refused[-1]["details"]["reason"] == "locked" and refused[-1]["details"]["client"] == "testclient"
    logins = [e for e in entries if e["action"] == "auth.login" and e["actor"] == "reviewer"]
    assert logins[-1]["details"]["client"] == "testclient"


def test_4_throttled_attempts_are_audited_in_summary(sqlite_desk):
    desk = sqlite_desk
    for attempt in range(6):
        login(desk, "reviewer", f"guess {attempt}")
    rejected = desk.client.app.state.throttle.take_rejected()
    assert rejected[("reviewer", "testclient")] >= 1
    desk.desk.record_throttled(rejected)
    (entry,) = [e for e in audit_trail(desk) if e["action"] == "auth.throttled"]
    assert entry["details"]["attempts"][0]["username_tried"] == "reviewer"


# --- 5. headers and docs -------------------------------------------------------------------


def test_5_security_headers_on_every_response_and_no_store_on_personal_data(desk):
    detainer = desk.intake()
    for response in (
        desk.get(f"/detainers/{detainer['id']}", "reviewer"),
        desk.client.get("/api/v1/health"),
        desk.client.get("/api/v1/review-queue"),
        desk.client.get("/nowhere"),
    ):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["cache-control"] == "no-store"


def test_5_docs_and_openapi_need_a_login_in_production_mode(desk):
    assert desk.client.get("/docs").status_code == 404
    assert desk.client.get("/openapi.json").status_code == 401
    spec = desk.client.get("/openapi.json", headers=desk.headers("auditor"))
    assert spec.status_code == 200 and spec.json()["info"]["title"] == "securecomm detainer desk"


# --- 6. inputs -----------------------------------------------------------------------------


def test_6_a_body_over_the_limit_is_refused_413(make_desk, sqlite_url):
    desk = make_desk(sqlite_url, max_body_bytes=10_000)
    big = {"username": "x", "password": "y" * 20_000}
    assert desk.client.post("/api/v1/auth/token", json=big).status_code == 413

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(10):
            yield b" " * 2_000

    response = desk.client.post("/api/v1/auth/token", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert login(desk, "intake", PASSWORD).status_code == 200


def test_6_an_idempotency_key_replays_the_first_answer(desk):
    headers = {**desk.headers("intake"), "Idempotency-Key": "retry-0001"}
    first = desk.client.post("/api/v1/detainers", json=body(1), headers=headers)
    again = desk.client.post("/api/v1/detainers", json=body(1), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    other = desk.client.post("/api/v1/detainers", json=body(2), headers=headers)
    assert other.status_code == 409 and other.json()["existing_id"] == first.json()["id"]
    with desk.database.read() as session:
        assert session.execute(text("SELECT count(*) FROM detainers")).scalar() == 1


def test_6_the_same_booking_and_detainer_number_twice_is_409_naming_the_first(desk):
    first = desk.post("/detainers", "intake", body(7))
    second = desk.post("/detainers", "intake", body(7, final_order=True))
    assert second.status_code == 409
    assert second.json()["existing_id"] == first.json()["id"]
    assert f"detainer {first.json()['id']}" in second.json()["detail"]
    assert desk.post("/detainers", "intake", body(7, detainer_number="D-8")).status_code == 201


def test_6_events_before_receipt_and_pickup_before_release_eligibility_break_named_rules(desk):
    detainer = desk.intake(final_order=True, received_at="2014-03-05T09:00:00")
    path = f"/detainers/{detainer['id']}/events"
    early = desk.post(path, "intake", {"event": "released", "at": "2014-03-04T09:00:00"})
    assert early.status_code == 422
    assert early.json()["detail"][0]["rule"] == "no-event-before-receipt"
    assert early.json()["detail"][0]["loc"] == ["body", "at"]
    pickup = desk.post(path, "intake", {"event": "picked_up_by_ice", "at": "2014-03-05T12:00:00"})
    assert pickup.status_code == 422
    assert pickup.json()["detail"][0]["rule"] == "no-pickup-before-release-eligibility"
    overridden = desk.post(
        path,
        "intake",
        {"event": "picked_up_by_ice", "at": "2014-03-05T12:00:00", "override_reason": "court order 14-77"},
    )
    assert overridden.status_code == 201, overridden.text
    assert overridden.json()["event"]["details"]["reason"] == "court order 14-77"
    (entry,) = [e for e in audit_trail(desk) if e["action"] == "detainer.event"]
    assert entry["details"]["override"] == "no-pickup-before-release-eligibility"


def test_6_set_policy_takes_library_ids_or_registered_files_only(desk, tmp_path):
    from securecomm.law.loader import library_root

    source = (library_root() / "us" / "ice-request.yaml").read_text()
    stretched = tmp_path / "stretched.yaml"
    stretched.write_text(source.replace("hours: 48", "hours: 4800"))
    assert "hours: 4800" in stretched.read_text()
    with pytest.raises(Exception, match="unknown policy"):
        desk.desk.set_policy(str(stretched.with_suffix("")), __import__("datetime").date(2014, 6, 1))
    with pytest.raises(Exception, match="at most 48 hours"):
        desk.desk.add_policy(stretched, "stretched")
    county = tmp_path / "county.yaml"
    county.write_text(source)
    registered = desk.desk.add_policy(county, "county")
    assert registered["policy_id"] == "file:county"
    desk.desk.set_policy("file:county", __import__("datetime").date(2014, 6, 1))
    decided = desk.intake(received_at="2014-06-02T09:00:00")
    assert decided["policy_id"] == "file:county" and decided["decision"] == "honor"
    (entry,) = [e for e in audit_trail(desk) if e["action"] == "policy.register"]
    assert entry["details"]["sha256"] == registered["sha256"]
    assert desk.get("/audit/verify", "auditor").json()["ok"] is True


def test_audit_key_file_is_private(tmp_path):
    key = audit.AuditKey.generate()
    key.write(tmp_path / "audit.key")
    assert stat.S_IMODE((tmp_path / "audit.key").stat().st_mode) == 0o600
    assert audit.AuditKey.load(tmp_path / "audit.key").secret == key.secret
    with pytest.raises(FileExistsError):
        key.write(tmp_path / "audit.key")


def test_head_row_is_still_one_row(desk):
    desk.intake()
    with desk.database.read() as session:
        assert len(session.execute(select(AuditHead)).all()) == 1


# --- the commands --------------------------------------------------------------------------


def test_cli_key_anchor_policies_and_users(tmp_path, desk_init):
    from securecomm.law.loader import library_root

    data_dir = tmp_path / "jail"
    made = desk_init(data_dir)
    assert made.exit_code == 0, made.output
    assert stat.S_IMODE((data_dir / "audit.key").stat().st_mode) == 0o600
    weak = cli(
        "desk", "add-user", "--data-dir", data_dir, "--username", "clerk", "--role", "intake", stdin="password1234\n"
    )
    assert weak.exit_code != 0 and "common" in weak.output
    assert (
        cli(
            "desk", "add-user", "--data-dir", data_dir, "--username", "clerk", "--role", "intake", stdin=f"{PASSWORD}\n"
        ).exit_code
        == 0
    )

    # set-policy: no paths; add-policy validates, records the hash, and is audited.
    copy = tmp_path / "ice-request.yaml"
    copy.write_text((library_root() / "us" / "ice-request.yaml").read_text().replace("hours: 48", "hours: 4800"))
    by_path = cli(
        "desk", "set-policy", "--data-dir", data_dir, "--policy", copy.with_suffix(""), "--from", "2014-12-01"
    )
    assert by_path.exit_code != 0 and "unknown policy" in by_path.output
    stretched = cli("desk", "add-policy", "--data-dir", data_dir, "--file", copy, "--name", "county")
    assert stretched.exit_code != 0 and "48 hours" in stretched.output
    copy.write_text((library_root() / "us" / "ice-request.yaml").read_text())
    added = cli("desk", "add-policy", "--data-dir", data_dir, "--file", copy, "--name", "county")
    assert added.exit_code == 0 and "sha256" in added.output, added.output
    assert (
        cli("desk", "set-policy", "--data-dir", data_dir, "--policy", "file:county", "--from", "2014-12-01").exit_code
        == 0
    )

    for command, said in (("disable-user", "disabled"), ("enable-user", "enabled"), ("unlock-user", "unlocked")):
        changed = cli("desk", command, "--data-dir", data_dir, "--username", "clerk")
        assert changed.exit_code == 0 and f"{said} 'clerk'" in changed.output, changed.output
    unknown = cli("desk", "disable-user", "--data-dir", data_dir, "--username", "nobody")
    assert unknown.exit_code != 0 and "nobody" in unknown.output
    assert (
        cli(
            "desk", "reset-password", "--data-dir", data_dir, "--username", "clerk", stdin="a temporary passphrase\n"
        ).exit_code
        == 0
    )

    anchor_file = tmp_path / "elsewhere" / "anchor.json"
    anchor_file.parent.mkdir()
    anchored = cli("desk", "audit-anchor", "--data-dir", data_dir, "--out", anchor_file)
    assert anchored.exit_code == 0
    anchor = json.loads(anchor_file.read_text())
    assert set(anchor) == {"seq", "hash", "time_utc", "signature"}
    verified = cli("desk", "verify-audit", "--data-dir", data_dir, "--anchor", anchor_file)
    assert verified.exit_code == 0 and "extends 1 anchor" in verified.output, verified.output
    actions = [
        row[0]
        for row in __import__("sqlite3")
        .connect(data_dir / "desk.sqlite3")
        .execute("SELECT action FROM audit_log ORDER BY seq")
    ]
    assert {"policy.register", "user.disable", "user.enable", "user.password_reset"} <= set(actions)

    # Cut the last entry and move the head back: intact in itself, but it no longer extends the anchor.
    import sqlite3

    connection = sqlite3.connect(data_dir / "desk.sqlite3")
    connection.execute("DROP TRIGGER audit_log_no_delete")
    previous = connection.execute("SELECT seq, hash FROM audit_log WHERE seq = ?", (anchor["seq"] - 1,)).fetchone()
    connection.execute("DELETE FROM audit_log WHERE seq = ?", (anchor["seq"],))
    connection.execute("UPDATE audit_head SET seq = ?, hash = ?", previous)
    connection.commit()
    connection.close()
    plain = cli("desk", "verify-audit", "--data-dir", data_dir)  # the cut entry carried clerk's row
    assert plain.exit_code == 1 and "row user:" in plain.output, plain.output
    cut = cli("desk", "verify-audit", "--data-dir", data_dir, "--anchor", anchor_file)
    assert cut.exit_code == 1 and "no longer has entry" in cut.output
    moved = tmp_path / "key-elsewhere"
    (data_dir / "audit.key").rename(moved)
    missing = cli("desk", "verify-audit", "--data-dir", data_dir)
    assert missing.exit_code != 0 and "no audit key" in missing.output
    keyed = cli("desk", "verify-audit", "--data-dir", data_dir, "--audit-key", moved)
    assert "no audit key" not in keyed.output and "row user:" in keyed.output
