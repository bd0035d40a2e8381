"""The Deportation Data Project's detainer records, replayed."""

import csv
import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from securecomm.replay.ddp import import_ddp
from securecomm.replay.run import replay
from securecomm.replay.source import SourceError

from .sources import POLICIES


@pytest.fixture(scope="module")
def raw(ddp_path):
    with ddp_path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def imported(ddp_path):
    return import_ddp(ddp_path)


def record(imported, case_id: str) -> dict:
    found = imported.tables.records.filter(pl.col("case_id") == case_id).with_columns(pl.col(pl.Enum).cast(pl.String))
    assert found.height == 1
    row = found.item(0, "row")
    convictions = imported.tables.convictions.filter(pl.col("row") == row).drop("row")
    provenance = imported.provenance.filter(pl.col("case_id") == case_id).to_dicts()[0]
    return {
        **found.to_dicts()[0],
        "convictions": convictions.with_columns(pl.col(pl.Enum).cast(pl.String)).to_dicts(),
        **{f"p_{key}": value for key, value in provenance.items()},
    }


def write_variant(tmp_path: Path, raw: list[dict], name: str, change) -> Path:
    rows = [dict(row) for row in raw]
    change(rows)
    path = tmp_path / name
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_one_case_per_record_each_keeping_its_source(imported, raw):
    assert imported.case_count == len(raw) == 22
    expected = [f"{row['sheet_original']}:{row['row_original']}" for row in raw]
    assert imported.provenance.get_column("case_id").to_list() == expected
    assert imported.provenance.get_column("source_rows").to_list() == [[row] for row in range(2, 24)]
    assert imported.rows.get_column("role").unique().to_list() == ["detainer"]
    assert imported.provenance.get_column("complete").all()


def test_a_drug_conviction_record(imported):
    # row 2: Dangerous Drugs, 74 months, convicted 2025-12-18; detainer prepared 2026-02-11; born 1996
    found = record(imported, "FY2026:328")
    assert found["p_source_rows"] == [2]
    assert found["age"] == 29  # 2026 − 1996 − 1: the lower bound
    assert found["detainer_form"] == "I-247A"
    [conviction] = found["convictions"]
    assert (conviction["category"], conviction["level"]) == ("drug_possession", "felony")
    assert conviction["years_ago"] == pytest.approx((dt.date(2026, 2, 11) - dt.date(2025, 12, 18)).days / 365.25)
    assert conviction["years_since_release"] is None
    assert (found["final_order"], found["aggravated_felony"], found["pending_charges"]) == (False, False, False)
    assert found["release_eligible_at"] is None
    assert (found["p_actual_outcome"], found["p_actual_detail"]) == ("declined", "Detainer Declined by LEA")


def test_a_threat_level_3_conviction_is_a_misdemeanor(imported):
    # row 23: Domestic Violence, 90 days, "1 Convicted Criminal", threat level 3
    [conviction] = record(imported, "FY2026:96275")["convictions"]
    assert (conviction["category"], conviction["level"]) == ("domestic_violence", "misdemeanor")


def test_pending_charges_and_a_final_order(imported):
    # row 9: "2 Pending Criminal Charges", final order YES (2025-09-17), no conviction
    found = record(imported, "FY2026:15031")
    assert (found["pending_charges"], found["final_order"], found["convictions"]) == (True, True, [])


def test_a_reinstated_final_order_is_a_prior_removal_and_the_conflict_is_reported(imported):
    found = record(imported, "FY2026:96259")  # row 22: "[16] Reinstated Final Order", final_order_yes_no NO
    assert (found["prior_removal"], found["final_order"]) == (True, False)
    conflicts = imported.qa.for_check("conflicting_fields")
    assert conflicts.filter(pl.col("row") == 22).get_column("column").to_list() == ["case_category"]


def test_aggravated_felony_conflicts_are_reported(imported, raw):
    expected = [
        number
        for number, row in enumerate(raw, start=2)
        if row["aggravated_felony_yes_no"] == "YES" and row["felon"] == "Not an Aggravated Felon"
    ]
    assert expected == [6, 10, 12, 15, 16, 17, 21]
    found = imported.qa.for_check("conflicting_fields").filter(pl.col("column") == "felon")
    assert found.get_column("row").to_list() == expected
    flagged = imported.tables.records.filter(pl.col("aggravated_felony")).height
    assert flagged == len(expected)


def test_no_release_dates_so_no_hold_hours(imported):
    assert imported.qa.for_check("release_time_unknown").height == 22


