"""A populated desk of migration 0002 upgraded to today's schema (0003, 0004) end to end, on SQLite and PostgreSQL: its audit
chain still verifies, rows and all; the desk goes on working on it; a change made outside the desk is
still caught; and `set_place` (`desk set-place`) gives it the place and time zone it lacked.

The rows are those of `data/desk_0002.json`, written by the desk of commit 37aedec (the last before
0003) through its own API — see `data/build_desk_0002.py` — and loaded here into a database that
migrations 0001 and 0002 made.
"""

import base64
import datetime as dt
import json
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Date, DateTime, MetaData, insert, text

from securecomm.desk.api import create_app
from securecomm.desk.audit import AuditKey
from securecomm.desk.db import _alembic_config, create_desk_engine, open_database
from securecomm.desk.service import Conflict, Desk, InvalidInput, cli_actor

from .conftest import PASSWORD, FixedClock, TestClient

FIXTURE = Path(__file__).parent / "data" / "desk_0002.json"


def load_0002(url: str) -> tuple[AuditKey, dict]:
    """A database at revision 0002 holding the rows the 0002 desk wrote."""
    document = json.loads(FIXTURE.read_text(encoding="utf-8"))
    engine = create_desk_engine(url)
    config = _alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")
    metadata = MetaData()
    with engine.begin() as connection:
        metadata.reflect(connection)
        assert "place" not in metadata.tables["desk_settings"].columns  # the schema of 0002 indeed
        # Parents before children (tokens and events refer to users and detainers).
        for table in metadata.sorted_tables:
            rows = document["tables"].get(table.name)
            if not rows:
                continue
            for row in rows:
                for column in table.columns:
                    value = row.get(column.name)
                    if isinstance(value, str) and isinstance(column.type, DateTime):
                        row[column.name] = dt.datetime.fromisoformat(value)
                    elif isinstance(value, str) and isinstance(column.type, Date):
                        row[column.name] = dt.date.fromisoformat(value)
            if table.name == "audit_head":  # migration 0001 made its one row (seq 0)
                connection.execute(table.delete())
            connection.execute(insert(table), rows)
        if connection.dialect.name == "postgresql":
            # Rows came with their ids: move each id sequence past them, as the desk's own inserts had.
            for name in ("users", "policy_periods", "registered_policies", "detainers", "events"):
                connection.execute(
                    text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT max(id) FROM {name}))")
                )
    engine.dispose()
    key = AuditKey(base64.b64decode(document["audit_key"]["secret"]), document["audit_key"]["keyed_from_seq"])
    return key, document


