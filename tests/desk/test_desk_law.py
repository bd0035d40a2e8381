"""The law engine's behaviour at the desk (issues #12 and #15), on SQLite and PostgreSQL: holds by
detainer form and in the jurisdiction's own time zone, layered policies, the policy clause by clause,
and the profiling indicator in the quarterly report."""

import csv
import datetime as dt
import io
import json

from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from securecomm.cli import app
from securecomm.desk import audit
from securecomm.desk.audit import AuditKey, row_digest
from securecomm.desk.service import SystemClock
from securecomm.law.loader import load_forms

from .conftest import PASSWORD

I247A = load_forms()["I-247A"].citation
I247N = load_forms()["I-247N"].citation


def test_an_i247n_detainer_honored_has_no_hold(make_desk, db_url):
    desk = make_desk(db_url, policy="us/ice-request", place="09009")
    body = desk.intake(
        received_at="2017-04-05T09:00:00", release_eligible_at="2017-04-06T17:00:00", detainer_form="I-247N"
    )
    assert body["decision"] == "honor"
    assert (body["hold_until"], body["hold_until_utc"]) == (None, None)
    assert body["hold_citation"] == I247N  # why there is none: the form asks for notice only
    # Nor later: release eligibility recorded again (earlier) leaves no hold either.
    moved = desk.post(
        f"/detainers/{body['id']}/events", "intake", {"event": "release_eligible", "at": "2017-04-06T12:00:00"}
    ).json()
    assert (moved["hold_until"], moved["hold_citation"]) == (None, I247N)
    # With no hold, a transfer to ICE after release eligibility is refused: the person must be released.
    late = desk.post(
        f"/detainers/{body['id']}/events", "intake", {"event": "picked_up_by_ice", "at": "2017-04-06T12:30:00"}
    )
    assert late.status_code == 409, late.text
    assert desk.get("/audit/verify", "auditor").json()["ok"]


def test_an_i247a_released_thursday_1700_is_held_until_saturday_1700_in_the_jurisdictions_zone(make_desk, db_url):
    desk = make_desk(db_url, policy="us/ice-request", place="09009")
    # 48 hours excluding weekends (8 CFR 287.7(d)) would run to Monday; the I-247A asks for 48 real hours.
    body = desk.intake(
        received_at="2017-04-05T09:00:00", release_eligible_at="2017-04-06T17:00:00", detainer_form="I-247A"
    )
    assert body["decision"] == "honor"
    assert body["time_zone"] == "America/New_York"
    assert body["times_read_in_zone"] == ["received_at", "release_eligible_at"]
    assert body["hold_until"] == "2017-04-08T17:00:00"
    assert body["hold_until_utc"] == "2017-04-08T21:00:00"  # EDT
    assert body["hold_citation"] == I247A
    # The same deadline when release eligibility is recorded later as a UTC time: converted to the zone.
    later = desk.intake(received_at="2017-04-05T09:00:00", detainer_form="I-247A")
    recorded = desk.post(
        f"/detainers/{later['id']}/events", "intake", {"event": "release_eligible", "at": "2017-04-06T21:00:00Z"}
    ).json()
    assert recorded["times_read_in_zone"] == []
    assert (recorded["release_eligible_at"], recorded["hold_until"]) == ("2017-04-06T17:00:00", "2017-04-08T17:00:00")
    assert recorded["hold_until_utc"] == "2017-04-08T21:00:00"
    # A time with an offset is accepted at intake too, and a zone other than the desk's is refused.
    offset = desk.intake(received_at="2017-04-05T13:00:00+00:00", detainer_form="I-247A")
    assert (offset["received_at"], offset["times_read_in_zone"]) == ("2017-04-05T09:00:00", [])
    elsewhere = desk.post(
        "/detainers",
        "intake",
        {
            "booking_ref": "B-9",
            "detainer_number": "D-9",
            "received_at": "2017-04-05T09:00:00",
            "issuing_office": "ERO Hartford",
            "time_zone": "America/Chicago",
        },
    )
    assert elsewhere.status_code == 422
    assert elsewhere.json()["detail"][0]["loc"] == ["body", "time_zone"]
    assert desk.get("/audit/verify", "auditor").json()["ok"]


