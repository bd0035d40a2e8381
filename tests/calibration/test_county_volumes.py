"""Detainer volume by county (calibration/county_volumes.py): NPR's facility table mapped to counties
(core/data/npr_facility_counties.csv, scripts/build_npr_facility_counties.py) as place targets."""

from __future__ import annotations

import csv
import importlib.util
import io
from pathlib import Path

import pytest
import yaml

from securecomm.calibration.county_volumes import FIT_END, FIT_START, county_volume_targets, share_of_years
from securecomm.calibration.targets import TARGET_COLUMNS, data_path, load_place_targets, parse_targets
from securecomm.model.parameters import shape_of

REPO = Path(__file__).resolve().parents[2]
CORE_DATA = REPO / "src" / "securecomm" / "core" / "data"
NATIONAL_BY_YEAR = REPO.parent / "shared" / "data" / "npr_detainers" / "detainers_by_year.csv"
needs_shared = pytest.mark.skipif(not NATIONAL_BY_YEAR.is_file(), reason="../shared/data is not present")

FACILITIES = """facility,place,place_name,fips,detainers,closed,declined,basis
A COUNTY JAIL,a,"A County, CT",09009,600,500,10,its jail
A CITY POLICE,a,"A County, CT",09009,70,70,0,its police
"""
PROVENANCE = {
    "places": {
        "a": {"name": "A County, CT", "fips": ["09009"]},
        "b": {"name": "B County, CT", "fips": ["09003"]},
    },
}
# 2007 and 2015 are part years: a place's 2008-2014 is 800 / 1,000 of its total.
NATIONAL = {2007: 100, 2008: 400, 2009: 400, 2015: 100}


def _build_script():
    spec = importlib.util.spec_from_file_location("build_npr", REPO / "scripts" / "build_npr_facility_counties.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_place_of_a_hand_made_table_is_a_target_or_reported():
    rows, skipped = county_volume_targets(FACILITIES, PROVENANCE, NATIONAL)
    assert share_of_years(NATIONAL) == pytest.approx(0.8)
    assert [row["id"] for row in rows] == ["npr_volume_a"]
    (row,) = rows
    assert row["published"] == str(round(670 * 0.8))  # both facilities, 2008-2014
    assert (row["metric"], row["channel"], row["place"]) == ("detainers_issued", "all", "09009")
    assert (row["start"], row["end"], row["tolerance"], row["tolerance_unit"]) == (FIT_START, FIT_END, "1.5", "factor")
    assert [(s.place_name, s.reason) for s in skipped] == [("B County, CT", "no facility of the place in the table")]
    table = io.StringIO()
    writer = csv.DictWriter(table, TARGET_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    (target,) = parse_targets(table.getvalue())
    assert target.within(536 * 1.5) and not target.within(536 * 1.6) and target.fitted


def test_a_facility_of_an_unlisted_place_is_an_error():
    with pytest.raises(ValueError, match="places the provenance does not list"):
        county_volume_targets(FACILITIES.replace(",a,", ",c,"), PROVENANCE, NATIONAL)


def test_the_shipped_facility_table_adds_up():
    provenance = yaml.safe_load((CORE_DATA / "npr_facility_counties.yaml").read_text(encoding="utf-8"))
    rows = list(csv.DictReader((CORE_DATA / "npr_facility_counties.csv").open(encoding="utf-8")))
    assert len(rows) == len({row["facility"] for row in rows})
    for place, spec in provenance["places"].items():
        own = [row for row in rows if row["place"] == place]
        assert own and spec["detainers"] == sum(int(row["detainers"]) for row in own)
        assert {row["fips"] for row in own} <= set(spec["fips"])
    assert {entry["facility"] for entry in provenance["left_out"]}.isdisjoint(row["facility"] for row in rows)
    assert all(entry["reason"] for entry in provenance["left_out"])
    # about two thirds of NPR's detainers were lodged with local jails and police (the rest: prisons, ICE)
    assert 0.6 < provenance["local_share"] < 0.75
    assert provenance["local_detainers"] == pytest.approx(provenance["local_share"] * provenance["detainers"], rel=1e-3)


def test_the_local_rule_sorts_names():
    build = _build_script()
    for name in ("COOK COUNTY JAIL", "HOUSTON POLICE DEPT.", "TRAVIS CTY JAIL", "BRONX CENTRAL BOOKING"):
        assert build.is_local(name), name
    for name in (
        "TAFT FED.CORR.INST.",
        "TRAVIS COUNTY STATE JAIL",
        "US MARSHALS, DC",
        "TAMPA HOLD ROOM",
        "WASCO STATE PRISON",
    ):
        assert not build.is_local(name), name
    assert build.is_local("BRIDGEPORT CORR CENTER")  # Connecticut's DOC is the state's jail system


@needs_shared
def test_the_shipped_volume_targets_are_the_facility_table():
    provenance = yaml.safe_load((CORE_DATA / "npr_facility_counties.yaml").read_text(encoding="utf-8"))
    national = {int(r["year"]): int(r["count"]) for r in csv.DictReader(NATIONAL_BY_YEAR.open(encoding="utf-8"))}
    rows, skipped = county_volume_targets(
        (CORE_DATA / "npr_facility_counties.csv").read_text(encoding="utf-8"), provenance, national
    )
    shipped = {t.id: t for t in load_place_targets() if t.id.startswith("npr_volume_")}
    assert {row["id"] for row in rows} == set(shipped) and not skipped
    for row in rows:
        assert shipped[row["id"]].published == float(row["published"])
    accounted = yaml.safe_load(data_path("place_targets.yaml").read_text(encoding="utf-8"))["county_volumes"]
    assert sorted(accounted["used"]) == sorted(shipped) and accounted["places"] == len(provenance["places"])


def test_the_county_factor_lists_current_counties_only():
    shape = shape_of("ratio", ("county",))
    assert shape({"17031": 0.4, "09009": 1.0}) is None
    assert "99999" in shape({"99999": 1.0})
    assert "≥ 0" in shape({"17031": -1.0})
