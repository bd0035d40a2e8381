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
