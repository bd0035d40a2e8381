"""The population the community effects apply to: Hispanic residents by county.

A compact table shipped in ``core/data/hispanic_population.parquet`` (built by
``scripts/build_effects_data.py`` from the 2012-2016 ACS 5-year estimates; provenance in
``core/data/PROVENANCE_EFFECTS.md``). Counties the source does not cover (Alaska's, and two
codes created since) have no row: nothing is estimated for them.
"""

from __future__ import annotations

import io
from functools import cache
from importlib.resources import files

import polars as pl


@cache
def _hispanic_table() -> pl.DataFrame:
    data = files("securecomm.core").joinpath("data", "hispanic_population.parquet").read_bytes()
    return pl.read_parquet(io.BytesIO(data))


def hispanic_population() -> pl.DataFrame:
    """One row per county covered: fips, acs_population, hispanic_share, hispanic_population (ACS 2012-2016)."""
    return _hispanic_table().clone()
