"""The Pierce County jail extract, replayed: every row accounted for, known bookings, reproducible figures.

Expected figures are computed here from the CSV with the standard library, independently of
the importer, wherever that can be done simply.
"""

import csv
import datetime as dt
from collections import Counter, defaultdict

import polars as pl
import pytest

from securecomm.law.holdclock import hold_until
from securecomm.replay.run import import_source, replay

from .sources import POLICIES

STAMP = "%Y-%m-%d %H:%M:%S"


@pytest.fixture(scope="module")
def raw(pierce_path):
    """The CSV as dicts, each with its spreadsheet row number (header = row 1)."""
    with pierce_path.open(newline="") as handle:
        return [{**row, "__row": number} for number, row in enumerate(csv.DictReader(handle), start=2)]


@pytest.fixture(scope="module")
def result(pierce_path):
    return replay("pierce", pierce_path, POLICIES)


@pytest.fixture(scope="module")
def imported(result):
    return result.imported


def case(imported, case_id: str) -> dict:
    records = imported.tables.records.filter(pl.col("case_id") == case_id)
    assert records.height == 1
    row = records.item(0, "row")
    charges = imported.tables.current_charges.filter(pl.col("row") == row).drop("row")
    convictions = imported.tables.convictions.filter(pl.col("row") == row).drop("row")
    provenance = imported.provenance.filter(pl.col("case_id") == case_id).to_dicts()[0]
    return {
        **records.to_dicts()[0],
        "charges": sorted(charges.with_columns(pl.all().cast(pl.String)).rows()),
        "convictions": convictions.with_columns(pl.col(pl.Enum).cast(pl.String)).rows(),
        **{f"p_{key}": value for key, value in provenance.items()},
    }


def test_every_source_row_is_accounted_for(imported, raw):
    rows = imported.rows
    assert rows.height == len(raw) == 691
    assert rows.get_column("row").to_list() == [row["__row"] for row in raw]
    assert set(rows.get_column("role")) <= {"charge", "detainer", "hold", "not_mapped"}
    # every row belongs to the case of its booking
    assert rows.get_column("case_id").to_list() == [row["booking_id"] for row in raw]
    # every row not mapped is reported by a quality check, with its reason
    not_mapped = rows.filter(pl.col("role") == "not_mapped").get_column("row").to_list()
    unmapped_checks = [name for name, check in imported.qa.checks.items() if check.unmapped]
    reported = imported.qa.issues.filter(pl.col("check").is_in(unmapped_checks)).get_column("row").to_list()
    assert sorted(not_mapped) == sorted(reported) == [27, 188]
    # and each case lists exactly the rows of its booking
    by_booking = defaultdict(list)
    for row in raw:
        by_booking[row["booking_id"]].append(row["__row"])
    provenance = dict(imported.provenance.select("case_id", "source_rows").iter_rows())
    assert provenance == by_booking
    assert set(imported.provenance.get_column("source_file")) == {"allholds_bookings_with_ice_hold.csv"}


def test_row_roles_follow_the_charge_text(imported, raw):
    roles = Counter(imported.rows.get_column("role"))
    holds = sum(1 for row in raw if row["booking_charge_desc"] == "HOLD IMMIGRAT")
    assert holds == 204
    assert roles == {"charge": 461, "detainer": 204, "hold": 24, "not_mapped": 2}


def test_one_case_per_booking(imported, raw):
    assert imported.case_count == len({row["booking_id"] for row in raw}) == 204


