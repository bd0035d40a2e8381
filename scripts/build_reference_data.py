"""Build securecomm's compact reference tables from the shared real data.

The installed package must run with no ../shared and no network, so this script derives small
Parquet tables (counties with activation dates and ICE field office, county population by year,
field offices) plus a PROVENANCE.md that says where every value came from. Every mismatch between
the source files is printed and recorded; nothing is dropped silently. If a problem cannot be
resolved (a current county without an activation date, an unknown retired code, ...) the script
prints it and exits with status 1 without writing anything.

Usage (from the repo root):

    .venv/bin/python scripts/build_reference_data.py [--shared ../shared] [--out src/securecomm/core/data]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import polars as pl

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
DEFAULT_SHARED: Final = REPO_ROOT.parent / "shared"
DEFAULT_OUT: Final = REPO_ROOT / "src" / "securecomm" / "core" / "data"
REBUILD_COMMAND: Final = ".venv/bin/python scripts/build_reference_data.py"

ACTIVATION_CSV: Final = "sc_activation/sc_activation_by_county.csv"
CENSUS_CSV: Final = "sc_activation/census_pop_county_2010_2019.csv"
NONCITIZEN_CSV: Final = "sc_activation/non_citizen_pop.csv"
COUNTY_AOR_CSV: Final = "ice_field_offices/county_aor.csv"
FIELD_OFFICE_CSV: Final = "ice_field_offices/aor_ero_field_office.csv"

SOURCE_ORIGINS: Final = {
    ACTIVATION_CSV: (
        "sc_activation/SOURCE.md: derived (one row per county) from `securecommunities.dta` in GitHub "
        "asadlasad/vargasnunezetal_2026_pnas (Vargas-Núñez et al., PNAS 2026; Alsan & Yang 2018 as updated by "
        "Asad & Baer-Bositis 2025), commit 6b917c51caa43a9b8a17bcb39e5b15db5a6afef5."
    ),
    CENSUS_CSV: (
        "sc_activation/SOURCE.md: U.S. Census Bureau `co-est2019-alldata` county population estimates (vintage 2019), "
        "as shipped in the same replication package, re-encoded latin-1 → UTF-8."
    ),
    NONCITIZEN_CSV: (
        "sc_activation/SOURCE.md: ACS 5-year noncitizen population by county and end year 2009–2018 "
        "(tidycensus pull by the replication package authors), as shipped."
    ),
    COUNTY_AOR_CSV: (
        "ice_field_offices/SOURCE.md: GitHub UWCHR/ice-enforce `share/hand/county_aor.csv`, "
        "HEAD bdb224c216bc98216b5f09de32841817b623162d (2025-07-10), GPL-3.0."
    ),
    FIELD_OFFICE_CSV: (
        "ice_field_offices/SOURCE.md: GitHub UWCHR/ice-enforce `share/hand/aor_ero_field_office.csv`, same commit, GPL-3.0."
    ),
}

FIRST_POPULATION_YEAR: Final = 2009
LAST_POPULATION_YEAR: Final = 2019
CENSUS_YEARS: Final = range(2010, 2020)
NONCITIZEN_YEARS: Final = range(2009, 2019)

# Population / noncitizen source flags shipped in county_population.parquet.
POP_ESTIMATE: Final = "census_estimate_jul1"
POP_BASE_2010: Final = "census_estimates_base_2010_apr1"
NC_ACS: Final = "acs5"
NC_VIA_RETIRED: Final = "acs5_via_retired_fips"
NC_CARRIED: Final = "acs5_2018_carried_forward"


@dataclass(frozen=True)
class RetiredCode:
    """A county FIPS code in the activation file that is no longer in the census geography."""

    name: str | None
    change: str  # renamed | split | absorbed | invalid
    successors: tuple[str, ...]
    note: str


# Historical county changes (U.S. Census Bureau, "Substantial changes to counties and county equivalent
# entities"). Each entry explains a code of the activation file that the vintage-2019 census geography lacks.
RETIRED_CODES: Final[dict[str, RetiredCode]] = {
    "02201": RetiredCode(
        "Prince of Wales-Outer Ketchikan Census Area",
        "split",
        ("02198", "02130"),
        "Abolished in 2008: most of it became Prince of Wales-Hyder Census Area (02198); "
        "parts went to Ketchikan Gateway Borough (02130) and neighbouring areas.",
    ),
    "02231": RetiredCode(
        "Skagway-Yakutat-Angoon Census Area",
        "split",
        ("02105", "02230", "02282"),
        "Abolished in 1992: split into Yakutat City and Borough (02282) and Skagway-Hoonah-Angoon Census Area "
        "(02232), itself split in 2007 into Skagway Municipality (02230) and Hoonah-Angoon Census Area (02105).",
    ),
    "02232": RetiredCode(
        "Skagway-Hoonah-Angoon Census Area",
        "split",
        ("02105", "02230"),
        "Abolished in 2007: split into Skagway Municipality (02230) and Hoonah-Angoon Census Area (02105).",
    ),
    "02270": RetiredCode(
        "Wade Hampton Census Area",
        "renamed",
        ("02158",),
        "Renamed Kusilvak Census Area in 2015 with the new code 02158; same area.",
    ),
    "02280": RetiredCode(
        "Wrangell-Petersburg Census Area",
        "split",
        ("02195", "02275"),
        "Abolished in 2008: split into Wrangell City and Borough (02275) and Petersburg Census Area "
        "(02195, Petersburg Borough from 2013); small fringes went to neighbouring areas.",
    ),
    "12025": RetiredCode(
        "Dade County",
        "renamed",
        ("12086",),
        "Renamed Miami-Dade County in 1997 with the new code 12086, which the activation file also lists "
        "with its own date: this row is a stale duplicate.",
    ),
    "30113": RetiredCode(
        "Yellowstone National Park",
        "absorbed",
        ("30031", "30067"),
        "Montana's Yellowstone National Park county-equivalent, abolished in 1997 and divided between "
        "Gallatin County (30031) and Park County (30067).",
    ),
    "41006": RetiredCode(
        None,
        "invalid",
        (),
        "Not a county FIPS code (Oregon's county codes are odd numbers 001-071); the source gives no name "
        "and no date, so what it stood for is unknown.",
    ),
    "46113": RetiredCode(
        "Shannon County",
        "renamed",
        ("46102",),
        "Renamed Oglala Lakota County in 2015 with the new code 46102; same area.",
    ),
    "51515": RetiredCode(
        "Bedford city",
        "absorbed",
        ("51019",),
        "Independent city that became a town in Bedford County (51019) on 2013-07-01; the census "
        "vintage-2019 series counts it inside 51019 for every year.",
    ),
    "51560": RetiredCode(
        "Clifton Forge city",
        "absorbed",
        ("51005",),
        "Independent city that became a town in Alleghany County (51005) in 2001.",
    ),
    "51780": RetiredCode(
        "South Boston city",
        "absorbed",
        ("51083",),
        "Independent city that became a town in Halifax County (51083) in 1995.",
    ),
}

COUNTY_COLUMNS: Final = {
    "fips": "5-character county FIPS code (state + county).",
    "state": "USPS state code (DC included).",
    "state_fips": "2-character state FIPS code.",
    "state_name": "State name (census file).",
    "name": "County name: census name for current counties, historical name for retired codes (null for 41006).",
    "aor": "ICE ERO field office (Area of Responsibility) code; see field_offices.parquet.",
    "sc_activation_date": "Date Secure Communities (IDENT/IAFIS interoperability) was activated for the county.",
    "sc_statewide_date": "Date the whole state was activated (the latest county date in the state).",
    "current": "True for the 3,142 counties of the census vintage-2019 geography: the places the simulator uses.",
    "in_activation_file": "True if the code is a row of the activation file.",
    "fips_change": "Null for current codes; renamed / split / absorbed / invalid for retired codes.",
    "successor_fips": "Current codes that now cover a retired code's area (empty for current codes).",
    "change_note": "What happened to a retired code (null for current codes).",
    "activation_date_source": "`activation_file`, or `predecessor NNNNN` when taken from a retired code's row; null if none.",
    "note": "Plain-English note on any data fix applied to the row (null if none).",
}

POPULATION_COLUMNS: Final = {
    "fips": "County FIPS (current counties only).",
    "year": "Calendar year, 2009-2019.",
    "population": "Resident population (census estimate).",
    "population_source": f"`{POP_ESTIMATE}` (POPESTIMATEyyyy, July 1) or `{POP_BASE_2010}` (2009 only, see below).",
    "noncitizen_population": "Noncitizen population, ACS 5-year estimate whose period ends in `year`.",
    "noncitizen_moe": "ACS 90% margin of error of noncitizen_population.",
    "noncitizen_source": f"`{NC_ACS}`, `{NC_VIA_RETIRED}` (value of a retired code, see below) or `{NC_CARRIED}` (2019).",
}

FIELD_OFFICE_COLUMNS: Final = {
    "aor": "Field office (AOR) code.",
    "address": "Street address of the ERO field office.",
    "lat": "Latitude (WGS84 decimal degrees).",
    "long": "Longitude (WGS84 decimal degrees).",
    "n_counties": "Number of current counties mapped to this AOR in counties.parquet.",
}


@dataclass
class BuildLog:
    """What the build found: resolved problems, unresolved ones, and checks that passed."""

    resolved: list[str] = field(default_factory=list)
    open: list[str] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)

    def fix(self, message: str) -> None:
        self.resolved.append(message)
        print(f"RESOLVED    {message}")

    def keep_open(self, message: str) -> None:
        """A problem the sources cannot settle but that does not affect any current county."""
        self.open.append(message)
        print(f"OPEN        {message}")

    def fail(self, message: str) -> None:
        self.unresolved.append(message)
        print(f"UNRESOLVED  {message}")

    def check(self, message: str) -> None:
        self.checks.append(message)
        print(f"CHECK       {message}")


@dataclass
class Tables:
    counties: pl.DataFrame
    population: pl.DataFrame
    field_offices: pl.DataFrame
    log: BuildLog
    sha256: dict[str, str]


def _read_text_csv(path: Path, separator: str = ",") -> pl.DataFrame:
    """Read every column as text so FIPS codes keep their leading zeros and nothing is guessed."""
    return pl.read_csv(path, infer_schema=False, separator=separator)


def _codes(values: list[str] | set[str], limit: int = 100) -> str:
    items = sorted(values)
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")


def _state_codes(activation: pl.DataFrame, log: BuildLog) -> dict[str, str]:
    """Map state FIPS → USPS code from the activation rows that have both."""
    pairs = activation.drop_nulls("state").select("state_fips", "state").unique()
    mapping: dict[str, str] = {}
    for state_fips, state in pairs.iter_rows():
        if state_fips in mapping:
            log.fail(
                f"state FIPS {state_fips} has two USPS codes in the activation file: {mapping[state_fips]}, {state}"
            )
        mapping[state_fips] = state
    return mapping


def load_activation(path: Path, log: BuildLog) -> pl.DataFrame:
    raw = _read_text_csv(path)
    log.check(f"{ACTIVATION_CSV}: {raw.height} rows")
    bad = raw.filter(~pl.col("county_fips").str.contains(r"^\d{5}$"))["county_fips"].to_list()
    if bad:
        log.fail(f"activation file: malformed FIPS codes {bad}")
    dupes = raw.filter(pl.col("county_fips").is_duplicated())["county_fips"].unique().to_list()
    if dupes:
        log.fail(f"activation file: duplicated FIPS codes {_codes(dupes)}")
    wrong_state = raw.filter(pl.col("statefips") != pl.col("county_fips").str.slice(0, 2))
    if wrong_state.height:
        log.fail(
            f"activation file: statefips disagrees with county_fips for {_codes(wrong_state['county_fips'].to_list())}"
        )
    act = raw.select(
        pl.col("county_fips").alias("fips"),
        pl.col("statefips").alias("state_fips"),
        "state",
        pl.col("county_name").alias("activation_name"),
        pl.col("sc_activation_date").str.to_date("%Y-%m-%d", strict=True),
        pl.col("sc_statewide_date").str.to_date("%Y-%m-%d", strict=True),
    )
    later = act.filter(pl.col("sc_activation_date") > pl.col("sc_statewide_date"))
    if later.height:
        log.fail(f"activation file: county date after statewide date for {_codes(later['fips'].to_list())}")
    return act


def load_census(path: Path, log: BuildLog) -> tuple[pl.DataFrame, pl.DataFrame]:
    """County rows (SUMLEV 050) and state rows (SUMLEV 040) with integer populations."""
    raw = _read_text_csv(path)
    pop_cols = ["ESTIMATESBASE2010", *(f"POPESTIMATE{y}" for y in CENSUS_YEARS)]
    typed = raw.with_columns(pl.col(pop_cols).cast(pl.Int64, strict=True))
    missing = typed.select(pl.col(pop_cols).null_count()).sum_horizontal().item()
    if missing:
        log.fail(f"census file: {missing} missing population values")
    levels = dict(typed.group_by("SUMLEV").len().iter_rows())
    unexpected_levels = set(levels) - {"040", "050"}
    if unexpected_levels:
        log.fail(f"census file: unexpected SUMLEV values {sorted(unexpected_levels)}")
    counties = typed.filter(pl.col("SUMLEV") == "050").with_columns((pl.col("STATE") + pl.col("COUNTY")).alias("fips"))
    states = typed.filter(pl.col("SUMLEV") == "040")
    dupes = counties.filter(pl.col("fips").is_duplicated())["fips"].unique().to_list()
    if dupes:
        log.fail(f"census file: duplicated county FIPS {_codes(dupes)}")
    log.check(
        f"{CENSUS_CSV}: {raw.height} rows = {levels.get('050', 0)} county rows + {levels.get('040', 0)} state rows"
    )
    # The county rows must add up to the state rows, year by year: nothing missing, nothing doubled.
    sums = counties.group_by("STATE").agg(pl.col(pop_cols).sum()).sort("STATE")
    state_rows = states.select("STATE", *pop_cols).sort("STATE")
    if sums.equals(state_rows):
        log.check("census file: county populations sum exactly to the state rows for every state and year")
    else:
        log.fail("census file: county populations do not sum to the state rows")
    return counties, states


def load_noncitizen(path: Path, log: BuildLog) -> pl.DataFrame:
    raw = _read_text_csv(path)
    log.check(f"{NONCITIZEN_CSV}: {raw.height} rows (first, unnamed column is an R row index and is not used)")
    na = raw.filter((pl.col("noncit_pop") == "NA") | (pl.col("moe") == "NA"))
    nc = raw.select(
        pl.col("year").cast(pl.Int32, strict=True),
        "fips",
        pl.col("noncit_pop").replace("NA", None).cast(pl.Int64, strict=True).alias("noncitizen_population"),
        pl.col("moe").replace("NA", None).cast(pl.Int64, strict=True).alias("noncitizen_moe"),
    )
    bad = nc.filter(~pl.col("fips").str.contains(r"^\d{5}$"))["fips"].unique().to_list()
    if bad:
        log.fail(f"noncitizen file: malformed FIPS {bad}")
    dupes = nc.filter(pl.struct("fips", "year").is_duplicated())
    if dupes.height:
        log.fail(f"noncitizen file: {dupes.height} duplicated (fips, year) rows")
    years = set(nc["year"].unique().to_list())
    if years != set(NONCITIZEN_YEARS):
        log.fail(
            f"noncitizen file: years {sorted(years)}, expected {NONCITIZEN_YEARS.start}-{NONCITIZEN_YEARS.stop - 1}"
        )
    if na.height:
        na_states = sorted(set(na["fips"].str.slice(0, 2).to_list()))
        log.fix(
            f"noncitizen file: {na.height} rows with NA value/MOE, all in state FIPS {na_states} "
            f"({na['fips'].n_unique()} codes); these places are not in the activation or census files and are not shipped"
        )
    return nc


def load_county_aor(path: Path, log: BuildLog) -> pl.DataFrame:
    raw = _read_text_csv(path)
    log.check(f"{COUNTY_AOR_CSV}: {raw.height} rows, {raw['aor'].n_unique()} AOR codes")
    dupes = raw.filter(pl.col("geoid").is_duplicated())["geoid"].unique().to_list()
    if dupes:
        log.fail(f"county_aor: duplicated geoid {_codes(dupes)}")
    nulls = raw.filter(pl.col("aor").is_null())["geoid"].to_list()
    if nulls:
        log.fail(f"county_aor: no AOR for {_codes(nulls)}")
    return raw.select(pl.col("geoid").alias("fips"), "aor")


def load_field_offices(path: Path, log: BuildLog) -> pl.DataFrame:
    raw = _read_text_csv(path)
    padded = raw.filter(
        (pl.col("lat") != pl.col("lat").str.strip_chars()) | (pl.col("long") != pl.col("long").str.strip_chars())
    )
    if padded.height:
        log.fix(
            f"field offices: coordinates with stray spaces for {_codes(padded['aor'].to_list())}; whitespace stripped"
        )
    offices = raw.select(
        "aor",
        pl.col("field_office_addr").str.strip_chars().alias("address"),
        pl.col("lat").str.strip_chars().cast(pl.Float64, strict=True),
        pl.col("long").str.strip_chars().cast(pl.Float64, strict=True),
    )
    if offices["aor"].is_duplicated().any():
        log.fail("field offices: duplicated AOR codes")
    log.check(f"{FIELD_OFFICE_CSV}: {offices.height} field offices")
    return offices


def build_counties(
    act: pl.DataFrame,
    census: pl.DataFrame,
    census_states: pl.DataFrame,
    aor: pl.DataFrame,
    offices: pl.DataFrame,
    log: BuildLog,
) -> pl.DataFrame:
    """One row per code of the activation file or the census geography, with dates and AOR resolved."""
    state_codes = _state_codes(act, log)
    state_names = dict(census_states.select("STATE", "STNAME").iter_rows())
    act_codes = set(act["fips"].to_list())
    census_codes = set(census["fips"].to_list())
    act_rows = {row["fips"]: row for row in act.iter_rows(named=True)}
    census_names = dict(census.select("fips", "CTYNAME").iter_rows())
    aor_of = dict(aor.iter_rows())

    # Activation-file codes the census geography lacks: every one must be explained.
    for code in sorted(act_codes - census_codes):
        retired = RETIRED_CODES.get(code)
        if retired is None:
            log.fail(f"activation-file code {code} is not a census county and has no known history")
            continue
        bad = [s for s in retired.successors if s not in census_codes]
        if bad:
            log.fail(f"retired code {code}: successors {bad} are not census counties")
        row = act_rows[code]
        date = row["sc_activation_date"]
        report = log.keep_open if retired.change == "invalid" else log.fix
        report(
            f"activation-file code {code} ({retired.name or 'no name'}) is not in the census geography: "
            f"{retired.change}; {retired.note} Kept as a retired row (current=false), "
            f"activation date {date or 'none in source'}."
        )
    for code in sorted(set(RETIRED_CODES) - act_codes):
        log.fail(f"RETIRED_CODES lists {code}, which is not in the activation file (stale table in the script)")

    predecessors: dict[str, list[str]] = {}
    for code, retired in RETIRED_CODES.items():
        if code in act_codes:
            for successor in retired.successors:
                predecessors.setdefault(successor, []).append(code)

    rows: list[dict[str, object]] = []
    for code in sorted(act_codes | census_codes):
        state_fips = code[:2]
        in_act = code in act_codes
        current = code in census_codes
        act_row = act_rows.get(code)
        retired = RETIRED_CODES.get(code)
        notes: list[str] = []
        state = act_row["state"] if act_row and act_row["state"] else state_codes.get(state_fips)
        if act_row and not act_row["state"]:
            notes.append("State code missing in the activation file; filled from its state FIPS.")
        if state is None:
            log.fail(f"{code}: no USPS state code for state FIPS {state_fips}")

        # Name: the census name is the official current one; retired codes keep their historical name.
        if current:
            name = census_names[code]
            act_name = act_row["activation_name"] if act_row else None
            if act_name is not None and act_name != name:
                log.fix(f"{code}: activation file spells the name {act_name!r}, census {name!r}; census name used")
        else:
            name = (act_row["activation_name"] if act_row else None) or (retired.name if retired else None)
            if act_row and act_row["activation_name"] is None and retired and retired.name:
                notes.append("Name missing in the activation file; historical name supplied.")

        # Activation date.
        date = act_row["sc_activation_date"] if act_row else None
        statewide = act_row["sc_statewide_date"] if act_row else None
        date_source: str | None = "activation_file" if date is not None else None
        dated_preds = [p for p in predecessors.get(code, []) if act_rows[p]["sc_activation_date"] is not None]
        if current and not in_act:
            if not dated_preds:
                log.fail(f"{code} ({name}) is a census county with no activation date and no dated predecessor")
            else:
                dates = sorted({act_rows[p]["sc_activation_date"].isoformat() for p in dated_preds})
                chosen = min(dated_preds, key=lambda p: (act_rows[p]["sc_activation_date"], p))
                date = act_rows[chosen]["sc_activation_date"]
                statewide = act_rows[chosen]["sc_statewide_date"]
                date_source = f"predecessor {chosen}"
                if len(dates) > 1:
                    log.fix(f"{code}: predecessors {dated_preds} disagree on the date {dates}; the earliest used")
                notes.append(
                    f"Not in the activation file (code created after it or renamed); activation date taken "
                    f"from predecessor {chosen} ({act_rows[chosen]['activation_name'] or RETIRED_CODES[chosen].name})."
                )
                log.fix(f"census county {code} ({name}) is not in the activation file: date {date} from {chosen}")
        elif current and dated_preds:
            pred_dates = sorted({act_rows[p]["sc_activation_date"].isoformat() for p in dated_preds})
            same = pred_dates == [date.isoformat()] if date else False
            log.check(
                f"{code} now covers (part of) retired code(s) {dated_preds}: their activation dates {pred_dates} "
                f"{'equal' if same else 'DIFFER FROM'} its own {date}"
            )
            if not same:
                notes.append(f"Absorbed {dated_preds} whose activation dates differ; its own date kept.")
        if current and date is None:
            log.fail(f"current county {code} ({name}) has no activation date")

        # ICE field office.
        aor_code = aor_of.get(code)
        if current and aor_code is None:
            state_aors = aor.filter(pl.col("fips").str.starts_with(state_fips))["aor"].unique().to_list()
            if len(state_aors) == 1:
                aor_code = state_aors[0]
                notes.append(f"Not in the AOR crosswalk; every code of its state maps to {aor_code}, so that is used.")
                log.fix(
                    f"{code} ({name}, {state}) is missing from county_aor.csv; all {state} rows map to "
                    f"{aor_code}, so {aor_code} used"
                )
            else:
                log.fail(f"{code} ({name}) has no AOR and its state spans {sorted(state_aors)}")
        elif not current and retired is not None:
            successor_aors = sorted({aor_of[s] for s in retired.successors if s in aor_of})
            if len(successor_aors) == 1:
                aor_code = successor_aors[0]
                notes.append(f"AOR taken from its successor(s) {', '.join(retired.successors)}.")

        rows.append(
            {
                "fips": code,
                "state": state,
                "state_fips": state_fips,
                "state_name": state_names.get(state_fips),
                "name": name,
                "aor": aor_code,
                "sc_activation_date": date,
                "sc_statewide_date": statewide,
                "current": current,
                "in_activation_file": in_act,
                "fips_change": retired.change if retired and not current else None,
                "successor_fips": list(retired.successors) if retired and not current else [],
                "change_note": retired.note if retired and not current else None,
                "activation_date_source": date_source,
                "note": " ".join(notes) if notes else None,
            }
        )

    counties = pl.DataFrame(
        rows,
        schema={
            "fips": pl.String,
            "state": pl.String,
            "state_fips": pl.String,
            "state_name": pl.String,
            "name": pl.String,
            "aor": pl.String,
            "sc_activation_date": pl.Date,
            "sc_statewide_date": pl.Date,
            "current": pl.Boolean,
            "in_activation_file": pl.Boolean,
            "fips_change": pl.String,
            "successor_fips": pl.List(pl.String),
            "change_note": pl.String,
            "activation_date_source": pl.String,
            "note": pl.String,
        },
        orient="row",
    )

    # Crosswalk rows that are not shipped, said out loud.
    extra_aor = set(aor["fips"].to_list()) - set(counties["fips"].to_list())
    by_state: dict[str, list[str]] = {}
    for code in extra_aor:
        by_state.setdefault(code[:2], []).append(code)
    for state_fips, codes in sorted(by_state.items()):
        what = {
            "72": "Puerto Rico municipios (no activation date or census population in the sources)",
            "09": "Connecticut planning regions (the 2022 county-equivalents; the activation era used the 8 counties)",
            "02": "Alaska census areas split from Valdez-Cordova (02261) in 2019, after the census geography used here",
        }.get(state_fips, "codes absent from the activation and census files")
        log.fix(f"county_aor.csv has {len(codes)} codes not shipped: {what}: {_codes(codes, limit=12)}")
    unknown_aors = set(counties["aor"].drop_nulls().to_list()) - set(offices["aor"].to_list())
    if unknown_aors:
        log.fail(f"AOR codes without a field office row: {sorted(unknown_aors)}")

    # Invariants the package relies on.
    current_rows = counties.filter(pl.col("current"))
    log.check(
        f"counties: {counties.height} rows = {len(act_codes)} activation-file codes + "
        f"{len(census_codes - act_codes)} census-only codes; {current_rows.height} current"
    )
    missing = act_codes - set(counties["fips"].to_list())
    if missing:
        log.fail(f"activation-file codes missing from counties: {_codes(missing)}")
    for column in ("state", "name", "aor", "sc_activation_date", "sc_statewide_date"):
        nulls = current_rows.filter(pl.col(column).is_null())["fips"].to_list()
        if nulls:
            log.fail(f"current counties with no {column}: {_codes(nulls)}")
    no_date = counties.filter(pl.col("sc_activation_date").is_null())["fips"].to_list()
    log.check(f"codes with no activation date (all retired, none current): {no_date}")
    first, last = current_rows["sc_activation_date"].min(), current_rows["sc_activation_date"].max()
    log.check(f"current counties activated from {first} to {last}")
    statewide = (
        counties.drop_nulls("sc_activation_date")
        .group_by("state")
        .agg(pl.col("sc_activation_date").max().alias("latest"), pl.col("sc_statewide_date").unique().alias("sw"))
        .filter((pl.col("sw").list.len() != 1) | (pl.col("sw").list.first() != pl.col("latest")))
    )
    if statewide.height:
        log.fail(f"statewide date is not the latest county date in {statewide['state'].to_list()}")
    else:
        log.check("sc_statewide_date is one date per state and equals the state's latest county date")
    return counties


def build_population(census: pl.DataFrame, nc: pl.DataFrame, counties: pl.DataFrame, log: BuildLog) -> pl.DataFrame:
    """Long table fips × year 2009-2019 for the current counties."""
    current = set(counties.filter(pl.col("current"))["fips"].to_list())

    census_long = pl.concat(
        [
            census.select(
                "fips",
                pl.lit(FIRST_POPULATION_YEAR, pl.Int32).alias("year"),
                pl.col("ESTIMATESBASE2010").alias("population"),
                pl.lit(POP_BASE_2010).alias("population_source"),
            ),
            *(
                census.select(
                    "fips",
                    pl.lit(y, pl.Int32).alias("year"),
                    pl.col(f"POPESTIMATE{y}").alias("population"),
                    pl.lit(POP_ESTIMATE).alias("population_source"),
                )
                for y in CENSUS_YEARS
            ),
        ]
    )
    log.fix(
        f"the census file has no {FIRST_POPULATION_YEAR} estimate: {FIRST_POPULATION_YEAR} population = "
        f"ESTIMATESBASE2010 (April 1, 2010), flagged population_source={POP_BASE_2010}"
    )

    # Noncitizen codes outside the census geography: carry renamed/absorbed codes to their successor.
    nc_codes = set(nc["fips"].to_list())
    successor_of: dict[str, str] = {}
    dropped: list[str] = []
    for code in sorted(nc_codes - current):
        retired = RETIRED_CODES.get(code)
        if retired is not None and len(retired.successors) == 1:
            successor_of[code] = retired.successors[0]
            years = sorted(nc.filter(pl.col("fips") == code)["year"].to_list())
            log.fix(
                f"noncitizen file code {code} ({retired.name}, {retired.change}) in {years[0]}-{years[-1]} "
                f"credited to {retired.successors[0]} (flag {NC_VIA_RETIRED})"
            )
        else:
            dropped.append(code)
    if dropped:
        outside = [c for c in dropped if not c.startswith("72")]
        if outside:
            log.fail(f"noncitizen file codes with no current county: {_codes(outside)}")
        pr = [c for c in dropped if c.startswith("72")]
        pr_values = nc.filter(pl.col("fips").is_in(pr) & pl.col("noncitizen_population").is_not_null()).height
        if pr_values:  # the NA rows were reported on loading; values would be news
            log.fix(
                f"noncitizen file: {pr_values} values for {len(pr)} Puerto Rico municipios (72xxx) not shipped: "
                f"no activation dates or census population for them in the sources"
            )
    mapped = (
        nc.filter(pl.col("fips").is_in(current) | pl.col("fips").is_in(list(successor_of)))
        .with_columns(
            pl.col("fips").replace(successor_of).alias("target"),
            pl.col("fips").is_in(list(successor_of)).alias("via_retired"),
        )
        .group_by("target", "year")
        .agg(
            pl.col("noncitizen_population").sum(),
            # MOE of a sum: square root of the sum of squared MOEs (Census ACS handbook approximation).
            pl.col("noncitizen_moe").pow(2).sum().sqrt().round(0).cast(pl.Int64).alias("noncitizen_moe"),
            pl.col("via_retired").any(),
            pl.len().alias("parts"),
            pl.col("noncitizen_population").null_count().alias("nulls"),
        )
        .rename({"target": "fips"})
    )
    summed = mapped.filter(pl.col("parts") > 1).sort("fips", "year")
    for code, years in summed.group_by("fips").agg(pl.col("year").sort()).sort("fips").iter_rows():
        log.fix(
            f"noncitizen {code} in {years[0]}-{years[-1]}: own value + retired code value summed "
            f"(MOE = sqrt of summed squares)"
        )
    if mapped["nulls"].sum():
        log.fail("noncitizen values missing for current counties after mapping")
    nc_long = pl.concat(
        [
            mapped.select(
                "fips",
                "year",
                "noncitizen_population",
                "noncitizen_moe",
                pl.when(pl.col("via_retired"))
                .then(pl.lit(NC_VIA_RETIRED))
                .otherwise(pl.lit(NC_ACS))
                .alias("noncitizen_source"),
            ),
            mapped.filter(pl.col("year") == NONCITIZEN_YEARS.stop - 1).select(
                "fips",
                pl.lit(LAST_POPULATION_YEAR, pl.Int32).alias("year"),
                "noncitizen_population",
                "noncitizen_moe",
                pl.lit(NC_CARRIED).alias("noncitizen_source"),
            ),
        ]
    )
    log.fix(
        f"the noncitizen file ends in {NONCITIZEN_YEARS.stop - 1}: {LAST_POPULATION_YEAR} value and MOE = "
        f"{NONCITIZEN_YEARS.stop - 1} carried forward, flagged noncitizen_source={NC_CARRIED}"
    )

    population = (
        census_long.filter(pl.col("fips").is_in(current))
        .join(nc_long, on=["fips", "year"], how="full", coalesce=True)
        .sort("fips", "year")
    )
    expected = len(current) * (LAST_POPULATION_YEAR - FIRST_POPULATION_YEAR + 1)
    holes = population.filter(pl.any_horizontal(pl.all().is_null()))
    if population.height != expected or holes.height:
        log.fail(
            f"population table: {population.height} rows (expected {expected}); "
            f"{holes.height} rows with missing values, e.g. {holes.head(5).to_dicts()}"
        )
    else:
        log.check(f"county_population: {population.height} rows = {len(current)} counties x 11 years, no missing value")
    over = population.filter(pl.col("noncitizen_population") > pl.col("population"))
    if over.height:
        log.fail(f"noncitizen population above population in {over.height} county-years")
    else:
        log.check("noncitizen_population <= population in every county-year")
    return population.select(list(POPULATION_COLUMNS))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(shared: Path) -> Tables:
    """Derive all tables from <shared>/data; the returned log lists every resolution and failure."""
    data = shared / "data"
    log = BuildLog()
    act = load_activation(data / ACTIVATION_CSV, log)
    census, census_states = load_census(data / CENSUS_CSV, log)
    nc = load_noncitizen(data / NONCITIZEN_CSV, log)
    aor = load_county_aor(data / COUNTY_AOR_CSV, log)
    offices = load_field_offices(data / FIELD_OFFICE_CSV, log)
    counties = build_counties(act, census, census_states, aor, offices, log)
    population = build_population(census, nc, counties, log)
    per_aor = counties.filter(pl.col("current")).group_by("aor").len("n_counties")
    field_offices = (
        offices.join(per_aor, on="aor", how="left")
        .with_columns(pl.col("n_counties").fill_null(0).cast(pl.Int64))
        .sort("aor")
    )
    unused = field_offices.filter(pl.col("n_counties") == 0)["aor"].to_list()
    if unused:
        log.check(f"field offices with no county in the crosswalk (kept): {unused}")
    sha = {name: _sha256(data / name) for name in SOURCE_ORIGINS}
    return Tables(counties, population, field_offices, log, sha)


def _columns_md(columns: dict[str, str], frame: pl.DataFrame) -> list[str]:
    lines = ["| column | type | meaning |", "|---|---|---|"]
    lines += [f"| `{name}` | {frame.schema[name]} | {meaning} |" for name, meaning in columns.items()]
    return lines


def provenance_markdown(tables: Tables) -> str:
    """The PROVENANCE.md text: deterministic, so a rebuild can be compared byte for byte."""
    c, p, f = tables.counties, tables.population, tables.field_offices
    n_current = c.filter(pl.col("current")).height
    n_act = c.filter(pl.col("in_activation_file")).height
    src = ["| file (under ../shared/data) | origin | sha256 |", "|---|---|---|"]
    src += [f"| `{name}` | {origin} | `{tables.sha256[name]}` |" for name, origin in SOURCE_ORIGINS.items()]
    retired = [
        f"| {code} | {r.name or '—'} | {r.change} | {', '.join(r.successors) or '—'} | {r.note} |"
        for code, r in RETIRED_CODES.items()
    ]
    lines = [
        "# Reference data provenance",
        "",
        "Generated by `scripts/build_reference_data.py`; do not edit by hand. Rebuild from the repo root with",
        "",
        "```",
        f"{REBUILD_COMMAND}            # reads ../shared/data, writes src/securecomm/core/data/",
        "```",
        "",
        "`../shared/data` is the upstream data folder of the project's workspace (beside the repository on the",
        "developers' machines), each folder with a `SOURCE.md`; a clone does not have it and does not need it:",
        "the tables here are what the package reads. `tests/core/test_places.py` rebuilds into a temporary",
        "directory, when that folder is present, and checks that the shipped files agree.",
        "All tables are Parquet (zstd). The package reads them with `securecomm.core.places`.",
        "",
        "## Sources",
        "",
        *src,
        "",
        "## Geography",
        "",
        f"The simulator's counties are the **{n_current} counties and county-equivalents of the census vintage-2019",
        "geography** (50 states + DC; `current = true`). The activation file uses the older codes of the",
        f"2008-2013 rollout ({n_act} rows); the codes that differ are kept as retired rows so that every",
        "activation-file code is in `counties.parquet`, and mapped to their successors:",
        "",
        "| code | historical name | change | current successor(s) | note |",
        "|---|---|---|---|---|",
        *retired,
        "",
        "Census counties missing from the activation file (created or renamed after its codes were fixed) take",
        "the activation date of their predecessor. Population is never attached to retired codes: their people",
        "are counted in the successors, so summing `county_population.parquet` never double counts.",
        "Puerto Rico and the territories are not shipped: the activation and census files have no rows for them.",
        "",
        f"## counties.parquet — {c.height} rows ({n_current} current, {c.height - n_current} retired)",
        "",
        f"Sources: `{ACTIVATION_CSV}`, `{CENSUS_CSV}` (names), `{COUNTY_AOR_CSV}` (AOR).",
        "",
        *_columns_md(COUNTY_COLUMNS, c),
        "",
        "Transformations: dates parsed as ISO dates; names of current counties from the census file (it spells",
        "LaSalle, LaPorte, DeKalb, Doña Ana as the Census Bureau does); state code filled from the state FIPS",
        "where the activation file left it empty; AOR from the UWCHR crosswalk (a 2025 snapshot: field office",
        "boundaries of 2008-2014 may have differed); Connecticut's 8 counties, absent from the crosswalk (which",
        "uses the 2022 planning regions), take BOS because every Connecticut code in it maps to BOS. The",
        "activation file's `borough_secure`, `parish_secure`, `city_secure` flags are not shipped (county type",
        "is not used by the simulator; see the source file).",
        "",
        f"## county_population.parquet — {p.height} rows ({n_current} current counties x "
        f"{LAST_POPULATION_YEAR - FIRST_POPULATION_YEAR + 1} years {FIRST_POPULATION_YEAR}-{LAST_POPULATION_YEAR})",
        "",
        f"Sources: `{CENSUS_CSV}` (SUMLEV 050 rows), `{NONCITIZEN_CSV}`.",
        "",
        *_columns_md(POPULATION_COLUMNS, p),
        "",
        "Transformations and assumptions:",
        "",
        "- 2010-2019 population = `POPESTIMATEyyyy` (July 1). The file has no 2009 estimate: 2009 uses",
        f"  `ESTIMATESBASE2010` (April 1, 2010), flagged `{POP_BASE_2010}`. The vintage-2019 series is on",
        "  2019 boundaries for every year (e.g. Bedford city inside Bedford County 51019 throughout).",
        "- Noncitizen population is the ACS 5-year estimate whose period ends in `year` (2009 = 2005-2009);",
        f"  2019 repeats 2018 (value and MOE), flagged `{NC_CARRIED}`.",
        f"- Values reported under a retired code are credited to its successor, flagged `{NC_VIA_RETIRED}`:",
        "  02270 → 02158 and 46113 → 46102 (renames, 2009-2014); 51515 Bedford city is added to 51019 for",
        "  2009-2013, with MOE = sqrt(MOE1² + MOE2²) (the Census ACS approximation for a sum).",
        "- Puerto Rico rows (72xxx, all NA) are not shipped.",
        "",
        f"## field_offices.parquet — {f.height} rows",
        "",
        f"Source: `{FIELD_OFFICE_CSV}`.",
        "",
        *_columns_md(FIELD_OFFICE_COLUMNS, f),
        "",
        "Transformations: address and coordinates whitespace-stripped (HAL and HQ had a leading space in the",
        "longitude), coordinates parsed as floats, `n_counties` counted from counties.parquet. HAL (Harlingen,",
        "added 2025) and HQ have no county in the crosswalk and are kept.",
        "",
        "## Build log",
        "",
        "Every problem the build resolved:",
        "",
        *(f"- {m}" for m in tables.log.resolved),
        "",
        "Checks that passed:",
        "",
        *(f"- {m}" for m in tables.log.checks),
        "",
        "Open (kept as is; the sources cannot settle them, and no current county depends on them):",
        "",
        *(f"- {m}" for m in tables.log.open),
        "",
        "Unresolved: " + ("; ".join(tables.log.unresolved) if tables.log.unresolved else "none."),
        "",
    ]
    return "\n".join(lines)


def write(tables: Tables, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in (
        ("counties.parquet", tables.counties),
        ("county_population.parquet", tables.population),
        ("field_offices.parquet", tables.field_offices),
    ):
        frame.write_parquet(out / name, compression="zstd", compression_level=19, statistics=False)
        print(f"wrote {name}: {frame.height} rows, {(out / name).stat().st_size:,} bytes")
    (out / "PROVENANCE.md").write_text(provenance_markdown(tables), encoding="utf-8")
    print("wrote PROVENANCE.md")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=DEFAULT_SHARED, help="the shared/ folder (default: ../shared)")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="output folder (default: src/securecomm/core/data)"
    )
    args = parser.parse_args(argv)
    tables = build(args.shared)
    if tables.log.unresolved:
        print(f"\n{len(tables.log.unresolved)} unresolved problem(s); nothing written.", file=sys.stderr)
        return 1
    write(tables, args.out)
    log = tables.log
    print(
        f"\n{len(log.resolved)} problems resolved, {len(log.open)} left open (harmless), "
        f"{len(log.checks)} checks passed, none unresolved."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
