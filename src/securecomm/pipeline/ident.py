"""Stage 3 — IDENT: in an activated county every booking's prints are checked against
DHS's biometric records; a match opens a record for ICE. Before activation, nothing is
checked. Matches are binomial thinning of each status's bookings."""

from __future__ import annotations

import numpy as np
import polars as pl

from securecomm.parameters import STATUSES, Parameters


def draw_matches(pieces: pl.DataFrame, parameters: Parameters, rng: np.random.Generator) -> pl.DataFrame:
    """Add `fingerprints_checked`, `matched_<status>` and `ident_matches` to every segment."""
    match_probability = parameters.value("ident_record_probability")
    activated = pieces.get_column("activated").to_numpy()
    matched = {}
    for status in STATUSES:
        booked = pieces.get_column(f"booked_{status}").to_numpy()
        matched[f"matched_{status}"] = np.where(activated, rng.binomial(booked, match_probability[status]), 0)
    frame = pieces.with_columns(pl.Series(name, values, dtype=pl.Int64) for name, values in matched.items())
    return frame.with_columns(
        fingerprints_checked=pl.when(pl.col("activated")).then(pl.col("bookings")).otherwise(0),
        ident_matches=pl.sum_horizontal(f"matched_{status}" for status in STATUSES),
    )