def test_summary_numbers(ddp_path):
    result = replay("ddp", ddp_path, POLICIES)
    summary = {row["policy_id"]: row for row in result.summary.to_dicts()}
    assert [summary["us/ice-request"][d] for d in ("honor", "decline", "review")] == [22, 0, 0]
    assert [summary["ct/trust-act-2013"][d] for d in ("honor", "decline", "review")] == [21, 0, 1]
    assert [summary["ca/trust-act-2013"][d] for d in ("honor", "decline", "review")] == [19, 3, 0]
    assert {row["hold_hours"] for row in summary.values()} == {0.0}
    assert result.actual.to_dicts()[0] | {} == {
        "actual_outcome": "declined",
        "label": "jail declined the detainer",
        "cases": 22,
        "release_time_known": 0,
        "held_after_eligibility": 0,
        "hours_after_eligibility": 0.0,
        "median_hours_after_eligibility": None,
    }
    # the three California declines are the three records with pending charges only
    ca = result.decisions.filter((pl.col("policy_id") == "ca/trust-act-2013") & (pl.col("decision") == "decline"))
    assert sorted(ca.get_column("case_id")) == ["FY2026:12920", "FY2026:13632", "FY2026:15031"]


def test_redaction_codes_become_no_value_and_are_reported(tmp_path, raw):
    def redact(rows):
        rows[3]["birth_year"] = "(b)(6)"
        rows[4]["final_order_yes_no"] = "(b)(7)(C)"

    imported = import_ddp(write_variant(tmp_path, raw, "redacted.csv", redact))
    redacted = imported.qa.for_check("redacted_value").select("row", "column", "value").rows()
    assert redacted == [(5, "birth_year", "(b)(6)"), (6, "final_order_yes_no", "(b)(7)(C)")]
    assert imported.tables.records.item(3, "age") is None


def test_a_conviction_whose_level_cannot_be_told_is_left_out_and_reported(tmp_path, raw):
    def short_sentence(rows):
        rows[0]["msc_sentence_months"] = "6"  # threat level 2: felony or misdemeanor cannot be told

    imported = import_ddp(write_variant(tmp_path, raw, "short.csv", short_sentence))
    issue = imported.qa.for_check("conviction_level_unknown").to_dicts()
    assert [(item["row"], item["case_id"]) for item in issue] == [(2, "FY2026:328")]
    assert "6 months" in issue[0]["message"]
    assert imported.tables.convictions.filter(pl.col("row") == 0).height == 0
    assert imported.provenance.filter(pl.col("case_id") == "FY2026:328").item(0, "complete") is False


def test_parquet_and_csv_give_the_same_cases(tmp_path, ddp_path, imported):
    frame = pl.read_csv(ddp_path, infer_schema=False, null_values=["NA"])
    frame = frame.with_columns(pl.col("detainer_prepare_date").str.to_date())  # a typed date, as DDP ships
    path = tmp_path / "detainers.parquet"
    frame.write_parquet(path)
    from_parquet = import_ddp(path)
    assert from_parquet.tables.records.drop("row").equals(imported.tables.records.drop("row"))
    assert from_parquet.tables.convictions.equals(imported.tables.convictions)
    assert from_parquet.provenance.get_column("source_rows").to_list() == [[row] for row in range(1, 23)]


def test_repeated_records_are_flagged_as_likely_duplicates(tmp_path, raw):
    def repeat(rows):
        rows.append(dict(rows[4]))  # the same ICE row twice
        rows[1]["duplicate_likely"] = "TRUE"  # DDP's own flag

    imported = import_ddp(write_variant(tmp_path, raw, "dup.csv", repeat))
    assert imported.case_count == 23
    flagged = imported.provenance.filter(pl.col("likely_duplicate")).select("case_id", "duplicate_of").rows()
    assert flagged == [("FY2026:1302", None), ("FY2026:9184@row 24", "FY2026:9184@row 6")]
    reasons = imported.qa.for_check("likely_duplicate").sort("row").get_column("message").to_list()
    assert reasons == [
        "the Deportation Data Project flags it duplicate_likely",
        "same original ICE sheet and row as FY2026:9184@row 6",
    ]


def test_a_missing_column_names_the_file(tmp_path, raw):
    path = write_variant(
        tmp_path, [{k: v for k, v in row.items() if k != "detainer_type"} for row in raw], "x.csv", lambda rows: None
    )
    with pytest.raises(SourceError, match=r"x\.csv row 1 \(the header\): missing column 'detainer_type'"):
        import_ddp(path)


def test_an_unparseable_date_names_file_row_and_column(tmp_path, raw):
    def bad(rows):
        rows[10]["msc_conviction_date"] = "16/05/2025"

    path = write_variant(tmp_path, raw, "d.csv", bad)
    with pytest.raises(SourceError, match=r"d\.csv row 12, column 'msc_conviction_date': cannot read '16/05/2025'"):
        import_ddp(path)
