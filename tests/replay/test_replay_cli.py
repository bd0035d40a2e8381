"""`securecomm replay` as a user runs it: what it prints, what it writes, how it refuses bad input."""

import csv
import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from securecomm.cli import app

from .sources import POLICIES

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(arg) for arg in args])


def flat(text: str) -> str:
    return " ".join(text.split())


def copy_with(tmp_path: Path, source: Path, name: str, change) -> Path:
    with source.open(newline="") as handle:
        reader = csv.DictReader(handle)
        fields, rows = list(reader.fieldnames), list(reader)
    fields, rows = change(fields, rows) or (fields, rows)
    path = tmp_path / name
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_pierce_replay_prints_the_source_checks_summary_and_actual_outcomes(pierce_path):
    result = run("replay", "--format", "pierce", pierce_path, "--policies", ",".join(POLICIES))
    assert result.exit_code == 0, result.output
    text = flat(result.stdout)
    assert (
        "691 source rows → 204 cases (461 charge rows, 204 detainer rows, 24 other agencies' holds, 2 rows not mapped)"
        in text
    )
    assert "139 of 204 cases have a known release-eligibility time; 2 decided on incomplete records" in text
    assert "row 27: charge 'BAIL JUMP' left out" in text and "row 188: charge 'BAIL JUMP' left out" in text
    assert "Decisions by policy" in text and "What actually happened" in text
    assert "│ 204 │ 204 │ 0 │ 0 │ 139 │ 9,494.8 │" in text
    assert "handed to ICE │ 125 │ 44 of 123: 2,963.5 h" in text
    assert "What the source does not record" in text and "Prior criminal history is not in the extract" in text


