"""The quarterly transparency report (JSON, CSV, HTML) and the `securecomm desk` commands."""

import csv
import datetime as dt
import io
import json

import pytest
from sqlalchemy import text

from securecomm.desk.db import database_url, open_database, schema_is_current

from .conftest import PASSWORD, cli


def test_quarterly_report_counts_decisions_rules_forms_and_holds(desk):
    honored = desk.intake(final_order=True, detainer_form="I-247", release_eligible_at="2014-03-06T17:00:00")
    desk.post(f"/detainers/{honored['id']}/events", "intake", {"event": "released", "at": "2014-03-11T09:00:00"})
    desk.intake(public_safety_risk=False, detainer_form="I-247")
    reviewed = desk.intake(detainer_form="I-247D", release_eligible_at="2014-03-06T17:00:00")
    desk.post(f"/detainers/{reviewed['id']}/review", "reviewer", {"decision": "honor", "reason": "risk"})
    desk.post(
        f"/detainers/{reviewed['id']}/events", "intake", {"event": "picked_up_by_ice", "at": "2014-03-07T17:00:00"}
    )
    desk.intake()  # still awaiting review
    desk.intake(received_at="2014-04-01T00:00:00", final_order=True)  # next quarter
    desk.clock.local = dt.datetime(2014, 4, 2, 12, 0)

    report = desk.get("/reports/quarterly?quarter=2014Q1", "auditor")
    assert report.status_code == 200
    assert report.headers["content-type"].startswith("application/json")
    body = report.json()
    assert body["quarter"] == "2014Q1"
    assert body["period"] == {"from": "2014-01-01", "to": "2014-03-31"}
    assert body["detainers"] == {
        "received": 4,
        "honored": 2,
        "declined": 1,
        "awaiting_review": 1,
        "sent_to_review": 2,
        "reviewed": 1,
        "reviewed_honored": 1,
        "reviewed_declined": 0,
        "ice_notifications": 3,
    }
    by_form = {row["detainer_form"]: row for row in body["by_form"]}
    assert by_form["I-247"]["received"] == 2
    assert by_form["I-247D"]["honored"] == 1
    assert by_form["not stated"]["awaiting_review"] == 1
    by_rule = {row["rule"]: row for row in body["by_rule"]}
    assert by_rule["final-order-of-removal"]["citation"] == "Conn. Gen. Stat. § 54-192h(b)(6)"
    assert by_rule["unacceptable-public-safety-risk"]["received"] == 2
    holds = body["holds"]
    assert holds["holds_begun"] == 2
    assert holds["holds_past_deadline"] == 1  # released Tuesday 09:00, deadline Monday 17:00
    assert holds["hold_hours"] == 112.0 + 24.0
    assert holds["transferred_to_ice"] == 1
    assert body["policies"][0]["policy_id"] == "ct/trust-act-2013"

    as_csv = desk.get("/reports/quarterly?quarter=2014Q1", "auditor", headers={"Accept": "text/csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert {"section": "detainers", "metric": "received", "value": "4"}.items() <= rows[0].items()
    # The counts by form and by rule, a row per count, with the columns that name the group.
    by_form = {(row["detainer_form"], row["metric"]): row["value"] for row in rows if row["section"] == "by_form"}
    assert by_form[("I-247", "received")] == "2" and by_form[("not stated", "awaiting_review")] == "1"
    by_rule = [row for row in rows if row["section"] == "by_rule"]
    assert by_rule and all(row["policy_id"] and row["rule"] and not row["detainer_form"] for row in by_rule)
    assert {row["metric"] for row in by_rule} == {"received", "honored", "declined", "awaiting_review"}
    as_html = desk.get("/reports/quarterly?quarter=2014Q1", "auditor", headers={"Accept": "text/html"})
    assert as_html.headers["content-type"].startswith("text/html")
    assert "2014Q1" in as_html.text and "<table>" in as_html.text and "<script" not in as_html.text


@pytest.mark.parametrize("quarter", ["2014Q5", "2014-Q1", "0000Q1", "1900Q1"])
def test_a_bad_quarter_is_a_422_naming_it(desk, quarter):
    response = desk.get(f"/reports/quarterly?quarter={quarter}", "auditor")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "quarter"]


def test_desk_commands_set_up_a_desk_and_check_it(tmp_path, make_desk, desk_init):
    data_dir = tmp_path / "jail"
    made = desk_init(data_dir)
    assert made.exit_code == 0, made.output
    again = desk_init(data_dir)
    assert again.exit_code != 0 and "already exists" in again.output
    for username, role in (("clerk", "intake"), ("judge", "reviewer")):
        added = cli(
            "desk", "add-user", "--data-dir", data_dir, "--username", username, "--role", role, stdin=f"{PASSWORD}\n"
        )
        assert added.exit_code == 0, added.output
    bad_role = cli(
        "desk", "add-user", "--data-dir", data_dir, "--username", "x", "--role", "warden", stdin=f"{PASSWORD}\n"
    )
    assert bad_role.exit_code != 0 and "role" in bad_role.output
    short = cli("desk", "add-user", "--data-dir", data_dir, "--username", "y", "--role", "intake", stdin="short\n")
    assert short.exit_code != 0 and "password" in short.output
    policy = cli("desk", "set-policy", "--data-dir", data_dir, "--policy", "ct/doc-2014", "--from", "2014-12-15")
    assert policy.exit_code == 0, policy.output
    field_policy = cli(
        "desk",
        "set-policy",
        "--data-dir",
        data_dir,
        "--policy",
        "ct/new-haven/general-order-06-2",
        "--from",
        "2015-01-01",
    )
    assert field_policy.exit_code != 0 and "detainer policy" in field_policy.output

    url = database_url(data_dir)
    assert schema_is_current(open_database(url).engine)
    verified = cli("desk", "verify-audit", "--data-dir", data_dir)
    assert verified.exit_code == 0 and "intact" in verified.output

    report = cli("desk", "report", "--data-dir", data_dir, "--quarter", "2014Q4")
    assert report.exit_code == 0, report.output
    assert json.loads(report.stdout)["policies"][-1]["policy_id"] == "ct/doc-2014"
    html_file = tmp_path / "report.html"
    as_html = cli(
        "desk", "report", "--data-dir", data_dir, "--quarter", "2014Q4", "--format", "html", "--out", html_file
    )
    assert as_html.exit_code == 0 and html_file.read_text().startswith("<!DOCTYPE html>")

    database = open_database(url)
    with database.write() as session:
        session.execute(text("DROP TRIGGER audit_log_no_update"))
        session.execute(text("UPDATE audit_log SET actor = 'forger' WHERE seq = 3"))
    broken = cli("desk", "verify-audit", "--data-dir", data_dir)
    assert broken.exit_code == 1
    assert "broken at entry 3" in broken.output


def test_serve_refuses_an_uninitialized_desk(tmp_path):
    result = cli("serve", "--data-dir", tmp_path / "empty")
    assert result.exit_code != 0
    assert "desk init" in result.output


def test_migrations_run_on_every_start_and_are_idempotent(db_url):
    first = open_database(db_url)
    second = open_database(db_url)
    assert schema_is_current(second.engine)
    first.dispose()
    second.dispose()


def test_sqlite_runs_in_wal_mode_with_full_sync(sqlite_desk):
    with sqlite_desk.database.read() as session:
        assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert session.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL


def test_report_counts_open_holds_up_to_now(sqlite_desk):
    sqlite_desk.intake(final_order=True, release_eligible_at="2014-03-06T17:00:00")
    sqlite_desk.clock.local = dt.datetime(2014, 3, 7, 17, 0)
    holds = sqlite_desk.get("/reports/quarterly?quarter=2014Q1", "supervisor").json()["holds"]
    assert (holds["holds_open"], holds["hold_hours"], holds["holds_past_deadline"]) == (1, 24.0, 0)


def test_the_report_lists_a_registered_file_policy_by_its_title(sqlite_desk, tmp_path):
    """A period under a policy registered with `desk add-policy` (`file:NAME`, not in the library) is listed
    with the title of the text registered; the report used to fail looking it up in the library."""
    from securecomm.law.loader import library_root

    county = tmp_path / "county.yaml"
    county.write_text(
        (library_root() / "us" / "ice-request.yaml").read_text().replace("title: ", "title: County — ", 1)
    )
    registered = sqlite_desk.desk.add_policy(county, "county")
    sqlite_desk.desk.set_policy(registered["policy_id"], dt.date(2014, 2, 1))
    sqlite_desk.intake(received_at="2014-02-03T09:00:00", final_order=True)
    report = sqlite_desk.get("/reports/quarterly?quarter=2014Q1", "auditor")
    assert report.status_code == 200, report.text
    policies = {row["policy_id"]: row["title"] for row in report.json()["policies"]}
    assert policies["file:county"] == registered["title"]
    assert registered["title"].startswith("County — ")
    assert "ct/trust-act-2013" in policies
    assert "file:county" in sqlite_desk.get("/reports/quarterly?quarter=2014Q1&format=csv", "auditor").text
