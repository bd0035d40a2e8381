"""The profiling indicator of jail records — replayed ones and the detainer desk's: the share of detainers
on people booked only for minor charges, by month of booking (and, given the place's activation date, by
month around it), beside the pattern Gardner & Kohli found in Irving, TX. One definition for both: `replay`
and `desk` (independent packages of one layer) call `profiling_indicator` here.

"Booked only for minor charges" is the simulation's definition (model.metrics.MINOR_CHARGES): the most
serious current charge of the booking is not a felony (a misdemeanor or an infraction) or is a traffic
offense. A case with no current charge in the records is not counted in the share.

The indicator is **descriptive**. A high share is what Irving's arrests showed when police could reach ICE
around the clock, and what pretextual arrests would produce; it is not, alone, evidence of profiling —
the mix of a jail's bookings, ICE's criteria of the era and the records' own gaps move it too.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

import numpy as np
import polars as pl

from securecomm.core import schema
from securecomm.core.cases import CaseTables
from securecomm.model.metrics import MINOR_CHARGES
from securecomm.model.stages.bookings import most_serious_charges
from securecomm.model.stages.codes import as_enum

MONTHS_PER_YEAR: Final = 12


@dataclass(frozen=True)
class ReferencePattern:
    """A published share a user holds a replay's indicator against, with what it is evidence of."""

    share: float
    study: str
    population: str
    status: str
    caveat: str
    url: str


IRVING: Final = ReferencePattern(
    share=0.98,
    study=(
        'Gardner & Kohli, "The C.A.P. Effect: Racial Profiling in the ICE Criminal Alien Program", Warren Institute '
        "policy brief (Sept 2009)"
    ),
    population=(
        "ICE detainers on people arrested by the Irving, TX police during the Criminal Alien Program's 24-hour ICE "
        "access (arrest records Jan 2006 – Nov 2007; the share over 14 months): 98% charged with misdemeanors, 2% with "
        "felonies"
    ),
    status=(
        "C in the project's evidence sheet (EFFECTS.md); here read in the publisher's release (Berkeley Law: 'just 2 "
        "percent … charged with felonies') and the ACLU's summary ('98 percent … misdemeanor offenses'); the brief's "
        "own table was not readable"
    ),
    caveat=(
        "Descriptive, one city, the Criminal Alien Program rather than Secure Communities; the Irving Police "
        "Department disputed it (felonies 15% of its referrals to ICE). A share near it is a pattern to look into, "
        "not proof of profiling."
    ),
    url="http://www.law.berkeley.edu/6241.htm",
)
COLUMNS: Final = (
    "month",
    "months_from_activation",
    "detainers",
    "with_charges",
    "minor_only",
    "minor_only_share",
    "irving_share",
)


def minor_only(tables: CaseTables) -> pl.DataFrame:
    """Per case (`row`): whether the records give a current charge (`with_charges`) and whether the most
    serious one is minor (`minor_only`; null without charges)."""
    charges = tables.current_charges.sort("row", maintain_order=True)
    # most_serious_charges reads records numbered 0..k-1, each with a charge: number the charged cases so.
    rows = charges.get_column("row").to_numpy()
    charged_rows, dense = np.unique(rows, return_inverse=True)
    level, category = most_serious_charges(charges.with_columns(row=pl.Series(dense, dtype=pl.UInt32)))
    charged = pl.DataFrame(
        {
            "row": pl.Series(charged_rows, dtype=pl.UInt32),
            "most_serious_charge_level": as_enum(level, schema.LEVELS),
            "most_serious_charge_category": as_enum(category, schema.CATEGORIES),
        }
    ).select("row", MINOR_CHARGES.alias("minor_only"))
    return (
        tables.records.select("row")
        .join(charged, on="row", how="left", maintain_order="left")
        .with_columns(with_charges=pl.col("minor_only").is_not_null())
    )


def profiling_indicator(tables: CaseTables, booked_at: pl.Series, activation: dt.date | None = None) -> pl.DataFrame:
    """By month of booking (`booked_at`, one per case, in the tables' order; cases without one are left
    out): detainers, those with a current charge in the records, those booked only for minor charges, their
    share of the charged, and Irving's share beside it. `months_from_activation` counts calendar months from
    the activation's month (0: the month of activation; null without an activation date)."""
    cases = minor_only(tables).with_columns(booked_at=booked_at.alias("booked_at")).drop_nulls("booked_at")
    month = pl.col("booked_at").dt.truncate("1mo").dt.date()
    if activation is None:
        from_activation = pl.lit(None, dtype=pl.Int32)
    else:
        index = pl.col("month").dt.year() * MONTHS_PER_YEAR + pl.col("month").dt.month()
        from_activation = (index - (activation.year * MONTHS_PER_YEAR + activation.month)).cast(pl.Int32)
    return (
        cases.group_by(month.alias("month"))
        .agg(
            pl.len().cast(pl.Int64).alias("detainers"),
            pl.col("with_charges").sum().cast(pl.Int64),
            pl.col("minor_only").sum().cast(pl.Int64),
        )
        .sort("month")
        .with_columns(
            months_from_activation=from_activation,
            minor_only_share=pl.when(pl.col("with_charges") > 0).then(pl.col("minor_only") / pl.col("with_charges")),
            irving_share=pl.lit(IRVING.share),
        )
        .select(COLUMNS)
    )
