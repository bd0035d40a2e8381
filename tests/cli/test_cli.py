import json
import re
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from securecomm.cli import app
from securecomm.law.loader import policy_ids

runner = CliRunner()


def run(*args):
    return runner.invoke(app, list(args))


@pytest.fixture
def cases_file(tmp_path):
    path = tmp_path / "cases.jsonl"
    records = [
        {"case_id": "a", "release_eligible_at": "2014-03-06T17:00:00", "final_order": True},
        {"case_id": "b", "release_eligible_at": "2014-03-06T17:00:00", "public_safety_risk": False},
        {"case_id": "c", "release_eligible_at": "2014-03-06T17:00:00"},
    ]
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def test_decide_prints_one_json_object_per_case(cases_file):
    result = run("decide", "ct/trust-act-2013", str(cases_file))
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["decision"] for line in lines] == ["honor", "decline", "review"]
    assert list(lines[0]) == [
        "case_id",
        "policy_id",
        "decision",
        "rule",
        "citation",
        "hold_until",
        "explanation",
        "hold_until_utc",
        "time_zone",
        "time_zone_source",
        "hold_citation",
    ]
    assert lines[0]["hold_until"] == "2014-03-10T17:00:00"
    # Connecticut's clock: daylight saving time began on 2014-03-09, so 17:00 there is 21:00 UTC.
    assert lines[0]["hold_until_utc"] == "2014-03-10T21:00:00"
    assert (lines[0]["time_zone"], lines[0]["time_zone_source"]) == ("America/New_York", "jurisdiction")
    assert lines[0]["citation"] == "Conn. Gen. Stat. § 54-192h(b)(6)"
    assert lines[1]["hold_until"] is None


def test_decide_several_policies_and_out_file(cases_file, tmp_path):
    out = tmp_path / "decisions.parquet"
    result = run("decide", "ct/trust-act-2013,us/ice-request", str(cases_file), "--out", str(out))
    assert result.exit_code == 0, result.output
    frame = pl.read_parquet(out)
    assert frame.height == 6
    assert frame.filter(pl.col("policy_id") == "us/ice-request").get_column("decision").to_list() == ["honor"] * 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("decide", "ct/no-such-policy"), "unknown policy 'ct/no-such-policy'"),
        (("decide", "ct/trust-act-2013"), "line 2 (case_id 'x'): field 'convictions[0].category': unknown category"),
    ],
)
def test_bad_input_exits_non_zero_and_writes_nothing(tmp_path, args, message):
    path = tmp_path / "cases.jsonl"
    path.write_text(
        '{"case_id": "ok"}\n{"case_id": "x", "convictions": [{"category": "murder", "level": "felony", "years_ago": 1}]}\n'
    )
    out = tmp_path / "out.jsonl"
    result = run(*args, str(path), "--out", str(out))
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())
    assert result.stdout == ""
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [path]


def test_field_policy_on_field_records(tmp_path):
    path = tmp_path / "stops.jsonl"
    path.write_text(
        '{"case_id": "s1", "investigating_criminal_activity": false, "ncic_hit": "ice_administrative_warrant"}\n'
        '{"case_id": "s2", "investigating_criminal_activity": true, "ncic_hit": "criminal_warrant"}\n'
    )
    result = run("decide", "ct/new-haven/general-order-06-2", str(path))
    assert result.exit_code == 0, result.output
    first, second = (json.loads(line) for line in result.stdout.splitlines())
    assert (first["inquire_status"], first["arrest_on_hit"]) == ("not_allowed", "not_allowed")
    assert (second["inquire_status"], second["arrest_on_hit"]) == ("allowed", "allowed")
    mixed = run("decide", "ct/new-haven/general-order-06-2,ct/trust-act-2013", str(path))
    assert mixed.exit_code == 2


def test_policies_list_json_and_show():
    listing = run("policies", "list", "--json")
    assert listing.exit_code == 0
    rows = {row["id"]: row for row in json.loads(listing.stdout)}
    assert rows["ct/trust-act-2013"]["effective"] == "2014-01-01"
    assert rows["ct/trust-act-2013"]["jurisdiction"] == "Connecticut"
    shown = run("policies", "show", "ct/trust-act-2013")
    assert shown.exit_code == 0
    assert "Conn. Gen. Stat. § 54-192h(b)(2)" in shown.stdout
    assert "pending criminal charges" in shown.stdout


def test_policies_test_runs_the_installed_cases_from_any_directory(tmp_path):
    """The cases ship beside each policy in the package, so no checkout is needed to run them."""
    command = Path(sys.executable).with_name("securecomm")
    finished = subprocess.run([command, "policies", "test"], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    passed, total = re.search(r"(\d+) of (\d+) cases passed", finished.stdout).groups()
    assert passed == total and int(total) >= 5 * len(policy_ids())


def test_policies_test_fails_on_a_wrong_case_in_another_library(tmp_path):
    wrong = tmp_path / "ct"
    wrong.mkdir()
    (wrong / "trust-act-2013.cases.yaml").write_text(
        "policy: ct/trust-act-2013\ncases:\n  - name: wrong on purpose\n    input: {final_order: true}\n"
        "    expect: {decision: decline}\n"
    )
    result = run("policies", "test", "--dir", str(tmp_path))
    assert result.exit_code == 1
    assert "decision: expected 'decline', got 'honor'" in result.stdout


def test_decide_joins_layers_with_a_plus_and_the_stricter_outcome_governs(tmp_path):
    cases = tmp_path / "cases.jsonl"
    cases.write_text(
        json.dumps(
            {
                "case_id": "warrant",
                "release_eligible_at": "2014-12-16T10:00:00",
                "judicial_warrant": True,
                "public_safety_risk": False,
            }
        )
        + "\n"
    )
    result = run("decide", "ct/doc-2014,ct/trust-act-2013+ct/doc-2014", str(cases))
    assert result.exit_code == 0, result.output
    alone, layered = (json.loads(line) for line in result.stdout.splitlines())
    # The Department's letter alone honors a judicial warrant; the TRUST Act beneath it does not.
    assert (alone["policy_id"], alone["decision"], alone.get("layers")) == ("ct/doc-2014", "honor", None)
    assert (layered["policy_id"], layered["decision"]) == ("ct/trust-act-2013", "decline")
    assert layered["layers"] == (
        "ct/trust-act-2013 (state): decline by default; ct/doc-2014 (department): honor by judicial-warrant"
    )


def test_decide_refuses_to_layer_a_field_policy(tmp_path):
    cases = tmp_path / "cases.jsonl"
    cases.write_text(json.dumps({"case_id": "a"}) + "\n")
    result = run("decide", "ct/trust-act-2013+ct/new-haven/general-order-06-2", str(cases))
    assert result.exit_code == 2
    assert "decide them separately" in result.stderr


def test_compare_shows_a_count_s_band_as_whole_counts():
    """A band's ends are interpolated percentiles: 2.05 detainers sent to review reads 2, as the median would."""
    from securecomm.cli.compare import metric_text

    assert metric_text("detainers_review", 2.05) == "2"
    assert metric_text("detainers_review", 1234.0) == "1,234"
