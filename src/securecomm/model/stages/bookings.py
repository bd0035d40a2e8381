"""Stage 1 — bookings: how many people each county's jails book, and who they are.

Bookings are counted, never listed: for each county-month (split at the county's
activation date) the expected bookings of each status are Poisson draws. Splitting a
Poisson count by status is itself exact Poisson splitting, so each status is drawn
independently.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np
import polars as pl

from securecomm.core import schema
from securecomm.core.places import counties as county_table
from securecomm.core.places import county_population
from securecomm.core.schema import NONCITIZEN_STATUSES, STATUSES, Status
from securecomm.core.units import DAYS_PER_YEAR
from securecomm.model.parameters import Parameters
from securecomm.model.stages.codes import as_enum, draw_codes
from securecomm.model.stages.state import OffProgram, PlaceKeys, PlaceStream, State, Streams, segment_keys

NONCITIZEN_BOOKING_RATIO = "noncitizen_booking_ratio"


def draw_bookings(state: State, parameters: Parameters, rng: Streams) -> State:
    """The stage: each county-month's bookings of each status (`booked_<status>`, `bookings`)."""
    segments = county_segments(list(state.counties), state.start, state.end, state.off_program)
    segments = expected_bookings(segments, parameters)
    return replace(state, segments=poisson_bookings(segments, rng["bookings"], segment_keys(segments)))


def county_segments(
    fips: list[str], start: dt.date, end: dt.date, off_program: tuple[OffProgram, ...] = ()
) -> pl.DataFrame:
    """County × month segments of [start, end], split where Secure Communities activates — and, for a
    participation reform, where the program stops or starts running in a county (`off_program`).

    Columns: fips, segment_start, segment_end (exclusive), days, year, activated.
    """
    if end < start:
        raise ValueError(f"the end {end} is before the start {start}")
    month_starts = pl.date_range(start.replace(day=1), end, "1mo", eager=True)
    last_day = end + dt.timedelta(days=1)
    months = pl.DataFrame({"month": month_starts}).with_columns(
        pl.max_horizontal(pl.col("month"), pl.lit(start)).alias("period_start"),
        pl.min_horizontal(pl.col("month").dt.offset_by("1mo"), pl.lit(last_day)).alias("period_end"),
    )
    places = county_table().filter(pl.col("fips").is_in(fips)).select("fips", "sc_activation_date")
    grid = places.join(months, how="cross")
    activation = pl.col("sc_activation_date").clip(pl.col("period_start"), pl.col("period_end"))
    before = grid.select(
        "fips", pl.col("period_start").alias("segment_start"), activation.alias("segment_end"), activated=pl.lit(False)
    )
    after = grid.select(
        "fips", activation.alias("segment_start"), pl.col("period_end").alias("segment_end"), activated=pl.lit(True)
    )
    segments = pl.concat([before, after]).filter(pl.col("segment_end") > pl.col("segment_start"))
    for window in off_program:
        segments = _outside_program(segments, window)
    return segments.with_columns(
        days=(pl.col("segment_end") - pl.col("segment_start")).dt.total_days().cast(pl.Int32),
        year=pl.col("segment_start").dt.year().cast(pl.Int32),
    ).sort("fips", "segment_start")


def _outside_program(segments: pl.DataFrame, window: OffProgram) -> pl.DataFrame:
    """The segments with the window's counties not activated inside it: an activated segment that a
    bound of the window cuts is split there (no other segment changes, so a run without a
    participation reform has the segments, and the draws, it always had)."""
    in_counties = pl.col("fips").is_in(sorted(window.counties))
    for bound in (window.start, window.end):
        if bound is None:
            continue
        cut = in_counties & pl.col("activated") & (pl.col("segment_start") < bound) & (pl.col("segment_end") > bound)
        straddling = segments.filter(cut)
        segments = pl.concat(
            [
                segments.filter(~cut),
                straddling.with_columns(segment_end=pl.lit(bound)),
                straddling.with_columns(segment_start=pl.lit(bound)),
            ]
        )
    inside = in_counties
    if window.start is not None:
        inside &= pl.col("segment_start") >= window.start
    if window.end is not None:
        inside &= pl.col("segment_end") <= window.end
    return segments.with_columns(activated=pl.col("activated") & ~inside)


def expected_bookings(segments: pl.DataFrame, parameters: Parameters) -> pl.DataFrame:
    """Add the expected bookings of each status to every segment."""
    population = county_population().select("fips", "year", "population", "noncitizen_population")
    years = population.get_column("year")
    clamped = segments.with_columns(pl.col("year").clip(years.min(), years.max()).alias("population_year"))
    joined = clamped.join(
        population.rename({"year": "population_year"}), on=["fips", "population_year"], how="left"
    ).drop("population_year")
    admissions = parameters.by_day("jail_admissions_per_capita", joined.get_column("segment_start").to_numpy())
    joined = joined.with_columns(admissions_per_capita=pl.Series(admissions))
    status_mix = parameters.value("noncitizen_status_mix")
    ratio = parameters.value(NONCITIZEN_BOOKING_RATIO)
    naturalized = parameters.value("naturalized_share_of_bookings")
    noncitizen_share = (ratio * pl.col("noncitizen_population") / pl.col("population")).clip(0, 1 - naturalized)
    expected_total = pl.col("admissions_per_capita") * pl.col("population") * pl.col("days") / DAYS_PER_YEAR
    shares = {status: noncitizen_share * status_mix[status] for status in NONCITIZEN_STATUSES}
    shares["naturalized"] = pl.lit(naturalized)
    # Clipped at 0: where the noncitizen share is capped at 1 - naturalized, rounding leaves about -1e-16.
    shares["native"] = (1 - noncitizen_share - naturalized).clip(0, None)
    return joined.with_columns(
        (expected_total * shares[status]).alias(f"expected_{status}") for status in STATUSES
    ).drop("admissions_per_capita")


