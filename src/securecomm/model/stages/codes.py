"""Categorical draws as integer codes, and codes as Polars Enum columns without building strings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl

# Bins of the table `draw_codes` reads a draw's category from: 2^16 one-byte entries stay in cache.
LOOKUP_BINS = 1 << 16
# A table entry for a bin that holds a boundary between categories: its draws are compared one by one.
STRADDLES = np.iinfo(np.uint8).max


def draw_codes(shares: Mapping[str, float], order: Sequence[str], count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` draws of the index (in `order`) of a category with the given shares: the number of
    cumulative shares at or below a uniform draw scaled to their total."""
    cumulative = np.cumsum([shares[name] for name in order])
    uniform = rng.random(count) * cumulative[-1]
    boundaries = cumulative[:-1]
    if count < LOOKUP_BINS or not cumulative[-1] > 0 or len(order) >= STRADDLES:
        return np.searchsorted(boundaries, uniform, side="right").astype(np.int64)
    # A binary search per draw costs more than the draw: read the category from the draw's bin in a
    # table instead. Scaling is monotonic, so a bin without a boundary's bin number lies wholly between
    # two boundaries and has one category; the few draws in a boundary's bin are searched exactly.
    scale = LOOKUP_BINS / cumulative[-1]
    boundary_bins = np.floor(boundaries * scale).astype(np.intp)
    table = np.searchsorted(boundary_bins, np.arange(LOOKUP_BINS + 1), side="left").astype(np.uint8)
    table[boundary_bins] = STRADDLES
    codes = table[(uniform * scale).astype(np.intp)]
    straddling = np.flatnonzero(codes == STRADDLES)
    codes[straddling] = np.searchsorted(boundaries, uniform[straddling], side="right")
    return codes.astype(np.int64)


def as_enum(codes: np.ndarray, vocabulary: Sequence[str]) -> pl.Series:
    """Integer codes (negative = missing) as an Enum column over `vocabulary`."""
    physical = pl.Series(codes, dtype=pl.Int64).cast(pl.UInt32, strict=False)
    return physical.cat.to(pl.Enum(list(vocabulary)))
