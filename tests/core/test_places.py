"""Places: counties, activation dates, populations — against the shipped tables and the raw shared data."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from securecomm.core import places

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
DATA = SHARED / "data"
ACTIVATION_CSV = DATA / "sc_activation" / "sc_activation_by_county.csv"
CENSUS_CSV = DATA / "sc_activation" / "census_pop_county_2010_2019.csv"
NONCITIZEN_CSV = DATA / "sc_activation" / "non_citizen_pop.csv"

needs_shared = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data is not present")

CT_COUNTIES = ["09001", "09003", "09005", "09007", "09009", "09011", "09013", "09015"]


def _activation_file() -> pl.DataFrame:
    return pl.read_csv(ACTIVATION_CSV, infer_schema=False)


def _census_counties() -> pl.DataFrame:
    census = pl.read_csv(CENSUS_CSV, infer_schema=False).filter(pl.col("SUMLEV") == "050")
    return census.with_columns((pl.col("STATE") + pl.col("COUNTY")).alias("fips"))


def _noncitizen(fips: str, year: int) -> tuple[int, int]:
    nc = pl.read_csv(NONCITIZEN_CSV, infer_schema=False).filter(
        (pl.col("fips") == fips) & (pl.col("year") == str(year))
    )
    assert nc.height == 1
    return int(nc["noncit_pop"].item()), int(nc["moe"].item())


# --- activation dates -------------------------------------------------------------------------


def test_harris_county_is_the_first_activation():
    assert places.activation_date("48201") == dt.date(2008, 10, 27)
    first = places.counties().filter(pl.col("sc_activation_date") == pl.col("sc_activation_date").min())
    assert first["fips"].to_list() == ["48201"]


def test_fairfield_county_activation():
    assert places.activation_date("09001") == dt.date(2010, 6, 29)


def test_every_county_activated_by_2013_01_22():
    dates = places.counties()["sc_activation_date"]
    assert dates.null_count() == 0
    assert dates.min() == dt.date(2008, 10, 27)
    assert dates.max() == dt.date(2013, 1, 22)


def test_statewide_date_is_latest_county_date_in_state():
    check = (
        places.counties()
        .group_by("state")
        .agg(
            pl.col("sc_activation_date").max().alias("latest"), pl.col("sc_statewide_date").unique().alias("statewide")
        )
    )
    assert (check["statewide"].list.len() == 1).all()
    assert (check["statewide"].list.first() == check["latest"]).all()


def test_counties_new_since_the_activation_file_take_their_predecessor_date():
    assert places.activation_date("46102") == places.activation_date("46113") == dt.date(2010, 8, 31)
    assert places.activation_date("02158") == places.activation_date("02270") == dt.date(2012, 4, 10)


@pytest.mark.parametrize("bad", ["99999", "12025", "41006", "abc", "9001"])
def test_activation_date_rejects_unknown_or_undated_codes(bad):
    with pytest.raises(ValueError, match=re.escape(repr(bad))):
        places.activation_date(bad)


# --- resolve_place ----------------------------------------------------------------------------


def test_resolve_connecticut():
    assert places.resolve_place("CT") == CT_COUNTIES


def test_resolve_list_is_sorted_unique_and_tolerant_of_case_and_spaces():
    assert places.resolve_place("09003, ct,48201,09001") == [*CT_COUNTIES, "48201"]
    assert places.resolve_place("09001") == ["09001"]


def test_us_is_every_current_county_of_every_state():
    us = places.resolve_place("US")
    assert us == sorted(set(us))
    assert len(us) == 3142
    assert places.resolve_place(",".join(places.states())) == us
    assert len(places.states()) == 51  # 50 states + DC


@needs_shared
def test_us_accounts_for_every_county_of_the_activation_file():
    """US = the activation file's counties, on current codes: retired codes out, their successors in.

    The activation file has 3,147 codes; 12 of them no longer exist (renamed, split, merged or invalid) and
    7 current counties replaced them, so US has 3,147 - 12 + 7 = 3,142 counties and none is missing.
    """
    activation = set(_activation_file()["county_fips"].to_list())
    us = set(places.resolve_place("US"))
    every = places.counties(include_retired=True)
    retired = every.filter(~pl.col("current"))
    retired_codes = set(retired["fips"].to_list())
    new_codes = us - activation

    assert set(every.filter(pl.col("in_activation_file"))["fips"].to_list()) == activation
    assert activation <= us | retired_codes
    assert retired_codes <= activation
    for successors in retired["successor_fips"].to_list():
        assert set(successors) <= us
    assert new_codes == {s for successors in retired["successor_fips"].to_list() for s in successors} - activation
    assert len(us) == len(activation) - len(retired_codes) + len(new_codes)
    assert (len(activation), len(retired_codes), len(new_codes)) == (3147, 12, 7)


@needs_shared
def test_us_is_the_census_geography():
    assert places.resolve_place("US") == sorted(_census_counties()["fips"].to_list())


@needs_shared
def test_activation_dates_match_the_activation_file():
    source = (
        _activation_file()
        .drop_nulls("sc_activation_date")
        .select(pl.col("county_fips").alias("fips"), pl.col("sc_activation_date").str.to_date())
    )
    shipped = places.counties(include_retired=True).select("fips", "sc_activation_date")
    joined = source.join(shipped, on="fips", how="left", suffix="_shipped")
    assert joined.height == source.height
    assert (joined["sc_activation_date"] == joined["sc_activation_date_shipped"]).all()


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ("ZZ", "'ZZ'"),
        ("PR", "'PR'"),
        ("99999", "'99999'"),
        ("CT,XX", "'XX'"),
        ("0900", "'0900'"),
        ("U.S.", "'U.S.'"),
        ("46113", "46102"),  # retired code: the message names the code to use
        ("41006", "'41006'"),
        ("", "empty item"),
        ("CT,,TX", "empty item"),
    ],
)
def test_resolve_place_rejects_bad_items_by_name(spec, named):
    with pytest.raises(ValueError, match=re.escape(named)):
        places.resolve_place(spec)


def test_resolve_place_requires_a_string():
    with pytest.raises(TypeError):
        places.resolve_place(["CT"])  # type: ignore[arg-type]


# --- population -------------------------------------------------------------------------------


@needs_shared
@pytest.mark.parametrize(("fips", "year"), [("09001", 2012), ("48201", 2019), ("11001", 2010), ("46102", 2014)])
def test_population_equals_the_census_file(fips, year):
    census = _census_counties().filter(pl.col("fips") == fips)
    row = places.population([fips], year)
    assert row["population"].item() == int(census[f"POPESTIMATE{year}"].item())
    assert row["population_source"].item() == "census_estimate_jul1"


@needs_shared
def test_2009_population_is_the_2010_estimates_base_and_flagged():
    census = _census_counties().filter(pl.col("fips") == "09009")
    row = places.population(["09009"], 2009)
    assert row["population"].item() == int(census["ESTIMATESBASE2010"].item())
    assert row["population_source"].item() == "census_estimates_base_2010_apr1"


@needs_shared
def test_noncitizen_population_equals_the_acs_file_and_2019_carries_2018():
    value, moe = _noncitizen("09001", 2012)
    row = places.population(["09001"], 2012)
    assert (row["noncitizen_population"].item(), row["noncitizen_moe"].item()) == (value, moe)
    assert row["noncitizen_source"].item() == "acs5"
    value_2018, _ = _noncitizen("09001", 2018)
    row_2019 = places.population(["09001"], 2019)
    assert row_2019["noncitizen_population"].item() == value_2018
    assert row_2019["noncitizen_source"].item() == "acs5_2018_carried_forward"


@needs_shared
def test_noncitizen_values_of_retired_codes_go_to_their_successor():
    renamed, _ = _noncitizen("02270", 2010)
    assert places.population(["02158"], 2010)["noncitizen_population"].item() == renamed
    bedford_city, _ = _noncitizen("51515", 2012)
    bedford_county, _ = _noncitizen("51019", 2012)
    row = places.population(["51019"], 2012)
    assert row["noncitizen_population"].item() == bedford_city + bedford_county
    assert row["noncitizen_source"].item() == "acs5_via_retired_fips"


@needs_shared
def test_national_population_is_the_sum_of_census_counties_every_year():
    census = _census_counties()
    shipped = places.county_population().group_by("year").agg(pl.col("population").sum())
    totals = dict(shipped.iter_rows())
    for year in range(2010, 2020):
        assert totals[year] == census[f"POPESTIMATE{year}"].cast(pl.Int64).sum()


def test_population_table_is_complete():
    table = places.county_population()
    assert table.height == 3142 * 11
    assert table.null_count().sum_horizontal().item() == 0
    assert set(table["year"].unique().to_list()) == set(range(2009, 2020))
    assert (table["noncitizen_population"] <= table["population"]).all()


def test_population_keeps_input_order_and_clamps_only_when_asked():
    rows = places.population(["48201", "09001"], 2008, clamp_year=True)
    assert rows["fips"].to_list() == ["48201", "09001"]
    assert rows["year"].to_list() == [2008, 2008]
    assert rows["data_year"].to_list() == [2009, 2009]
    with pytest.raises(ValueError, match="2008"):
        places.population(["48201"], 2008)
    with pytest.raises(ValueError, match="2020"):
        places.population(["48201"], 2020)


def test_population_rejects_retired_and_unknown_codes():
    with pytest.raises(ValueError, match="51019"):
        places.population(["51515"], 2012)
    with pytest.raises(ValueError, match="'99999'"):
        places.population(["09001", "99999"], 2012)
    with pytest.raises(TypeError):
        places.population("09001", 2012)  # type: ignore[arg-type]


# --- field offices ----------------------------------------------------------------------------


def test_every_county_has_a_known_field_office():
    offices = set(places.field_offices()["aor"].to_list())
    aors = places.counties()["aor"]
    assert aors.null_count() == 0
    assert set(aors.to_list()) <= offices
    assert set(places.counties().filter(pl.col("state") == "CT")["aor"].to_list()) == {"BOS"}
    assert places.counties().filter(pl.col("fips") == "48201")["aor"].item() == "HOU"


# --- the shipped tables are what the build makes ---------------------------------------------


@needs_shared
def test_shipped_tables_agree_with_a_fresh_rebuild(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "build_reference_data.py"),
            "--shared",
            str(SHARED),
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    shipped = REPO / "src" / "securecomm" / "core" / "data"
    for name in ("counties.parquet", "county_population.parquet", "field_offices.parquet"):
        assert_frame_equal(pl.read_parquet(tmp_path / name), pl.read_parquet(shipped / name))
    rebuilt = (tmp_path / "PROVENANCE.md").read_text(encoding="utf-8")
    assert rebuilt == (shipped / "PROVENANCE.md").read_text(encoding="utf-8")
