"""The charge-text → category table (a data file) and its loader."""

import csv
from pathlib import Path

import polars as pl
import pytest

from securecomm.core import schema
from securecomm.replay.charges import (
    MappingFileError,
    builtin_path,
    load_charge_map,
    normalize_text,
    read_charge_file,
)


@pytest.fixture(scope="module")
def charge_map():
    return load_charge_map()


def test_the_table_ships_with_the_package():
    assert builtin_path().is_file()
    assert builtin_path().name == "charge_categories.yaml"


def test_every_rule_has_examples_and_each_example_is_decided_by_its_own_rule(charge_map):
    for rule in charge_map.rules:
        assert rule.examples, f"{rule.where}: a rule needs examples"
        for example in rule.examples:
            decided = charge_map.rule_for(example)
            assert decided is rule, f"{example!r} is decided by {decided.where if decided else None}, not {rule.where}"


def test_every_category_rule_names_a_schema_category(charge_map):
    for rule in charge_map.rules:
        if rule.kind == "charge":
            assert rule.category in schema.CATEGORIES
        else:
            assert rule.category is None


@pytest.mark.parametrize(
    ("text", "kind", "category"),
    [
        ("HOLD IMMIGRAT", "detainer", None),
        ("HOLD US MARSHAL", "hold", None),
        ("COMM CUSTODY JAIL BURG 1", "hold", None),  # a custody status, though it names a burglary
        ("ASLT 2 -DV", "charge", "aggravated_assault"),  # a felony assault keeps its category when DV
        ("ASSAULT 4 /DV", "charge", "domestic_violence"),
        ("ASLT 4", "charge", "simple_assault"),
        ("FEL HARASS (NON DV)", "charge", "simple_assault"),  # "NON DV" is not the DV designation
        ("VIO. PROT. ORD - NON-DV", "charge", "public_order"),
        ("IDENT THFT 1", "charge", "fraud"),  # identity theft is fraud, not theft
        ("TRAFFICKING STOL PROP 1", "charge", "theft"),  # not drug trafficking
        ("THFT OF FIREARM (B)", "charge", "theft"),  # not a weapons offence
        ("UPCS W INTENT", "charge", "drug_trafficking"),
        ("UPCS", "charge", "drug_possession"),
        ("DUI WITH PRIOR CONVICTION", "charge", "dui"),
        ("FEL PUR/ELUDE", "charge", "traffic"),
        ("Aggravated Assault - Non-family-Gun", "charge", "aggravated_assault"),
        ("Sex Offense", "charge", "other"),  # ICE's unspecified sex offence is not sexual assault
        ("Dangerous Drugs", "charge", "drug_possession"),
    ],
)
def test_known_texts(charge_map, text, kind, category):
    rule = charge_map.rule_for(text)
    assert rule is not None
    assert (rule.kind, rule.category) == (kind, category)


def test_text_is_compared_in_upper_case_with_spaces_collapsed(charge_map):
    assert normalize_text("  Sex   Assault ") == "SEX ASSAULT"
    assert charge_map.rule_for("poss.  motor vehicle   theft tools").category == "theft"


def test_unknown_text_matches_nothing(charge_map):
    assert charge_map.rule_for("QWERTY 7") is None


def test_every_pierce_charge_text_is_recognised(charge_map, pierce_path):
    with pierce_path.open(newline="") as handle:
        texts = {
            " ".join(part for part in (row["booking_charge_desc"], row["booking_charge_txt"]) if part)
            for row in csv.DictReader(handle)
        }
    assert len(texts) > 100
    unrecognised = sorted(text for text in texts if charge_map.rule_for(text) is None)
    assert unrecognised == []


def test_every_ddp_conviction_description_is_a_charge_category(charge_map, ddp_path):
    with ddp_path.open(newline="") as handle:
        texts = {row["most_serious_conviction_charge"] for row in csv.DictReader(handle)} - {"NA"}
    assert len(texts) == 11
    for text in texts:
        rule = charge_map.rule_for(text)
        assert rule is not None and rule.kind == "charge", text


def test_classify_maps_each_distinct_text_once_and_keeps_row_order(charge_map):
    texts = pl.Series(["UPCS", None, "HOLD IMMIGRAT", "UPCS", "QWERTY 7"])
    found = charge_map.classify(texts)
    assert found.get_column("kind").to_list() == ["charge", None, "detainer", "charge", None]
    assert found.get_column("category").to_list() == ["drug_possession", None, None, "drug_possession", None]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules:\n  - match: 'X'\n    category: murder\n", "line 3: unknown category 'murder'"),
        ("rules:\n  - match: '(unclosed'\n    category: other\n", "line 2: 'match' is not a valid regular expression"),
        ("rules:\n  - match: 'X'\n    categroy: other\n", "line 3: unknown key 'categroy'"),
        (
            "rules:\n  - match: 'X'\n    kind: hold\n    category: other\n",
            "line 4: a rule of kind 'hold' has no category",
        ),
        ("rules:\n  - match: 'X'\n    kind: arrest\n", "unknown kind 'arrest'"),
        ("rules:\n  - match: 'X'\n    category: other\n    category: theft\n", "line 4: duplicate key 'category'"),
    ],
)
def test_a_malformed_category_file_names_file_and_line(tmp_path: Path, text, message):
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    with pytest.raises(MappingFileError) as error:
        read_charge_file(path, "mine.yaml")
    assert message in str(error.value)
    assert str(error.value).startswith("mine.yaml, line")


def test_a_users_file_goes_before_the_builtin_table(tmp_path: Path):
    path = tmp_path / "mine.yaml"
    path.write_text("rules:\n  - match: '\\bASLT 3\\b'\n    category: simple_assault\n    examples: [ASLT 3]\n")
    combined = load_charge_map([path, "builtin"])
    assert combined.rule_for("ASLT 3").category == "simple_assault"
    assert combined.rule_for("ASLT 2").category == "aggravated_assault"
