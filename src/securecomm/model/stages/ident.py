"""Stage 3 — IDENT: in an activated county the prints sent to IAFIS at booking are checked
against DHS's biometric records; a match opens a record for ICE. Before activation, nothing
is checked. Submissions and matches are binomial thinning of each status's bookings."""

from __future__ import annotations

import numpy as np
import polars as pl

from securecomm.model.parameters import STATUSES, Parameters


def draw_matches(pieces: pl.DataFrame, parameters: Parameters, rng: np.random.Generator) -> pl.DataFrame:
    """Add `fingerprints_checked`, `matched_<status>` and `ident_matches` to every segment."""
    match_probability = parameters.value("ident_record_probability")
    submitted_share = parameters.value("fingerprint_submission_share")
    activated = pieces.get_column("activated").to_numpy()
    checked = np.zeros(pieces.height, dtype=np.int64)
    matched = {}
    for status in STATUSES:
        submitted = np.where(
            activated, rng.binomial(pieces.get_column(f"booked_{status}").to_numpy(), submitted_share), 0
        )
        checked += submitted
        matched[f"matched_{status}"] = rng.binomial(submitted, match_probability[status])
    frame = pieces.with_columns(pl.Series(name, values, dtype=pl.Int64) for name, values in matched.items())
    return frame.with_columns(
        fingerprints_checked=pl.Series(checked),
        ident_matches=pl.sum_horizontal(f"matched_{status}" for status in STATUSES),
    )
