"""The mapping-file format: strict reading, and a jail extract of a different shape replayed without code."""

from pathlib import Path

import polars as pl
import pytest

from securecomm.replay.charges import MappingFileError
from securecomm.replay.mapping import builtin_mapping_path, load_mapping
from securecomm.replay.run import replay

MINIMAL = """\
mapping: 1
title: Example County jail
case_id: booking_no
columns:
  booking_no: text
  charge: text
  grade: text
  released: {datetime: "%m/%d/%Y %H:%M"}
charges:
  text: charge
  level:
    column: grade
    values:
      F: {level: felony}
      M: {level: misdemeanor}
release_eligible_at: {column: released}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_pierce_mapping_ships_with_the_package_and_loads():
    mapping = load_mapping(builtin_mapping_path("pierce"))
    assert mapping.case_id == "booking_id"
    assert mapping.charges is not None and mapping.charges.text_columns == ("booking_charge_desc", "booking_charge_txt")
    assert mapping.dispositions is not None and mapping.dispositions.values["Immigration"].custody == "to_ice"
    assert mapping.facts == {"judicial_warrant": False}
    assert mapping.limitations
    assert mapping.place == "53053"  # Pierce County, WA: the replay's default activation date is its own


def test_a_minimal_mapping_loads(tmp_path):
    mapping = load_mapping(write(tmp_path, "m.yaml", MINIMAL))
    assert mapping.release_eligible_at == "released"
    assert mapping.charges.level.values["F"].level == "felony"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("title: Example County jail\n", "title: Example County jail\ncolums: {}\n"), "line 3: unknown key 'colums'"),
        (("mapping: 1\n", "mapping: 2\n"), "line 1: 'mapping' must be 1"),
        (("case_id: booking_no\n", "case_id: booking\n"), "line 3: case_id: column 'booking' is not declared"),
        (("      M: {level: misdemeanor}\n", "      M: {level: petty}\n"), "line 15: unknown level 'petty'"),
        (("      F: {level: felony}\n", "      F: {level: misdemeanor, felony_class: B}\n"), "only a felony has"),
        (("  released: {datetime", "  released: {timestamp"), "line 8: column 'released': type must be"),
        (
            ("release_eligible_at: {column: released}\n", "release_eligible_at: {column: charge}\n"),
            "must be of type datetime",
        ),
        (("release_eligible_at: {column: released}\n", "release_eligible_at: latest_release\n"), "needs dispositions"),
        (("  grade: text\n", "  grade: text\n  grade: integer\n"), "line 8: duplicate key 'grade'"),
        (("title: Example County jail\n", 'title: Example County jail\nplace: "99999"\n'), "line 3: place: "),
        (("title: Example County jail\n", "title: Example County jail\nplace: 53053\n"), "place must be"),
    ],
)
def test_a_malformed_mapping_names_file_and_line(tmp_path, change, message):
    old, new = change
    assert old in MINIMAL
    path = write(tmp_path, "m.yaml", MINIMAL.replace(old, new, 1))
    with pytest.raises(MappingFileError) as error:
        load_mapping(path, "m.yaml")
    assert message in str(error.value)
    assert str(error.value).startswith("m.yaml, line")


def test_disposition_meanings_are_checked(tmp_path):
    text = MINIMAL + "dispositions:\n  column: grade\n  values:\n    Bail: {custody: freed, charge: pending}\n"
    with pytest.raises(MappingFileError, match=r"line 20: disposition 'Bail': custody must be one of"):
        load_mapping(write(tmp_path, "m.yaml", text), "m.yaml")


# A jail of another shape: semicolon-separated, US dates, a level only in the charge text,
# its own category rule, a redaction code, a yes/no column and a detainer-form column.
OTHER_JAIL = """\
booking;offense;held_until;form;warrant;note
B1;FEL ASSAULT 3 [misd];02/06/2014 17:00;I-247D;Y;x
B1;HOLD ICE;02/10/2014 09:00;;;x
B2;LOITERING MISD;03/04/2014 10:30;I-247N;N;(b)(6)
B3;SPITTING;03/05/2014 10:30;I-247X;N;x
B4;ICE HOLD;;I-999;;x
"""
OTHER_MAPPING = """\
mapping: 1
title: Another county
limitations: [The jail does not record prior convictions.]
csv: {delimiter: ";", redaction_pattern: '^\\(b\\)\\(\\d'}
case_id: booking
columns:
  booking: text
  offense: text
  held_until: {datetime: "%m/%d/%Y %H:%M"}
  form: text
  warrant: {boolean: {true_values: [Y], false_values: [N]}}
  note: text
charges:
  text: offense
  categories: [local.yaml, builtin]
  level:
    text:
      - {match: '\\bFEL\\b', level: felony, felony_class: C}
      - {match: '\\bMISD\\b', level: misdemeanor}
release_eligible_at: {column: held_until}
detainer_form: {column: form, values: {I-247D: I-247D, I-247N: I-247N, I-247X: I-247X}}
facts:
  judicial_warrant: {column: warrant}
qa:
  unmapped_charge: {warn: 0, stop: 0.5}
  unknown_value: {warn: 0, stop: 0.5}
"""


def test_a_users_own_extract_replays_without_code(tmp_path):
    source = write(tmp_path, "jail.csv", OTHER_JAIL)
    write(tmp_path, "local.yaml", "rules:\n  - match: '\\bASSAULT 3\\b'\n    category: simple_assault\n")
    mapping = write(tmp_path, "jail.yaml", OTHER_MAPPING)
    result = replay(f"mapping:{mapping}", source, ["us/ice-request", "or/judicial-warrant-only-2014"])
    imported = result.imported
    assert imported.case_count == 4
    charges = imported.tables.current_charges.join(imported.tables.records.select("row", "case_id"), on="row")
    b1 = charges.filter(pl.col("case_id") == "B1").row(0, named=True)
    # the user's own rule came first: an assault 3 is a simple assault in this state
    assert (b1["category"], b1["level"], b1["felony_class"]) == ("simple_assault", "felony", "C")
    records = {row["case_id"]: row for row in imported.tables.records.to_dicts()}
    assert records["B1"]["judicial_warrant"] is True and records["B2"]["judicial_warrant"] is False
    assert records["B1"]["detainer_form"] == "I-247D" and records["B4"]["detainer_form"] is None
    assert str(records["B1"]["release_eligible_at"]) == "2014-02-06 17:00:00"
    issues = imported.qa.issues
    # B2's note held a redaction code; B3's charge text is unknown; B4's form is not in the table
    assert issues.filter(pl.col("check") == "redacted_value").select("row", "column").rows() == [(4, "note")]
    assert issues.filter(pl.col("check") == "unmapped_charge").get_column("row").to_list() == [5]
    assert issues.filter(pl.col("check") == "unknown_value").get_column("row").to_list() == [6]
    roles = dict(imported.rows.select("row", "role").iter_rows())
    assert roles == {2: "charge", 3: "detainer", 4: "charge", 5: "not_mapped", 6: "detainer"}
    decisions = result.decisions.filter(pl.col("policy_id") == "or/judicial-warrant-only-2014")
    assert dict(decisions.select("case_id", "decision").iter_rows())["B1"] == "honor"
    assert imported.limitations == ("The jail does not record prior convictions.",)
