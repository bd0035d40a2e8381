import datetime as dt
import json

import polars as pl
import pytest

from securecomm.core.cases import InputError, read_records, to_tables


def case(**fields):
    return {"case_id": "A-1", **fields}


def test_defaults_fill_missing_fields():
    tables = to_tables([case()])
    row = tables.records.row(0, named=True)
    assert row["bond_posted"] is False and row["final_order"] is False
    assert row["public_safety_risk"] is None  # three-valued: not determined
    assert row["release_eligible_at"] is None and row["age"] is None
    assert tables.current_charges.height == 0 and tables.convictions.height == 0


def test_long_tables_keep_the_row_of_their_case():
    tables = to_tables(
        [
            case(case_id="a", convictions=[{"category": "theft", "level": "misdemeanor", "years_ago": 2}]),
            case(
                case_id="b",
                current_charges=[{"category": "robbery", "level": "felony", "felony_class": "B"}],
                convictions=[
                    {"category": "dui", "level": "misdemeanor", "years_ago": 4, "years_since_release": 3.5},
                    {"category": "homicide", "level": "felony", "felony_class": "A", "years_ago": 20},
                ],
            ),
        ]
    )
    assert tables.convictions.get_column("row").to_list() == [0, 1, 1]
    assert tables.convictions.get_column("years_since_release").to_list() == [None, 3.5, None]
    assert tables.current_charges.row(0, named=True) == {
        "row": 1,
        "category": "robbery",
        "level": "felony",
        "felony_class": "B",
    }


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({}, "field 'case_id': is required"),
        (case(colour="red"), "field 'colour': unknown field"),
        (case(bond_posted="yes"), "field 'bond_posted': must be true or false"),
        (case(public_safety_risk=1), "field 'public_safety_risk': must be true or false or null"),
        (case(age=True), "field 'age'"),
        (case(age=-3), "field 'age'"),
        (case(detainer_form="I-999"), "field 'detainer_form': unknown detainer form 'I-999'"),
        (case(release_eligible_at="tomorrow"), "field 'release_eligible_at': must be an ISO date-time"),
        (case(time_zone="Europe/Paris"), "field 'time_zone': unknown time zone 'Europe/Paris'"),
        (case(current_charges=[{"category": "murder", "level": "felony"}]), "current_charges[0].category"),
        (case(current_charges=[{"category": "theft"}]), "current_charges[0].level': is required"),
        (case(convictions=[{"category": "theft", "level": "misdemeanor"}]), "convictions[0].years_ago': is required"),
        (
            case(convictions=[{"category": "theft", "level": "misdemeanor", "felony_class": "A", "years_ago": 1}]),
            "only a felony has a felony class",
        ),
        (
            case(convictions=[{"category": "theft", "level": "felony", "years_ago": 1, "years_since_release": 2}]),
            "cannot be more than years_ago",
        ),
        (case(convictions={"category": "theft"}), "field 'convictions': must be a list"),
    ],
)
def test_bad_records_are_named(record, message):
    with pytest.raises(InputError) as caught:
        to_tables([case(case_id="ok"), record])
    assert "record 2" in str(caught.value)
    assert message in str(caught.value)


def test_error_names_the_case_id_and_the_line(tmp_path):
    path = tmp_path / "cases.jsonl"
    path.write_text(
        json.dumps(case(case_id="good")) + "\n\n" + json.dumps(case(case_id="X-9", detainer_form="I-247Z")) + "\n"
    )
    with pytest.raises(InputError, match=r"cases.jsonl line 3 \(case_id 'X-9'\): field 'detainer_form'"):
        read_records(path)


def test_broken_json_and_duplicate_ids_are_refused(tmp_path):
    path = tmp_path / "cases.jsonl"
    path.write_text('{"case_id": "a"}\n{"case_id": \n')
    with pytest.raises(InputError, match="line 2: not valid JSON"):
        read_records(path)
    path.write_text('{"case_id": "a"}\n{"case_id": "a"}\n')
    with pytest.raises(InputError, match=r"'a' was already used at cases\.jsonl line 1"):
        read_records(path)


def test_parquet_and_csv_read_the_same_cases(tmp_path):
    records = [
        case(
            case_id="p1",
            release_eligible_at=dt.datetime(2014, 3, 6, 17),
            age=30,
            bond_posted=True,
            public_safety_risk=None,
            current_charges=[{"category": "theft", "level": "misdemeanor", "felony_class": None}],
            convictions=[
                {
                    "category": "burglary",
                    "level": "felony",
                    "felony_class": "C",
                    "years_ago": 3.0,
                    "years_since_release": None,
                }
            ],
        )
    ]
    parquet = tmp_path / "cases.parquet"
    pl.DataFrame(records).write_parquet(parquet)
    csv_file = tmp_path / "cases.csv"
    csv_file.write_text(
        "case_id,release_eligible_at,age,bond_posted,public_safety_risk,current_charges,convictions\n"
        'p1,2014-03-06T17:00:00,30,true,,"[{""category"": ""theft"", ""level"": ""misdemeanor""}]",'
        '"[{""category"": ""burglary"", ""level"": ""felony"", ""felony_class"": ""C"", ""years_ago"": 3}]"\n'
    )
    from_parquet = to_tables(parquet)
    from_csv = to_tables(csv_file)
    assert from_parquet.records.equals(from_csv.records)
    assert from_parquet.convictions.equals(from_csv.convictions)
    assert from_parquet.current_charges.equals(from_csv.current_charges)


def test_unknown_file_type(tmp_path):
    path = tmp_path / "cases.xlsx"
    path.write_text("")
    with pytest.raises(InputError, match="unknown file type"):
        read_records(path)