def test_a_reviewers_honor_gets_the_forms_limit_too(make_desk, db_url):
    desk = make_desk(db_url)  # ct/trust-act-2013: review while public_safety_risk is undetermined
    body = desk.intake(release_eligible_at="2014-03-06T17:00:00", detainer_form="I-247A")
    assert body["decision"] == "review"
    reviewed = desk.post(f"/detainers/{body['id']}/review", "reviewer", {"decision": "honor", "reason": "risk"}).json()
    # TRUST Act: 48 hours excluding weekends → Monday; the I-247A's 48 real hours end on Saturday.
    assert (reviewed["hold_until"], reviewed["hold_citation"]) == ("2014-03-08T17:00:00", I247A)
    assert reviewed["hold_until_utc"] == "2014-03-08T22:00:00"  # EST
    plain = desk.intake(release_eligible_at="2014-03-06T17:00:00", detainer_form="I-247D")
    reviewed = desk.post(f"/detainers/{plain['id']}/review", "reviewer", {"decision": "honor", "reason": "risk"}).json()
    assert reviewed["hold_until"] == "2014-03-10T17:00:00"
    assert reviewed["hold_citation"].startswith("Conn. Gen. Stat. § 54-192h")
    assert desk.get("/audit/verify", "auditor").json()["ok"]


def test_a_hold_across_a_change_of_daylight_saving_time_lasts_real_hours(make_desk, db_url):
    # Santa Clara's 24 clock hours from Saturday 12:00 before clocks fall back end at 11:00 on Sunday.
    desk = make_desk(db_url, policy="ca/santa-clara/policy-3-54-2011", place="06085")
    body = desk.intake(
        received_at="2013-11-01T09:00:00",
        release_eligible_at="2013-11-02T12:00:00",
        convictions=[{"category": "robbery", "level": "felony", "years_ago": 2}],
        ice_reimbursement=True,
    )
    assert (body["decision"], body["time_zone"]) == ("honor", "America/Los_Angeles")
    assert body["hold_until"] == "2013-11-03T11:00:00"
    assert body["hold_until_utc"] == "2013-11-03T19:00:00"
    start_utc = dt.datetime(2013, 11, 2, 19, 0)  # 12:00 PDT
    assert dt.datetime.fromisoformat(body["hold_until_utc"]) - start_utc == dt.timedelta(hours=24)
    # An I-247A's 48 real hours across the same night, recorded as an event: Monday 11:00, not 12:00.
    form = desk.intake(
        received_at="2013-11-01T09:00:00",
        detainer_form="I-247A",
        convictions=[{"category": "robbery", "level": "felony", "years_ago": 2}],
        ice_reimbursement=True,
    )
    desk.clock.local = dt.datetime(2013, 11, 2, 12, 0)
    recorded = desk.post(
        f"/detainers/{form['id']}/events", "intake", {"event": "release_eligible", "at": "2013-11-02T12:00:00"}
    ).json()
    assert recorded["hold_until"] == "2013-11-03T11:00:00"  # the policy's 24 h come first
    assert desk.get("/audit/verify", "auditor").json()["ok"]


def test_a_ct_doc_desk_declines_what_the_trust_act_declines_even_when_doc_alone_would_honor(make_desk, db_url):
    desk = make_desk(db_url, policy="ct/doc-2014")
    assert [row["layers"] for row in desk.get("/desk", "auditor").json()["policies"]] == [
        ["ct/trust-act-2013 (state)", "ct/doc-2014 (department)"]
    ]
    facts = {"received_at": "2015-01-05T09:00:00", "release_eligible_at": "2015-01-08T17:00:00"}
    # A judicial warrant: enough for DOC's letter, not for the TRUST Act.
    body = desk.intake(judicial_warrant=True, public_safety_risk=False, **facts)
    assert body["decision"] == "decline"
    assert body["policy_id"] == "ct/doc-2014"  # the desk's policy in force …
    assert body["decided_by"] == "ct/trust-act-2013"  # … and the layer whose answer governs
    assert body["layers"] == (
        "ct/trust-act-2013 (state): decline by default; ct/doc-2014 (department): honor by judicial-warrant"
    )
    assert (body["rule"], body["hold_until"]) == ("default", None)
    # The TRUST Act's duty to notify ICE binds the DOC desk too.
    events = desk.get(f"/detainers/{body['id']}", "supervisor").json()["events"]
    (notice,) = [event for event in events if event["kind"] == "ice_notified"]
    assert notice["details"]["duty"] == "Conn. Gen. Stat. § 54-192h(c)"
    # Both honor a final order with a judicial warrant: the earliest deadline, both layers named.
    both = desk.intake(judicial_warrant=True, final_order=True, public_safety_risk=False, **facts)
    assert both["decision"] == "honor"
    assert "ct/trust-act-2013 (state): honor" in both["layers"] and "ct/doc-2014 (department): honor" in both["layers"]
    assert both["hold_until"] == "2015-01-12T17:00:00"  # 48 h excluding the weekend
    report = desk.get("/reports/quarterly?quarter=2015Q1", "auditor").json()
    assert {row["policy_id"] for row in report["by_rule"]} >= {"ct/trust-act-2013"}
    assert desk.get("/audit/verify", "auditor").json()["ok"]


