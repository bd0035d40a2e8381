"""Categorical draws as integer codes, and codes as Polars Enum columns without building strings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl

from securecomm.model.stages.state import PlaceKeys, PlaceStream

# A categorical draw is a 32-bit integer: the category is the number of category boundaries (cumulative
# shares scaled to 2^32) at or below it.
DRAW_RANGE = 1 << 32
# Bins of the table `draw_codes` reads a draw's category from (its top 16 bits): 2^16 one-byte entries
# stay in cache.
LOOKUP_BITS = 16
# A table entry for a bin that holds a boundary between categories: its draws are compared one by one.
STRADDLES = np.iinfo(np.uint8).max


def draw_codes(shares: Mapping[str, float], order: Sequence[str], keys: PlaceKeys, rng: PlaceStream) -> np.ndarray:
    """A draw per key of the index (in `order`, fewer than 255 categories) of a category with the given
    shares, as uint8."""
    if len(order) >= STRADDLES:
        raise ValueError(f"{len(order)} categories: a draw's code is one byte")
    cumulative = np.cumsum([shares[name] for name in order], dtype=np.float64)
    count = keys.size
    draws = rng.integers(keys, DRAW_RANGE, np.uint32)
    if not cumulative[-1] > 0:
        raise ValueError(f"no category of {', '.join(order)} has a share")
    # On the 64-bit scale a boundary may be 2^32 itself (the shares after it are zero): no draw reaches it.
    boundaries = np.floor(cumulative[:-1] / cumulative[-1] * DRAW_RANGE).astype(np.uint64)
    if count < 1 << LOOKUP_BITS:
        return np.searchsorted(boundaries, draws.astype(np.uint64), side="right").astype(np.uint8)
    # A binary search per draw costs more than the draw: read the category from the draw's bin in a table
    # instead. A bin without a boundary lies wholly between two boundaries and has one category; the few
    # draws in a boundary's bin are searched exactly.
    shift = 32 - LOOKUP_BITS
    boundary_bins = (boundaries >> np.uint64(shift)).astype(np.intp)
    table = np.searchsorted(boundary_bins, np.arange(1 << LOOKUP_BITS), side="left").astype(np.uint8)
    table[boundary_bins[boundary_bins < 1 << LOOKUP_BITS]] = STRADDLES
    codes = table[draws >> shift]
    straddling = np.flatnonzero(codes == STRADDLES)
    codes[straddling] = np.searchsorted(boundaries, draws[straddling].astype(np.uint64), side="right")
    return codes


def as_enum(codes: np.ndarray, vocabulary: Sequence[str]) -> pl.Series:
    """Integer codes (negative = missing) as an Enum column over `vocabulary`."""
    enum = pl.Enum(list(vocabulary))
    # Polars checks every code against the vocabulary: one-byte codes check in a third of the time.
    physical_type = np.uint8 if len(vocabulary) <= 1 << 8 else np.uint32
    if codes.dtype == physical_type:
        return pl.Series(codes).cat.to(enum)
    missing = codes < 0 if codes.dtype.kind == "i" else None
    if missing is None or not missing.any():
        return pl.Series(codes.astype(physical_type)).cat.to(enum)
    if missing.all():  # nothing to check (the vocabulary may be empty)
        return pl.repeat(None, codes.size, dtype=enum, eager=True).alias("")
    present = pl.Series(np.where(missing, 0, codes).astype(physical_type)).cat.to(enum)
    return pl.select(pl.when(pl.lit(pl.Series(~missing))).then(pl.lit(present))).to_series().alias("")