def test_a_booking_with_a_dismissed_misdemeanor(imported):
    # rows 7-8: ASLT 4 (gross misdemeanor), "NCF, Pending Inv" at 21:00; the booking ended 14:55,
    # the immigration hold "Immigration" — handed to ICE.
    found = case(imported, "03c320d1a9cb3768a9c887175076105f4432bb08")
    assert found["p_source_rows"] == [7, 8]
    assert found["charges"] == [("simple_assault", "misdemeanor", None)]
    assert found["convictions"] == []
    assert (found["pending_charges"], found["bond_posted"]) == (False, False)
    # the charge's 21:00 is after the booking's own release: eligibility is capped at 14:55
    assert found["release_eligible_at"] == dt.datetime(2017, 5, 17, 14, 55)
    assert (found["p_actual_outcome"], found["p_actual_detail"]) == ("to_ice", "Immigration")
    assert found["judicial_warrant"] is False
    assert found["public_safety_risk"] is None


def test_a_booking_with_dismissed_felonies_and_a_cancelled_prison_hold(imported):
    # rows 40-47: six felony charges, all Dismissed on 2018-04-18 12:00; HOLD WSI cancelled
    # 2018-04-19 08:00; handed to ICE when the booking ended at 14:00.
    found = case(imported, "107dfc6e2baea3003a41ebf3d9d3ff3479e39ac6")
    assert found["p_source_rows"] == list(range(40, 48))
    assert found["charges"] == [
        ("burglary", "felony", "A"),
        ("burglary", "felony", "A"),
        ("theft", "felony", "B"),
        ("theft", "felony", "B"),
        ("theft", "felony", "B"),
        ("weapons", "felony", "B"),
    ]
    assert found["convictions"] == []
    assert found["release_eligible_at"] == dt.datetime(2018, 4, 19, 8, 0)
    assert found["p_released_at"] == dt.datetime(2018, 4, 19, 14, 0)


def test_a_sentence_served_during_the_booking_is_a_conviction(imported):
    # rows 26-28: POSSESS STOLEN VEHICLE (class B felony), Credit for Time Served; BAIL JUMP
    # coded "other" by UWCHR has no level, so it is reported and the case is incomplete.
    found = case(imported, "0b86094783f1179cf0c4924fc9cd4e645642f0a3")
    assert ("theft", "felony", "B") in found["charges"]
    # (category, level, class, years_ago, years_since_release, currently_in_custody: not recorded)
    assert ("theft", "felony", "B", 0.0, 0.0, None) in found["convictions"]
    assert found["p_complete"] is False
    issue = imported.qa.for_check("charge_without_level").filter(pl.col("row") == 27).to_dicts()[0]
    assert issue["column"] == "category" and issue["value"] == "other"
    assert "BAIL JUMP" in issue["message"]


def test_a_booking_on_the_immigration_hold_alone(imported):
    found = case(imported, "0bb0575d273f1011b2dccc4e77d59d1c78f7156e")  # row 29, "Mini-Chain"
    assert found["charges"] == [] and found["release_eligible_at"] is None
    assert found["p_actual_outcome"] == "transferred"
    reason = imported.qa.for_check("release_time_unknown").filter(pl.col("row") == 29).to_dicts()[0]
    assert reason["message"].startswith("held on the immigration hold alone")
    assert reason["value"] == "6.9 days booked"


def test_actual_outcomes_are_the_immigration_holds_dispositions(imported, raw):
    expected = Counter(row["release_disposition_desc"] for row in raw if row["booking_charge_desc"] == "HOLD IMMIGRAT")
    found = Counter(imported.provenance.get_column("actual_detail"))
    assert found == expected
    outcomes = Counter(imported.provenance.get_column("actual_outcome"))
    assert outcomes == {"to_ice": 125, "transferred": 66, "cancelled": 11, "released": 2}


def test_bail_and_personal_recognizance(imported, raw):
    bail = {row["booking_id"] for row in raw if row["release_disposition_desc"] in ("Bail Bond", "Cash Bail")}
    posted = set(imported.tables.records.filter(pl.col("bond_posted")).get_column("case_id"))
    assert posted == bail and len(bail) == 3