def test_the_policy_in_force_clause_by_clause(make_desk, db_url):
    desk = make_desk(db_url, policy="ct/doc-2014")
    response = desk.get("/policy?on=2015-01-05", "intake")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["policy_id"] == "ct/doc-2014"
    assert [layer["policy_id"] for layer in body["layers"]] == ["ct/trust-act-2013", "ct/doc-2014"]
    trust = body["layers"][0]
    assert trust["clauses"], "the TRUST Act lists its clauses"
    statuses = {clause["status"] for layer in body["layers"] for clause in layer["clauses"]}
    assert statuses <= {"modelled", "approximated", "not_modelled", "reconstructed"}
    assert any(clause["applied_by"] for clause in trust["clauses"])
    for clause in trust["clauses"]:
        assert clause["citation"] and clause["text"] and clause["status_phrase"]
    assert desk.get("/policy?on=2013-01-01", "intake").status_code == 422  # before the desk's first policy


def test_desk_show_prints_the_layers_and_clauses(tmp_path):
    runner = CliRunner()
    data_dir = tmp_path / "desk"
    init = runner.invoke(
        app,
        [
            "desk",
            "init",
            "--data-dir",
            str(data_dir),
            "--jurisdiction",
            "Connecticut DOC",
            "--policy",
            "ct/doc-2014",
            "--admin-user",
            "warden",
        ],
        input=PASSWORD + "\n",
    )
    assert init.exit_code == 0, init.output
    assert "America/New_York" in init.output
    shown = runner.invoke(app, ["desk", "show", "--data-dir", str(data_dir), "--on", "2015-01-05"])
    assert shown.exit_code == 0, shown.output
    assert "ct/trust-act-2013 (state) + ct/doc-2014 (department)" in shown.output
    assert "54-192h" in shown.output and "Clause" in shown.output
    as_json = runner.invoke(app, ["desk", "show", "--data-dir", str(data_dir), "--on", "2015-01-05", "--json"])
    document = json.loads(as_json.stdout)
    assert document["desk"]["time_zone"] == "America/New_York"
    assert document["policy"]["layers"][0]["clauses"]
    several = runner.invoke(
        app,
        [
            "desk",
            "init",
            "--data-dir",
            str(tmp_path / "us"),
            "--jurisdiction",
            "U.S.",
            "--policy",
            "us/ice-request",
            "--admin-user",
            "warden",
        ],
        input=PASSWORD + "\n",
    )
    assert several.exit_code == 2 and "time_zone" in several.output  # the U.S. keeps several zones


def test_the_quarterly_report_shows_the_profiling_indicator_beside_irving(make_desk, db_url):
    desk = make_desk(db_url, place="09009")  # New Haven County: activated 2012-02-22
    minor = [{"category": "traffic", "level": "misdemeanor"}]
    felony = [{"category": "robbery", "level": "felony"}]
    desk.intake(received_at="2014-01-10T09:00:00", current_charges=minor)
    desk.intake(received_at="2014-01-11T09:00:00", current_charges=minor + felony)
    desk.intake(received_at="2014-02-10T09:00:00", current_charges=minor)
    desk.intake(received_at="2014-02-12T09:00:00")  # no charge in the record: not in the share
    report = desk.get("/reports/quarterly?quarter=2014Q1", "auditor").json()
    indicator = report["profiling"]
    assert indicator["quarter"] == {"detainers": 4, "with_charges": 3, "minor_only": 2, "minor_only_share": 0.6667}
    assert indicator["activation"] == "2012-02-22"
    january, february = indicator["by_month"]
    assert (january["month"], january["months_from_activation"], january["minor_only_share"]) == ("2014-01-01", 23, 0.5)
    assert (february["detainers"], february["with_charges"], february["minor_only"]) == (2, 1, 1)
    reference = indicator["reference"]
    assert reference["share"] == 0.98 and reference["descriptive"] is True
    assert "descriptive" in reference["label"].lower() and "not proof of profiling" in reference["caveat"]

    rows = list(csv.DictReader(io.StringIO(desk.get("/reports/quarterly?quarter=2014Q1&format=csv", "auditor").text)))
    profiling = {row["metric"]: row["value"] for row in rows if row["section"] == "profiling"}
    assert profiling == {"detainers": "4", "with_charges": "3", "minor_only": "2", "minor_only_share": "0.6667"}
    assert any(row["section"] == "profiling_by_month" and row["month"] == "2014-02-01" for row in rows)
    (irving,) = [row for row in rows if row["section"] == "profiling_reference"]
    assert irving["value"] == "0.98" and "descriptive" in irving["citation"]

    page = desk.get("/reports/quarterly?quarter=2014Q1&format=html", "auditor").text
    assert "profiling indicator" in page and "66.7%" in page and "98%" in page
    assert "not proof of profiling" in page