def test_json_has_the_same_numbers_and_every_issue(pierce_path):
    result = run("replay", "--format", "pierce", pierce_path, "--policies", ",".join(POLICIES), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["source"]["rows"] == 691 and report["source"]["cases"] == 204
    assert report["source"]["row_roles"] == {"charge": 461, "detainer": 204, "hold": 24, "not_mapped": 2}
    policies = {row["policy_id"]: row for row in report["policies"]}
    # 147 declines (148 before the TRUST Act's (a)(3) list as SB 54 reprints it)
    assert policies["ca/trust-act-2013"]["decline"] == 147
    assert policies["us/ice-request"]["hold_hours"] == 9494.8
    assert (
        len(report["issues"]) == sum(check["count"] for check in report["quality"] if check["unit"] == "rows") + 16 + 65
    )
    assert {row["actual_outcome"] for row in report["actual"]} == {"to_ice", "transferred", "cancelled", "released"}
    assert len(report["actual_vs_policy"]) == 4 * len(POLICIES)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_out_writes_every_case_under_every_policy(tmp_path, ddp_path, suffix):
    out = tmp_path / f"decisions{suffix}"
    result = run("replay", "--format", "ddp", ddp_path, "--policies", ",".join(POLICIES), "--out", out)
    assert result.exit_code == 0, result.output
    assert "wrote 66 decisions (22 cases × 3 policies)" in flat(result.stderr)
    frame = pl.read_csv(out, infer_schema=False) if suffix == ".csv" else pl.read_parquet(out)
    assert frame.height == 66
    assert {"case_id", "policy_id", "decision", "hold_until", "actual_outcome", "source_file", "source_rows"} <= set(
        frame.columns
    )
    first = frame.row(0, named=True)
    assert first["source_rows"] == ("2" if suffix == ".csv" else [2])
    assert list(tmp_path.iterdir()) == [out]


def test_a_pierce_csv_keeps_all_source_rows_of_a_case(tmp_path, pierce_path):
    out = tmp_path / "decisions.csv"
    result = run("replay", "--format", "pierce", pierce_path, "--policies", "us/ice-request", "--out", out)
    assert result.exit_code == 0, result.output
    frame = pl.read_csv(out, infer_schema=False)
    row = frame.filter(pl.col("case_id") == "107dfc6e2baea3003a41ebf3d9d3ff3479e39ac6").row(0, named=True)
    assert row["source_rows"] == "40;41;42;43;44;45;46;47"
    assert (row["release_eligible_at"], row["hold_until"]) == ("2018-04-19T08:00:00", "2018-04-23T08:00:00")


def drop_column(column):
    def change(fields, rows):
        return [field for field in fields if field != column], rows

    return change


def set_cell(index, column, value):
    def change(fields, rows):
        rows[index][column] = value

    return change


@pytest.mark.parametrize(
    ("source", "name", "change", "args", "message"),
    [
        (
            "pierce",
            "nocol.csv",
            drop_column("release_disposition_desc"),
            ("--format", "pierce"),
            "nocol.csv row 1 (the header): missing column 'release_disposition_desc'",
        ),
        (
            "pierce",
            "baddate.csv",
            set_cell(4, "charge_release_dt", "2017-13-45 99:00:00"),
            ("--format", "pierce"),
            "baddate.csv row 6, column 'charge_release_dt': cannot read '2017-13-45 99:00:00' as a date-time",
        ),
        (
            "ddp",
            "badflag.csv",
            set_cell(2, "final_order_yes_no", "MAYBE"),
            ("--format", "ddp"),
            "badflag.csv row 4, column 'final_order_yes_no': 'MAYBE' is not a yes/no value",
        ),
        (
            "pierce",
            "same.csv",
            None,
            ("--format", "jail"),
            "unknown format 'jail'; use ddp, pierce, or mapping:FILE.yaml",
        ),
        ("pierce", "same.csv", None, ("--format", "mapping:none.yaml"), "no such mapping file none.yaml"),
        (
            "pierce",
            "same.csv",
            None,
            ("--format", "pierce", "--policies", "us/ice-requests"),
            "unknown policy 'us/ice-requests'",
        ),
        (
            "pierce",
            "same.csv",
            None,
            ("--format", "pierce", "--policies", "us/ice/offense-levels-2010"),
            "policy 'us/ice/offense-levels-2010' is a classification policy",
        ),
    ],
)
def test_bad_input_names_file_row_and_column_and_writes_nothing(
    tmp_path, pierce_path, ddp_path, source, name, change, args, message
):
    original = pierce_path if source == "pierce" else ddp_path
    path = copy_with(tmp_path, original, name, change or (lambda fields, rows: None))
    out = tmp_path / "out.csv"
    policies = () if "--policies" in args else ("--policies", "us/ice-request")
    result = run("replay", path, *args, *policies, "--out", out)
    assert result.exit_code == 2, result.output
    assert message in flat(result.stderr)
    assert result.stdout == ""
    assert not out.exists()
    assert sorted(tmp_path.iterdir()) == [path]


def test_an_unknown_output_type_is_refused_before_any_work(tmp_path, ddp_path):
    out = tmp_path / "decisions.xlsx"
    result = run("replay", "--format", "ddp", ddp_path, "--policies", "us/ice-request", "--out", out)
    assert result.exit_code == 2
    assert "unknown file type '.xlsx'; use .csv or .parquet" in flat(result.stderr)
    assert not out.exists()


def test_a_stop_threshold_stops_the_replay_and_writes_nothing(tmp_path, pierce_path):
    # 70 descriptions garbled; 3 keep a qualifier that is itself recognised ("BURG 1", "FTA"), so
    # unknown charge text on 67 rows of 691 (10%) crosses the 5% stop threshold.
    def garble(fields, rows):
        for row in rows[:200]:
            if row["booking_charge_desc"] not in ("HOLD IMMIGRAT",) and row["booking_charge_desc"][:1] in "ABCDEF":
                row["booking_charge_desc"] = "QWERTY " + row["booking_charge_desc"][:1]

    path = copy_with(tmp_path, pierce_path, "garbled.csv", garble)
    out = tmp_path / "out.parquet"
    result = run("replay", "--format", "pierce", path, "--policies", "us/ice-request", "--out", out)
    assert result.exit_code == 2, result.output
    message = flat(result.stderr)
    assert "garbled.csv: quality checks stopped the replay" in message
    assert "unmapped_charge: 67 of 691 rows (10%)" in message and "stop threshold 5%" in message
    assert "no rule of the category map recognises 'QWERTY" in message
    assert not out.exists()


# --- the profiling indicator (issue 15): by month around activation, beside Irving's pattern -------------

PIERCE_ACTIVATION = (2012, 4)  # Pierce County, WA (53053) in the shipped county table: 2012-04-03
CRIMINAL_LEVELS = {"class A felony", "class B felony", "class C felony", "gross misdemeanor", "misdemeanor"}
CRIMINAL_LEVELS.add("civil infraction")
TRAFFIC_FELONIES = {"FEL PUR/ELUDE"}  # felony eluding a police vehicle, RCW 46.61.024 (Title 46, motor vehicles)


def pierce_by_month(path: Path) -> dict[str, dict[str, int]]:
    """The indicator read straight from the extract's own coding (UWCHR's `category` of each charge row),
    without the importer: per month of booking, the bookings (each carries an ICE hold), those with a
    criminal charge, and those whose every felony is a traffic offense (none, for most)."""
    bookings: dict[str, dict[str, object]] = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            booking = bookings.setdefault(row["booking_id"], {"month": row["booking_dt"][:7], "charged": False})
            booking.setdefault("serious", False)
            if row["category"] in CRIMINAL_LEVELS:
                booking["charged"] = True
                if "felony" in row["category"] and row["booking_charge_desc"] not in TRAFFIC_FELONIES:
                    booking["serious"] = True
    months: dict[str, dict[str, int]] = {}
    for booking in bookings.values():
        month = months.setdefault(str(booking["month"]), {"detainers": 0, "with_charges": 0, "minor_only": 0})
        month["detainers"] += 1
        month["with_charges"] += bool(booking["charged"])
        month["minor_only"] += bool(booking["charged"] and not booking["serious"])
    return months


def months_from(month: str, year: int, number: int) -> int:
    return int(month[:4]) * 12 + int(month[5:7]) - (year * 12 + number)


def test_the_profiling_table_counts_the_real_extract_around_the_countys_activation(pierce_path):
    expected = pierce_by_month(pierce_path)
    result = run("replay", "--format", "pierce", pierce_path, "--policies", "us/ice-request")
    assert result.exit_code == 0, result.output
    text = flat(result.stdout)
    assert (
        "Detainers on people booked only for minor charges, by month of booking; months counted from activation "
        "on 2012-04-03 (the activation date of Pierce County, WA (53053) in the shipped county table)" in text
    )
    for month, counts in expected.items():
        offset = months_from(month, *PIERCE_ACTIVATION)
        share = f"{counts['minor_only'] / counts['with_charges']:.0%}" if counts["with_charges"] else "—"
        row = f"│ {month} │ +{offset} │ {counts['detainers']} │ {counts['with_charges']} │ {counts['minor_only']} │ {share} │ 98% │"
        assert row in text, row
    totals = {
        key: sum(month[key] for month in expected.values()) for key in ("detainers", "with_charges", "minor_only")
    }
    assert totals == {"detainers": 204, "with_charges": 188, "minor_only": 40}
    assert "│ all months │ │ 204 │ 188 │ 40 │ 21% │ 98% │" in text
    assert "Gardner & Kohli" in text and "not proof of profiling" in text

    # The same numbers in the JSON, with the activation and where it came from.
    report = json.loads(
        run("replay", "--format", "pierce", pierce_path, "--policies", "us/ice-request", "--json").stdout
    )
    profiling = report["profiling"]
    assert profiling["activation"] == {
        "date": "2012-04-03",
        "source": "the activation date of Pierce County, WA (53053) in the shipped county table",
    }
    by_month = {row["month"][:7]: row for row in profiling["by_month"]}
    assert {month: {key: row[key] for key in expected[month]} for month, row in by_month.items()} == expected
    assert all(
        row["months_from_activation"] == months_from(month, *PIERCE_ACTIVATION) for month, row in by_month.items()
    )


def test_activation_can_be_given_and_a_place_named(pierce_path, ddp_path):
    result = run(
        "replay", "--format", "pierce", pierce_path, "--policies", "us/ice-request", "--activation", "2016-09-01"
    )
    assert result.exit_code == 0, result.output
    text = flat(result.stdout)
    assert "months counted from activation on 2016-09-01 (given (--activation))" in text
    assert "│ 2015-12 │ -9 │ 1 │" in text and "│ 2016-09 │ 0 │ 7 │" in text and "│ 2018-07 │ +22 │ 7 │" in text

    # The DDP's detainer table names no county: by month only, unless a place or a date is given.
    result = run("replay", "--format", "ddp", ddp_path, "--policies", "us/ice-request", "--json")
    assert json.loads(result.stdout)["profiling"]["activation"] is None
    result = run("replay", "--format", "ddp", ddp_path, "--policies", "us/ice-request", "--place", "27145", "--json")
    activation = json.loads(result.stdout)["profiling"]["activation"]
    assert activation["date"] == "2012-02-07" and "Stearns County, MN (27145)" in activation["source"]

    bad_date = run(
        "replay", "--format", "pierce", pierce_path, "--policies", "us/ice-request", "--activation", "2012-13-01"
    )
    assert bad_date.exit_code != 0 and "--activation: '2012-13-01' is not a date (YYYY-MM-DD)" in flat(bad_date.output)
    bad_place = run("replay", "--format", "ddp", ddp_path, "--policies", "us/ice-request", "--place", "99999")
    assert bad_place.exit_code != 0 and "--place 99999" in flat(bad_place.output)
