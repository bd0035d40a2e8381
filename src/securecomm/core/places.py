"""Counties, states, activation dates, populations and ICE field offices.

The simulator runs on real places: the 3,142 counties of the census vintage-2019 geography
(50 states + DC), each with its Secure Communities activation date, its ICE field office and its
population and noncitizen population by year. The data are the compact tables shipped in
``securecomm/data`` (built by ``scripts/build_reference_data.py``; see ``data/PROVENANCE.md``), so
nothing here needs ``../shared`` or the network.

A few codes of the 2008-2013 activation file no longer exist (renamed, split or merged counties).
They stay in ``counties(include_retired=True)`` for the record, but places resolve only to current
codes, so populations are never counted twice; naming a retired code gives an error that says
which current code(s) to use.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Sequence
from functools import cache
from importlib.resources import files
from typing import Final

import polars as pl

NATION: Final = "US"
FIRST_POPULATION_YEAR: Final = 2009
LAST_POPULATION_YEAR: Final = 2019

_FIPS_PATTERN: Final = re.compile(r"[0-9]{5}")
_STATE_PATTERN: Final = re.compile(r"[A-Z]{2}")
_TERRITORIES: Final = frozenset({"PR", "GU", "VI", "AS", "MP"})


@cache
def _table(name: str) -> pl.DataFrame:
    """Read a shipped table once; importlib.resources works from a wheel or a zip as well as a checkout."""
    data = files("securecomm.core").joinpath("data", name).read_bytes()
    return pl.read_parquet(io.BytesIO(data))


@cache
def _current_fips() -> frozenset[str]:
    return frozenset(counties()["fips"].to_list())


@cache
def _fips_by_state() -> dict[str, tuple[str, ...]]:
    grouped = counties().group_by("state").agg(pl.col("fips").sort())
    return {state: tuple(codes) for state, codes in grouped.iter_rows()}


def counties(*, include_retired: bool = False) -> pl.DataFrame:
    """One row per county: FIPS, state, name, ICE field office (``aor``), activation and statewide dates.

    By default only current counties, the places a simulation runs on; ``include_retired=True`` adds the
    retired codes of the activation file (``current`` false; see ``fips_change``, ``successor_fips``,
    ``change_note``).
    """
    table = _table("counties.parquet")
    return table.clone() if include_retired else table.filter(pl.col("current"))


def states() -> list[str]:
    """USPS codes of the states (and DC) that have counties, sorted."""
    return sorted(_fips_by_state())


def field_offices() -> pl.DataFrame:
    """ICE ERO field offices (AORs): code, address, coordinates and number of counties served."""
    return _table("field_offices.parquet").clone()


def county_population() -> pl.DataFrame:
    """Long table (fips, year 2009-2019): population and noncitizen population with their source flags.

    Join it to per-county-year work on (fips, year). The ``*_source`` columns mark the filled values
    (2009 population from the April 2010 base, 2019 noncitizens carried from 2018).
    """
    return _table("county_population.parquet").clone()


def _retired_message(code: str) -> str | None:
    row = counties(include_retired=True).filter(pl.col("fips") == code)
    if row.is_empty():
        return None
    name, change, successors, history = row.select("name", "fips_change", "successor_fips", "change_note").row(0)
    if change == "invalid":
        return f"{code!r} appears in the activation file, with no name or date, but is no county: {history}"
    advice = f" Use {', '.join(successors)}." if successors else ""
    return f"{code!r} ({name}) is a retired county FIPS code ({change}): {history}{advice}"


def _resolve_item(item: str, spec: str) -> tuple[str, ...]:
    token = item.strip().upper()
    if not token:
        raise ValueError(
            f"empty item in place {spec!r}: expected US, a state code or county FIPS codes, comma-separated"
        )
    if token == NATION:
        return tuple(sorted(_current_fips()))
    if _STATE_PATTERN.fullmatch(token):
        if token not in _fips_by_state():
            territory = (
                " (Puerto Rico and the territories have no county activation data)" if token in _TERRITORIES else ""
            )
            raise ValueError(
                f"unknown state code {item.strip()!r} in place {spec!r}{territory}; known: {', '.join(states())}"
            )
        return _fips_by_state()[token]
    if _FIPS_PATTERN.fullmatch(token):
        if token in _current_fips():
            return (token,)
        retired = _retired_message(token)
        raise ValueError(retired or f"unknown county FIPS {token!r} in place {spec!r}")
    hint = (
        f" (a county FIPS has 5 digits: did you mean {token.zfill(5)!r}?)" if token.isdigit() and len(token) < 5 else ""
    )
    raise ValueError(
        f"malformed place {item.strip()!r} in {spec!r}: expected US, a two-letter state code such as CT, "
        f"or a five-digit county FIPS such as 09001{hint}"
    )


def resolve_place(spec: str) -> list[str]:
    """Turn ``US``, a state code (``CT``), a county FIPS (``09001``) or a comma list of those into county FIPS.

    Returns the sorted, de-duplicated current county codes; raises ValueError naming the first bad item.
    Case and spaces around items are ignored, so ``"ct, 36061"`` works from a command line.
    """
    if not isinstance(spec, str):
        raise TypeError(f"place must be a string, not {type(spec).__name__}")
    codes: set[str] = set()
    for item in spec.split(","):
        codes.update(_resolve_item(item, spec))
    return sorted(codes)


def activation_date(fips: str) -> dt.date:
    """The date Secure Communities was activated in a county (IDENT checks apply from that day on).

    Retired codes that have a date in the activation file return it too; codes without one raise ValueError.
    """
    row = counties(include_retired=True).filter(pl.col("fips") == fips)
    if row.is_empty():
        if not isinstance(fips, str) or not _FIPS_PATTERN.fullmatch(fips):
            raise ValueError(f"malformed county FIPS {fips!r}: expected five digits such as '09001'")
        raise ValueError(f"unknown county FIPS {fips!r}")
    date = row["sc_activation_date"].item()
    if date is None:
        raise ValueError(f"county FIPS {fips!r} has no activation date: {row['change_note'].item()}")
    return date


def population(fips: Sequence[str], year: int, *, clamp_year: bool = False) -> pl.DataFrame:
    """Population and noncitizen population of the given current counties in one year, in input order.

    Data cover 2009-2019; ``clamp_year=True`` uses the nearest covered year instead of raising (the
    program began in October 2008). Column ``data_year`` says which year's figures were used.
    """
    if isinstance(fips, str):
        raise TypeError("fips must be a sequence of FIPS codes; wrap a single code in a list")
    data_year = min(max(year, FIRST_POPULATION_YEAR), LAST_POPULATION_YEAR)
    if data_year != year and not clamp_year:
        raise ValueError(
            f"no population data for {year}: covered years are {FIRST_POPULATION_YEAR}-{LAST_POPULATION_YEAR} "
            f"(pass clamp_year=True to use the nearest year)"
        )
    unknown = [code for code in fips if code not in _current_fips()]
    if unknown:
        first = unknown[0]
        detail = _retired_message(first) if _FIPS_PATTERN.fullmatch(str(first)) else None
        raise ValueError(
            f"not current county FIPS: {', '.join(map(repr, unknown[:10]))}" + (f". {detail}" if detail else "")
        )
    requested = pl.DataFrame({"fips": list(fips)}, schema={"fips": pl.String})
    table = county_population().filter(pl.col("year") == data_year).rename({"year": "data_year"})
    return requested.join(table, on="fips", how="left", maintain_order="left").select(
        "fips", pl.lit(year, pl.Int32).alias("year"), pl.all().exclude("fips")
    )


# --- time zones ------------------------------------------------------------------------------
#
# A hold is counted on the jail's own clock (docs/design.md §3), so every county knows its IANA zone.
# Each state has the zone of most of its counties; the counties of states that span zones are
# listed below by name (the county seat's zone decides a split county). Split counties kept in
# their state's zone, and places that keep other time than their county officially does, are:
# Gulf County FL (Port St. Joe, the seat, is Eastern; Wewahitchka Central); Aleutians West AK
# (Adak keeps Hawaii-Aleutian time, Unalaska Alaska time); the Navajo Nation in Apache, Navajo and
# Coconino AZ (keeps daylight time, the rest of Arizona does not); Cherry and Sioux NE and Sioux ND
# (split along the zone line); Culberson TX (Guadalupe Mountains); West Wendover in Elko NV and
# Phenix City in Russell AL (unofficially on the neighbouring state's time). A record that needs
# another zone says so with its own `time_zone`.

STATE_TIME_ZONES: Final[dict[str, str]] = {
    **dict.fromkeys(
        ("CT", "DE", "DC", "FL", "GA", "KY", "ME", "MD", "MA", "NH", "NJ", "NY", "NC", "OH", "PA", "RI", "SC"),
        "America/New_York",
    ),
    **dict.fromkeys(("VT", "VA", "WV"), "America/New_York"),
    "MI": "America/Detroit",
    "IN": "America/Indiana/Indianapolis",
    **dict.fromkeys(
        ("AL", "AR", "IL", "IA", "KS", "LA", "MN", "MS", "MO", "NE", "ND", "OK", "SD", "TN", "TX", "WI"),
        "America/Chicago",
    ),
    **dict.fromkeys(("CO", "MT", "NM", "UT", "WY"), "America/Denver"),
    "ID": "America/Boise",
    "AZ": "America/Phoenix",
    **dict.fromkeys(("CA", "NV", "OR", "WA"), "America/Los_Angeles"),
    "AK": "America/Anchorage",
    "HI": "Pacific/Honolulu",
}

_COUNTY_TIME_ZONES: Final[dict[str, dict[str, tuple[str, ...]]]] = {
    "FL": {
        "America/Chicago": (
            "Bay",
            "Calhoun",
            "Escambia",
            "Holmes",
            "Jackson",
            "Okaloosa",
            "Santa Rosa",
            "Walton",
            "Washington",
        ),
    },
    "ID": {
        "America/Los_Angeles": (
            "Benewah",
            "Bonner",
            "Boundary",
            "Clearwater",
            "Idaho",
            "Kootenai",
            "Latah",
            "Lewis",
            "Nez Perce",
            "Shoshone",
        ),
    },
    "IN": {
        "America/Chicago": (
            "Gibson",
            "Jasper",
            "Lake",
            "LaPorte",
            "Newton",
            "Porter",
            "Posey",
            "Spencer",
            "Vanderburgh",
            "Warrick",
        ),
        "America/Indiana/Knox": ("Starke",),
        "America/Indiana/Tell_City": ("Perry",),
        "America/Indiana/Petersburg": ("Pike",),
        "America/Indiana/Vincennes": ("Daviess", "Dubois", "Knox", "Martin"),
        "America/Indiana/Winamac": ("Pulaski",),
        "America/Indiana/Marengo": ("Crawford",),
        "America/Indiana/Vevay": ("Switzerland",),
    },
    "KS": {"America/Denver": ("Greeley", "Hamilton", "Sherman", "Wallace")},
    "KY": {
        "America/Chicago": (
            "Adair",
            "Allen",
            "Ballard",
            "Barren",
            "Breckinridge",
            "Butler",
            "Caldwell",
            "Calloway",
            "Carlisle",
            "Christian",
            "Clinton",
            "Crittenden",
            "Cumberland",
            "Daviess",
            "Edmonson",
            "Fulton",
            "Graves",
            "Grayson",
            "Green",
            "Hancock",
            "Hart",
            "Henderson",
            "Hickman",
            "Hopkins",
            "Livingston",
            "Logan",
            "Lyon",
            "Marshall",
            "McCracken",
            "McLean",
            "Metcalfe",
            "Monroe",
            "Muhlenberg",
            "Ohio",
            "Russell",
            "Simpson",
            "Todd",
            "Trigg",
            "Union",
            "Warren",
            "Webster",
        ),
        "America/Kentucky/Louisville": ("Jefferson",),
        "America/Kentucky/Monticello": ("Wayne",),
    },
    "MI": {"America/Menominee": ("Dickinson", "Gogebic", "Iron", "Menominee")},
    "NE": {
        "America/Denver": (
            "Arthur",
            "Banner",
            "Box Butte",
            "Chase",
            "Cheyenne",
            "Dawes",
            "Deuel",
            "Dundy",
            "Garden",
            "Grant",
            "Keith",
            "Kimball",
            "Morrill",
            "Perkins",
            "Scotts Bluff",
            "Sheridan",
            "Sioux",
        ),
    },
    "ND": {
        "America/Denver": (
            "Adams",
            "Billings",
            "Bowman",
            "Dunn",
            "Golden Valley",
            "Grant",
            "Hettinger",
            "McKenzie",
            "Slope",
            "Stark",
        ),
        "America/North_Dakota/Beulah": ("Mercer",),
        "America/North_Dakota/New_Salem": ("Morton",),
        "America/North_Dakota/Center": ("Oliver",),
    },
    "OR": {"America/Boise": ("Malheur",)},
    "SD": {
        "America/Denver": (
            "Bennett",
            "Butte",
            "Corson",
            "Custer",
            "Dewey",
            "Fall River",
            "Haakon",
            "Harding",
            "Jackson",
            "Lawrence",
            "Meade",
            "Oglala Lakota",
            "Pennington",
            "Perkins",
            "Ziebach",
        ),
    },
    "TN": {
        "America/New_York": (
            "Anderson",
            "Blount",
            "Bradley",
            "Campbell",
            "Carter",
            "Claiborne",
            "Cocke",
            "Grainger",
            "Greene",
            "Hamblen",
            "Hamilton",
            "Hancock",
            "Hawkins",
            "Jefferson",
            "Johnson",
            "Knox",
            "Loudon",
            "McMinn",
            "Meigs",
            "Monroe",
            "Morgan",
            "Polk",
            "Rhea",
            "Roane",
            "Scott",
            "Sevier",
            "Sullivan",
            "Unicoi",
            "Union",
            "Washington",
        ),
    },
    "TX": {"America/Denver": ("El Paso", "Hudspeth")},
}


@cache
def county_time_zones() -> dict[str, str]:
    """Every current county's IANA time zone, by FIPS (see the notes above on split counties)."""
    by_name: dict[tuple[str, str], str] = {}
    for state, zones in _COUNTY_TIME_ZONES.items():
        for zone, names in zones.items():
            for name in names:
                by_name[(state, name)] = zone
    zones: dict[str, str] = {}
    found: set[tuple[str, str]] = set()
    for fips, state, name in counties().select("fips", "state", "name").iter_rows():
        short = name.removesuffix(" County").removesuffix(" Parish")
        key = (state, short)
        if key in by_name:
            found.add(key)
        zones[fips] = by_name.get(key, STATE_TIME_ZONES[state])
    missing = sorted(set(by_name) - found)
    if missing:  # a misspelt county would silently keep its state's zone
        raise RuntimeError(f"county time zones name unknown counties: {missing}")
    return zones


def time_zone(fips: str) -> str:
    """The IANA time zone of a current county."""
    try:
        return county_time_zones()[fips]
    except KeyError:
        raise ValueError(f"unknown county FIPS {fips!r}") from None


def time_zones(places: Sequence[str]) -> frozenset[str]:
    """The zones of a list of places (US, state codes, county FIPS)."""
    zones = county_time_zones()
    return frozenset(zones[fips] for fips in resolve_place(",".join(places)))


def single_time_zone(places: Sequence[str]) -> str | None:
    """The one zone every county of the places keeps, or None when they span several."""
    found = time_zones(places)
    return next(iter(found)) if len(found) == 1 else None