def booking_weight(status_codes: np.ndarray, parameters: Parameters) -> np.ndarray:
    """How the parameters scale a status's expected bookings, up to the county's population terms,
    which they do not move: a noncitizen's by the booking ratio (where the noncitizen share is not
    capped), a citizen's not at all."""
    noncitizen = status_codes < Status.NATURALIZED
    return np.where(noncitizen, parameters.value(NONCITIZEN_BOOKING_RATIO), 1.0)


def poisson_bookings(segments: pl.DataFrame, rng: PlaceStream, keys: PlaceKeys) -> pl.DataFrame:
    """Poisson bookings of each status per segment; `bookings` is their sum."""
    drawn = {
        f"booked_{status}": rng.poisson(keys, segments.get_column(f"expected_{status}").to_numpy())
        for status in STATUSES
    }
    frame = segments.with_columns(pl.Series(name, values, dtype=pl.Int64) for name, values in drawn.items())
    return frame.with_columns(bookings=pl.sum_horizontal(f"booked_{status}" for status in STATUSES))


def draw_charges(state: State, parameters: Parameters, rng: Streams) -> State:
    """The stage: the current charges of each record's booking (long: row, category, level, felony_class)."""
    charges_rng, keys = rng["charges"], state.record_keys()
    per_record = 1 + charges_rng.poisson(keys, parameters.value("charges_per_booking_extra_mean"))
    charges = draw_offenses(
        per_record, keys, "booking_charge_level_mix", "booking_charge_category_mix", parameters, charges_rng
    )
    level, category = most_serious_charges(charges)
    records = state.records.with_columns(
        most_serious_charge_level=as_enum(level, schema.LEVELS),
        most_serious_charge_category=as_enum(category, schema.CATEGORIES),
    )
    return replace(state, records=records, charges=charges)


def most_serious_charges(charges: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Each record's most serious current charge: its level code and its category code. The most serious
    level governs; within it a traffic charge ranks last (a traffic felony with a burglary is booked for
    the burglary), and among equals the first charge listed. Charges are grouped by record, and every
    record has at least one."""
    rows = charges.get_column("row").to_numpy()
    levels = charges.get_column("level").to_physical().to_numpy()
    categories = charges.get_column("category").to_physical().to_numpy()
    if rows.size == 0:
        return levels, categories
    group_starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    # Levels run from the most serious: rank 2 × level, plus one for a traffic charge.
    rank = levels.astype(np.int16) * 2 + (categories == schema.CATEGORIES.index("traffic"))
    most_serious = np.minimum.reduceat(rank, group_starts)
    at_that_rank = np.flatnonzero(rank == most_serious[rows])
    first = at_that_rank[np.r_[True, rows[at_that_rank][1:] != rows[at_that_rank][:-1]]]
    return most_serious // 2, categories[first]


def draw_offenses(
    per_record: np.ndarray,
    record_keys: PlaceKeys,
    level_mix: str,
    category_mix: str,
    parameters: Parameters,
    rng: PlaceStream,
) -> pl.DataFrame:
    """Offenses with a level, a category given the level, and a class for felonies; `per_record` of each
    record, drawn in the place of its record (`record_keys`)."""
    record = np.repeat(np.arange(per_record.size, dtype=np.uint32), per_record)
    keys = record_keys.repeat(per_record)
    level = draw_codes(parameters.value(level_mix), schema.LEVELS, keys, rng)
    category = np.empty(record.size, dtype=np.uint8)
    categories_by_level = parameters.value(category_mix)
    of_level = [np.flatnonzero(level == level_index) for level_index in range(len(schema.LEVELS))]
    for level_name, chosen in zip(schema.LEVELS, of_level, strict=True):
        category[chosen] = draw_codes(categories_by_level[level_name], schema.CATEGORIES, keys.subset(chosen), rng)
    felony = of_level[schema.LEVELS.index("felony")]
    felony_class = np.full(record.size, -1, dtype=np.int8)  # only a felony has a class
    felony_class[felony] = draw_codes(
        parameters.value("felony_class_mix"), schema.FELONY_CLASSES, keys.subset(felony), rng
    )
    return pl.DataFrame(
        {
            "row": record,
            "category": as_enum(category, schema.CATEGORIES),
            "level": as_enum(level, schema.LEVELS),
            "felony_class": as_enum(felony_class, schema.FELONY_CLASSES),
        }
    )