def test_rows_written_before_migration_0003_keep_their_digests():
    key = AuditKey.generate()
    old = {"id": 1, "jurisdiction": "Connecticut", "created_utc": dt.datetime(2014, 1, 1)}
    new = {**old, "place": None, "time_zone": None}
    # The digest of the row as 0002 stored it (the table's columns then) equals the digest now, the new
    # columns null; a value written into one changes it.
    legacy = key.mac("row:desk:" + audit.canonical_json({name: audit._plain(value) for name, value in old.items()}))
    assert row_digest(key, "desk", new) == legacy
    assert row_digest(key, "desk", {**new, "time_zone": "America/New_York"}) != legacy


def test_the_desk_reads_the_machine_clock_on_the_jails_wall_clock(make_desk, db_url):
    """A server in UTC (or anywhere) must count a Connecticut jail's holds on Connecticut's clock:
    read in the machine's own zone, a deadline 2 h away showed as overdue by 3 h."""
    from zoneinfo import ZoneInfo

    from securecomm.desk.service import Desk

    made = make_desk(db_url)
    served = Desk(made.database, audit_key=made.desk.audit_key)  # the server's default clock
    for zone in ("America/New_York", "Asia/Tokyo"):
        reading = SystemClock(lambda zone=zone: zone).local_now()
        expected = dt.datetime.now(ZoneInfo(zone)).replace(tzinfo=None)
        assert abs(reading - expected) < dt.timedelta(seconds=5), zone
    in_connecticut = dt.datetime.now(ZoneInfo("America/New_York")).replace(tzinfo=None)
    assert abs(served.clock.local_now() - in_connecticut) < dt.timedelta(seconds=5)


def test_every_column_the_chain_vouches_for_holds_a_scalar():
    """row_digest builds a row's content in sorted column order and spells it without sorting: the same text
    as canonical_json only while no column holds a mapping (JSON, array) whose keys would need sorting."""
    for table in audit.TRACKED.values():
        for column in table.columns:
            assert column.type.python_type in (str, int, float, bool, bytes, dt.datetime, dt.date), column


@settings(max_examples=200, deadline=None)
@given(
    texts=st.lists(st.text(), min_size=6, max_size=6),
    seq=st.integers(min_value=1, max_value=2**63 - 1),  # keyed from 1 (AuditKey.generate)
    moment=st.datetimes(),
)
def test_the_chains_texts_are_canonical_json_as_before(texts, seq, moment):
    """An entry's hash and a row's digest hash the very texts they hashed when both were made with
    canonical_json (a chain written before verifies), whatever the strings hold."""
    key = AuditKey.generate()
    actor, action, subject, details, recorded_utc, office = texts
    spelt_before = audit.canonical_json(
        {
            "seq": seq,
            "recorded_utc": recorded_utc,
            "actor": actor,
            "action": action,
            "subject": subject,
            "details": details,
        }
    )
    assert audit._entry_hash("p" * 64, seq, recorded_utc, actor, action, subject, details, key) == key.mac(
        "p" * 64 + spelt_before
    )
    row = dict.fromkeys(audit.COLUMN_NAMES["detainer"])
    row |= {"id": seq, "booking_ref": actor, "facts": details, "issuing_office": office, "created_utc": moment}
    row |= {"received_at": moment, "created_by": subject, "layers": action, "explanation": recorded_utc}
    content = {
        name: audit._plain(value)
        for name, value in row.items()
        if value is not None or name not in audit.LATER_COLUMNS["detainer"]
    }
    assert row_digest(key, "detainer", row) == key.mac("row:detainer:" + audit.canonical_json(content))
