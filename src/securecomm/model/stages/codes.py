"""Categorical draws as integer codes, and codes as Polars Enum columns without building strings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl


def draw_codes(shares: Mapping[str, float], order: Sequence[str], count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` draws of the index (in `order`) of a category with the given shares."""
    cumulative = np.cumsum([shares[name] for name in order])
    uniform = rng.random(count) * cumulative[-1]
    # The code is the number of cumulative shares at or below the draw: a few vectorised
    # comparisons beat a binary search per draw for the handful of categories used here.
    codes = np.zeros(count, dtype=np.min_scalar_type(len(order)))
    for boundary in cumulative[:-1]:
        codes += uniform >= boundary
    return codes.astype(np.int64)


def as_enum(codes: np.ndarray, vocabulary: Sequence[str]) -> pl.Series:
    """Integer codes (negative = missing) as an Enum column over `vocabulary`."""
    physical = pl.Series(codes, dtype=pl.Int64).cast(pl.UInt32, strict=False)
    return physical.cat.to(pl.Enum(list(vocabulary)))
