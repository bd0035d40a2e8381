"""Stage 1 — bookings: how many people each county's jails book, and who they are.

Bookings are counted, never listed: for each county-month (split at the county's
activation date) the expected bookings of each status are Poisson draws. Splitting a
Poisson count by status is itself exact Poisson splitting, so each status is drawn
independently.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from securecomm.core import schema
from securecomm.core.places import counties as county_table
from securecomm.core.places import county_population
from securecomm.model.parameters import NONCITIZEN_STATUSES, STATUSES, Parameters
from securecomm.model.stages.codes import as_enum, draw_codes

DAYS_PER_YEAR = 365.25


def segments(fips: list[str], start: dt.date, end: dt.date) -> pl.DataFrame:
    """County × month pieces of [start, end], split where Secure Communities activates.

    Columns: fips, segment_start, segment_end (exclusive), days, year, activated.
    """
    if end < start:
        raise ValueError(f"the end {end} is before the start {start}")
    month_starts = pl.date_range(start.replace(day=1), end, "1mo", eager=True)
    last_day = end + dt.timedelta(days=1)
    months = pl.DataFrame({"month": month_starts}).with_columns(
        pl.max_horizontal(pl.col("month"), pl.lit(start)).alias("piece_start"),
        pl.min_horizontal(pl.col("month").dt.offset_by("1mo"), pl.lit(last_day)).alias("piece_end"),
    )
    places = county_table().filter(pl.col("fips").is_in(fips)).select("fips", "sc_activation_date")
    grid = places.join(months, how="cross")
    activation = pl.col("sc_activation_date").clip(pl.col("piece_start"), pl.col("piece_end"))
    before = grid.select(
        "fips", pl.col("piece_start").alias("segment_start"), activation.alias("segment_end"), activated=pl.lit(False)
    )
    after = grid.select(
        "fips", activation.alias("segment_start"), pl.col("piece_end").alias("segment_end"), activated=pl.lit(True)
    )
    pieces = pl.concat([before, after]).filter(pl.col("segment_end") > pl.col("segment_start"))
    return pieces.with_columns(
        days=(pl.col("segment_end") - pl.col("segment_start")).dt.total_days().cast(pl.Int32),
        year=pl.col("segment_start").dt.year().cast(pl.Int32),
    ).sort("fips", "segment_start")


def expected_bookings(pieces: pl.DataFrame, parameters: Parameters) -> pl.DataFrame:
    """Add the expected bookings of each status to every segment."""
    population = county_population().select("fips", "year", "population", "noncitizen_population")
    years = population.get_column("year")
    clamped = pieces.with_columns(pl.col("year").clip(years.min(), years.max()).alias("population_year"))
    joined = clamped.join(
        population.rename({"year": "population_year"}), on=["fips", "population_year"], how="left"
    ).drop("population_year")
    admissions = parameters.by_day("jail_admissions_per_capita", joined.get_column("segment_start").to_numpy())
    joined = joined.with_columns(admissions_per_capita=pl.Series(admissions))
    status_mix = parameters.value("noncitizen_status_mix")
    ratio = parameters.value("noncitizen_booking_ratio")
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


def draw_bookings(pieces: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """Poisson bookings of each status per segment; `bookings` is their sum."""
    drawn = {f"booked_{status}": rng.poisson(pieces.get_column(f"expected_{status}").to_numpy()) for status in STATUSES}
    frame = pieces.with_columns(pl.Series(name, values, dtype=pl.Int64) for name, values in drawn.items())
    return frame.with_columns(bookings=pl.sum_horizontal(f"booked_{status}" for status in STATUSES))


def draw_current_charges(rng: np.random.Generator, records: int, parameters: Parameters) -> pl.DataFrame:
    """The charges of each recorded booking: long table (row = the record, category, level, felony_class)."""
    per_record = 1 + rng.poisson(parameters.value("charges_per_booking_extra_mean"), records)
    return draw_offenses(rng, per_record, parameters, "booking_charge_level_mix", "booking_charge_category_mix")


def draw_offenses(
    rng: np.random.Generator, per_record: np.ndarray, parameters: Parameters, level_mix: str, category_mix: str
) -> pl.DataFrame:
    """Offenses with a level, a category given the level, and a class for felonies."""
    record = np.repeat(np.arange(per_record.size, dtype=np.uint32), per_record)
    count = record.size
    level = draw_codes(rng, parameters.value(level_mix), schema.LEVELS, count)
    category = np.empty(count, dtype=np.int64)
    categories_by_level = parameters.value(category_mix)
    for level_index, level_name in enumerate(schema.LEVELS):
        chosen = level == level_index
        category[chosen] = draw_codes(rng, categories_by_level[level_name], schema.CATEGORIES, int(chosen.sum()))
    felony_class = draw_codes(rng, parameters.value("felony_class_mix"), schema.FELONY_CLASSES, count)
    felony = level == schema.LEVELS.index("felony")
    return pl.DataFrame(
        {
            "row": record,
            "category": as_enum(category, schema.CATEGORIES),
            "level": as_enum(level, schema.LEVELS),
            "felony_class": as_enum(np.where(felony, felony_class, -1), schema.FELONY_CLASSES),
        }
    )
