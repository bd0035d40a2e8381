"""Builds desk_0002.json: a populated desk as the desk of migration 0002 wrote it, for the test that
upgrades it to 0003 (tests/desk/test_desk_migration.py).

Run with the code of commit 37aedec (the last before migration 0003) on the path, not today's:

    git archive 37aedec src | tar -x -C /tmp/old0002
    PYTHONPATH=/tmp/old0002/src .venv/bin/python tests/desk/data/build_desk_0002.py tests/desk/data/desk_0002.json

It makes a desk through that code's own API and service (users of every role, logins, a failed login,
intakes honored, declined and sent to review with an Idempotency-Key, a review, custody events, a
notice to ICE, an overdue flag, a registered policy file and a second period, a disabled user), checks
that its chain verifies, and writes every table of the database (the schema at 0002) and the audit key
as JSON: values as stored, datetimes and dates in ISO form.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import sys
import tempfile
import warnings
from pathlib import Path

from argon2 import PasswordHasher
from sqlalchemy import MetaData, select, text

from securecomm.desk import security
from securecomm.desk.api import create_app
from securecomm.desk.audit import AuditKey
from securecomm.desk.db import database_url, open_database
from securecomm.desk.service import Desk
from securecomm.law.loader import library_root

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

PASSWORD = "correct horse battery staple"


class Clock:
    local = dt.datetime(2014, 3, 5, 9, 0)
    utc = dt.datetime(2014, 3, 5, 14, 0)

    def local_now(self) -> dt.datetime:
        return self.local

    def utc_now(self) -> dt.datetime:
        return self.utc


def build(out: Path) -> None:
    security.use_password_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    with tempfile.TemporaryDirectory() as directory:
        url = database_url(Path(directory))
        key = AuditKey.generate()
        clock = Clock()
        desk = Desk(open_database(url), clock=clock, audit_key=key)
        desk.initialize(
            jurisdiction="Connecticut",
            policy_id="ct/trust-act-2013",
            admin_username="supervisor",
            admin_password=PASSWORD,
        )
        for role in ("intake", "reviewer", "auditor"):
            desk.add_user(role, PASSWORD, role)
        desk.add_user("temp", PASSWORD, "intake")
        county = Path(directory) / "county.yaml"
        county.write_text((library_root() / "us" / "ice-request.yaml").read_text(), encoding="utf-8")
        desk.add_policy(county, "county")
        desk.set_policy("file:county", dt.date(2014, 6, 1))

        client = TestClient(create_app(desk.database, clock=clock, overdue_check_seconds=None, audit_key=key))
        tokens = {}
        for role in ("intake", "reviewer", "supervisor", "auditor"):
            answer = client.post("/api/v1/auth/token", json={"username": role, "password": PASSWORD})
            assert answer.status_code == 200, answer.text
            tokens[role] = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        wrong = client.post("/api/v1/auth/token", json={"username": "intake", "password": "not the password!"})
        assert wrong.status_code == 401, wrong.text

        def intake(number: int, headers: dict | None = None, **facts) -> dict:
            body = {
                "booking_ref": f"B-{number}",
                "detainer_number": f"D-{number:06d}",
                "received_at": "2014-03-05T09:00:00",
                "issuing_office": "ERO Hartford",
                **facts,
            }
            answer = client.post("/api/v1/detainers", json=body, headers={**tokens["intake"], **(headers or {})})
            assert answer.status_code == 201, answer.text
            return answer.json()

        honored = intake(1, final_order=True, detainer_form="I-247D", release_eligible_at="2014-03-06T17:00:00")
        declined = intake(2, public_safety_risk=False, detainer_form="I-247", age=34)
        review = intake(
            3,
            {"Idempotency-Key": "retry-3"},
            detainer_form="I-247D",
            current_charges=[{"category": "theft", "level": "misdemeanor"}],
        )
        intake(4, convictions=[{"category": "burglary", "level": "felony", "years_ago": 3}])
        overdue = intake(5, final_order=True, release_eligible_at="2014-03-05T10:00:00")
        intake(6, received_at="2014-06-02T09:00:00")  # under the registered policy
        decided = client.post(
            f"/api/v1/detainers/{review['id']}/review",
            json={"decision": "honor", "reason": "a risk to public safety"},
            headers=tokens["reviewer"],
        )
        assert decided.status_code == 200, decided.text
        for detainer_id, event in (
            (review["id"], {"event": "release_eligible", "at": "2014-03-05T18:00:00"}),
            (honored["id"], {"event": "picked_up_by_ice", "at": "2014-03-07T08:00:00"}),
            (declined["id"], {"event": "released", "at": "2014-03-05T12:00:00"}),
        ):
            answer = client.post(f"/api/v1/detainers/{detainer_id}/events", json=event, headers=tokens["intake"])
            assert answer.status_code == 201, answer.text
        clock.local, clock.utc = dt.datetime(2014, 3, 9, 9, 0), dt.datetime(2014, 3, 9, 13, 0)
        for role in ("reviewer", "supervisor"):  # the earlier tokens have expired
            answer = client.post("/api/v1/auth/token", json={"username": role, "password": PASSWORD})
            tokens[role] = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        held = client.get("/api/v1/holds/overdue", headers=tokens["supervisor"]).json()
        assert any(item["id"] == overdue["id"] for item in held), held
        assert client.post("/api/v1/users/temp/disable", headers=tokens["supervisor"]).status_code == 200
        assert client.get(f"/api/v1/detainers/{honored['id']}", headers=tokens["reviewer"]).status_code == 200
        report = desk.verify_audit()
        assert report.ok, report.describe()

        metadata = MetaData()
        with desk.database.engine.connect() as connection:
            metadata.reflect(connection)
            revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
            assert revision == "0002", revision
            tables = {}
            for name, table in sorted(metadata.tables.items()):
                if name == "alembic_version":
                    continue
                order = list(table.primary_key.columns)
                rows = connection.execute(select(table).order_by(*order)).mappings().all()
                tables[name] = [
                    {
                        column: value.isoformat() if isinstance(value, dt.date) else value
                        for column, value in row.items()
                    }
                    for row in rows
                ]
        client.close()
        desk.database.dispose()
    document = {
        "built_by": "tests/desk/data/build_desk_0002.py at commit 37aedec (migration 0002)",
        "revision": "0002",
        "audit_key": {"secret": base64.b64encode(key.secret).decode(), "keyed_from_seq": key.keyed_from_seq},
        "audit_entries": report.entries,
        "tables": tables,
    }
    out.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out}: {report.describe()}")


if __name__ == "__main__":
    build(Path(sys.argv[1]))
