"""The population the community effects apply to: Hispanic residents by county, and by age.

Two compact tables shipped in ``core/data`` (provenance in ``core/data/PROVENANCE_EFFECTS.md``):

- ``hispanic_population.parquet`` (``scripts/build_effects_data.py``): Hispanic residents of the
  2012-2016 ACS 5-year estimates. Counties the source does not cover (Alaska's, and two codes created
  since) have no row: nothing is estimated for them.
- ``hispanic_age.parquet`` (``scripts/build_effects_data.py --ages``): the Census Bureau's estimates of
  July 1, 2019 of each county's Hispanic residents of all ages, aged 10 and over and aged 15 and over.
  The NCVS counts people aged 12 and over: the county's share aged 12+ lies between its 15+ and 10+ shares,
  where ``hispanic_share_aged_12_plus`` puts it.
"""

from __future__ import annotations

import io
from functools import cache
from importlib.resources import files

import polars as pl


@cache
def _table(name: str) -> pl.DataFrame:
    return pl.read_parquet(io.BytesIO(files("securecomm.core").joinpath("data", name).read_bytes()))


def hispanic_population() -> pl.DataFrame:
    """One row per county covered: fips, acs_population, hispanic_share, hispanic_population (ACS 2012-2016)."""
    return _table("hispanic_population.parquet").clone()


def hispanic_ages() -> pl.DataFrame:
    """One row per current county: fips, hispanic_population (all ages), hispanic_aged_10_plus,
    hispanic_aged_15_plus and their vintage (Census Bureau estimates of July 1, 2019)."""
    return _table("hispanic_age.parquet").clone()


def hispanic_share_aged_12_plus(share_of_10_to_14_aged_12_plus: float) -> pl.DataFrame:
    """Per county with Hispanic residents in the age table: fips, hispanic_aged_12_plus and
    share_aged_12_plus, the county's own share of its Hispanic residents aged 12 or older.

    The table has five-year age groups: the residents aged 12+ are those aged 15+ and the given share of
    those aged 10-14 (3/5 if the five single years are equally many; 0 gives the 15+ count, 1 the 10+)."""
    if not 0.0 <= share_of_10_to_14_aged_12_plus <= 1.0:
        raise ValueError(f"a share of the 10-14 group is between 0 and 1, not {share_of_10_to_14_aged_12_plus}")
    aged_10_to_14 = pl.col("hispanic_aged_10_plus") - pl.col("hispanic_aged_15_plus")
    aged_12_plus = pl.col("hispanic_aged_15_plus") + share_of_10_to_14_aged_12_plus * aged_10_to_14
    return (
        _table("hispanic_age.parquet")
        .filter(pl.col("hispanic_population") > 0)
        .select(
            "fips", hispanic_aged_12_plus=aged_12_plus, share_aged_12_plus=aged_12_plus / pl.col("hispanic_population")
        )
    )