def test_a_populated_0002_desk_upgrades_to_0003_and_its_chain_still_verifies(db_url):
    key, document = load_0002(db_url)
    clock = FixedClock(local=dt.datetime(2014, 3, 10, 9, 0), utc=dt.datetime(2014, 3, 10, 13, 0))
    desk = Desk(open_database(db_url), clock=clock, audit_key=key)  # runs 0003
    try:
        with desk.database.engine.connect() as connection:
            assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "0004"
            detainers = connection.execute(text("SELECT count(*) FROM detainers")).scalar_one()
            # 0004 revoked the tokens of 0002, which were in no entry of the chain (everyone logs in again).
            assert len(document["tables"]["tokens"]) > 0
            assert connection.execute(text("SELECT count(*) FROM tokens")).scalar_one() == 0
        assert detainers == len(document["tables"]["detainers"]) == 6
        report = desk.verify_audit()
        assert report.ok, report.describe()
        assert report.entries == document["audit_entries"]
        assert desk.place_and_zone() == (None, None)  # made before places and zones

        # The desk works on the upgraded database, through its API: intake, review, events, reports.
        client = TestClient(create_app(desk.database, clock=clock, overdue_check_seconds=None, audit_key=key))
        with client:
            tokens = {}
            for role in ("intake", "reviewer", "auditor"):
                answer = client.post("/api/v1/auth/token", json={"username": role, "password": PASSWORD})
                assert answer.status_code == 200, answer.text
                tokens[role] = {"Authorization": f"Bearer {answer.json()['access_token']}"}
            body = {
                "booking_ref": "B-7",
                "detainer_number": "D-000007",
                "received_at": "2014-03-10T08:00:00",
                "issuing_office": "ERO Hartford",
            }
            created = client.post("/api/v1/detainers", json=body, headers=tokens["intake"])
            assert created.status_code == 201, created.text
            # Without a desk zone the engine reads the case in the zone of the policy's own places.
            assert created.json()["decision"] == "review" and created.json()["time_zone"] == "America/New_York"
            twin = client.post(
                "/api/v1/detainers",
                json={**body, "booking_ref": "B-1", "detainer_number": "D-000001"},
                headers=tokens["intake"],
            )
            assert twin.status_code == 409 and twin.json()["existing_id"] == 1  # an old row still guards
            replay = client.post(
                "/api/v1/detainers",
                json={
                    "booking_ref": "B-3",
                    "detainer_number": "D-000003",
                    "received_at": "2014-03-05T09:00:00",
                    "issuing_office": "ERO Hartford",
                    "detainer_form": "I-247D",
                    "current_charges": [{"category": "theft", "level": "misdemeanor"}],
                },
                headers={**tokens["intake"], "Idempotency-Key": "retry-3"},
            )
            assert replay.status_code == 201, replay.text  # an answer stored under 0002, replayed
            assert replay.headers["Idempotent-Replayed"] == "true"
            old = next(
                row
                for row in document["tables"]["detainers"]
                if row["decision"] == "honor" and row["custody"] == "in_custody" and row["release_eligible_at"] is None
            )
            eligible = client.post(
                f"/api/v1/detainers/{old['id']}/events",
                json={"event": "release_eligible", "at": "2014-03-10T08:30:00"},
                headers=tokens["intake"],
            )
            assert eligible.status_code == 201, eligible.text
            assert eligible.json()["hold_until"] is not None  # an old detainer gets its hold from today's engine
            reviewed = client.post(
                f"/api/v1/detainers/{created.json()['id']}/review",
                json={"decision": "decline", "reason": "no judicial warrant"},
                headers=tokens["reviewer"],
            )
            assert reviewed.status_code == 200, reviewed.text
            quarterly = client.get("/api/v1/reports/quarterly?quarter=2014Q2", headers=tokens["auditor"])
            assert quarterly.status_code == 200, quarterly.text
            assert {row["policy_id"] for row in quarterly.json()["policies"]} == {"ct/trust-act-2013", "file:county"}
            verified = client.get("/api/v1/audit/verify", headers=tokens["auditor"]).json()
            assert verified["ok"] is True, verified["message"]
            assert verified["entries"] > document["audit_entries"]

        # Give it its place and zone (desk set-place): audited, in the chain, and used from then on.
        with pytest.raises(InvalidInput, match="time zones"):
            desk.set_place("US")
        assert desk.set_place("09009", actor=cli_actor("tester")) == ("09009", "America/New_York")
        with pytest.raises(Conflict, match="set once"):
            desk.set_place("06037")
        assert desk.place_and_zone() == ("09009", "America/New_York")
        intake = desk.authenticate(desk.login("intake", PASSWORD).token)
        zoned = desk.intake(
            intake,
            {
                "booking_ref": "B-8",
                "detainer_number": "D-000008",
                "received_at": dt.datetime(2014, 3, 10, 14, 0, tzinfo=dt.UTC),
                "issuing_office": "ERO Hartford",
                "final_order": True,
                "release_eligible_at": dt.datetime(2014, 3, 10, 17, 0),
            },
        )
        assert zoned["received_at"] == dt.datetime(2014, 3, 10, 10, 0)  # 14:00 UTC is 10:00 in New Haven (EDT)
        assert zoned["time_zone"] == "America/New_York" and zoned["hold_until_utc"] is not None
        report = desk.verify_audit()
        assert report.ok, report.describe()

        # The rows written under 0002 are still vouched for by the chain: a change outside the desk shows.
        with desk.database.engine.begin() as connection:
            connection.execute(text("UPDATE detainers SET hold_until = NULL WHERE id = 1"))
        broken = desk.verify_audit()
        assert not broken.ok and broken.problem.startswith("row detainer:1 differs"), broken.describe()
    finally:
        desk.database.dispose()


def test_set_place_from_the_command_line(tmp_path):
    from typer.testing import CliRunner

    from securecomm.cli import app
    from securecomm.desk.db import database_url

    data_dir = tmp_path / "desk"
    data_dir.mkdir()
    key, _document = load_0002(database_url(data_dir))
    key.write(data_dir / "audit.key")
    runner = CliRunner()
    missing = runner.invoke(app, ["desk", "set-place", "--data-dir", str(data_dir), "--place", "XX"])
    assert missing.exit_code != 0 and "place" in missing.output
    done = runner.invoke(app, ["desk", "set-place", "--data-dir", str(data_dir), "--place", "09009"])
    assert done.exit_code == 0, done.output
    assert "America/New_York" in done.output
    again = runner.invoke(app, ["desk", "set-place", "--data-dir", str(data_dir), "--place", "09009"])
    assert again.exit_code != 0 and "set once" in again.output
    desk = Desk(open_database(database_url(data_dir)), audit_key=key)
    try:
        assert desk.place_and_zone() == ("09009", "America/New_York")
        (entry,) = [e for e in desk.audit_entries(cli_actor("t"), 0, 1000) if e["action"] == "desk.set_place"]
        assert entry["details"]["time_zone"] == "America/New_York" and "desk:1" in entry["details"]["rows"]
        assert desk.verify_audit().ok
    finally:
        desk.database.dispose()