def test_quality_report(imported):
    results = {result.check.name: result for result in imported.qa.results()}
    assert (results["charge_without_level"].count, results["charge_without_level"].status) == (2, "warn")
    assert (results["unmapped_charge"].count, results["unknown_disposition"].count) == (0, 0)
    assert results["released_after_booking_release"].count == 224
    assert (results["no_charge"].count, results["release_time_unknown"].count) == (16, 65)
    assert results["likely_duplicate"].count == 0
    assert not imported.qa.stopped()
    reasons = Counter(imported.qa.for_check("release_time_unknown").get_column("message"))
    assert reasons["the booking's last other row ended in 'WSI Chain', not a release from local custody"] == 35


def test_summary_numbers(result):
    summary = {row["policy_id"]: row for row in result.summary.to_dicts()}
    ice = summary["us/ice-request"]
    assert (ice["cases"], ice["honor"], ice["decline"], ice["review"]) == (204, 204, 0, 0)
    assert ice["honored_with_release_time"] == 139
    ct = summary["ct/trust-act-2013"]
    assert (ct["honor"], ct["decline"], ct["review"]) == (77, 0, 127)
    ca = summary["ca/trust-act-2013"]
    # one case more honored (and 96 h more held) since the (a)(3) list as SB 54 reprints it
    assert (ca["honor"], ca["decline"], ca["review"]) == (57, 147, 0)
    assert (ice["hold_hours"], ct["hold_hours"], ca["hold_hours"]) == (9494.8, 4848.0, 3528.0)


def test_hold_hours_agree_with_the_reference_clock(result):
    """The vectorised total equals one computed case by case with the readable hold clock."""
    decisions = result.decisions.filter(pl.col("policy_id") == "us/ice-request")
    total = 0.0
    for start in decisions.get_column("release_eligible_at").drop_nulls():
        deadline = hold_until(start, 48, "business_hours")
        total += (deadline - start).total_seconds() / 3600
    summary = result.summary.filter(pl.col("policy_id") == "us/ice-request")
    assert summary.item(0, "hold_hours") == pytest.approx(round(total, 1))


def test_actual_against_policies(result):
    actual = {row["actual_outcome"]: row for row in result.actual.to_dicts()}
    to_ice = actual["to_ice"]
    assert (to_ice["cases"], to_ice["release_time_known"], to_ice["held_after_eligibility"]) == (125, 123, 44)
    versus = {(row["policy_id"], row["actual_outcome"]): row for row in result.versus.to_dicts()}
    assert [versus[("ca/trust-act-2013", "to_ice")][d] for d in ("honor", "decline", "review")] == [45, 80, 0]
    assert [versus[("ct/trust-act-2013", "to_ice")][d] for d in ("honor", "decline", "review")] == [64, 0, 61]
    for policy in POLICIES:
        assert sum(row["cases"] for key, row in versus.items() if key[0] == policy) == 204


def test_the_replay_is_reproducible(pierce_path, result):
    again = replay("pierce", pierce_path, POLICIES)
    assert again.summary.equals(result.summary)
    assert again.decisions.equals(result.decisions)
    assert import_source("pierce", pierce_path).qa.issues.equals(result.imported.qa.issues)


def test_every_case_is_decided_under_every_policy(result):
    decisions = result.decisions
    assert decisions.height == 204 * len(POLICIES)
    assert decisions.group_by("case_id").len().get_column("len").unique().to_list() == [len(POLICIES)]
    honored = decisions.filter((pl.col("decision") == "honor") & pl.col("release_eligible_at").is_not_null())
    assert honored.get_column("hold_until").null_count() == 0
    assert (honored.get_column("hold_until") > honored.get_column("release_eligible_at")).all()
    assert set(decisions.get_column("decision")) <= {"honor", "decline", "review"}
    # the raw times really are what the importer read
    assert decisions.filter(pl.col("case_id") == "03c320d1a9cb3768a9c887175076105f4432bb08").item(
        0, "hold_until"
    ) == dt.datetime.strptime("2017-05-19 14:55:00", STAMP)
