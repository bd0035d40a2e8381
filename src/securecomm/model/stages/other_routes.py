"""The other ICE routes into jails — the Criminal Alien Program's jail screening and
287(g) — which issued detainers before and after Secure Communities. They form a
separate channel, so that totals can be held against all detainers issued (NPR) and
Secure Communities figures against the Secure Communities channel alone."""

from __future__ import annotations

import numpy as np
import polars as pl

from securecomm.model.parameters import NONCITIZEN_STATUSES, Parameters


def draw_other_route_detainers(pieces: pl.DataFrame, parameters: Parameters, rng: np.random.Generator) -> pl.DataFrame:
    """Add `other_route_<status>`: detainers reaching the jail by other routes, per segment.

    In an activated county only noncitizens whom IDENT did not match can be reached this
    way (a match already put them in the Secure Communities channel).
    """
    name = "other_route_detainers_per_noncitizen_booking"
    starts = pieces.get_column("segment_start").to_numpy()
    activated = pieces.get_column("activated").to_numpy()
    rate = np.where(
        activated, parameters.by_day(name, starts, "activated"), parameters.by_day(name, starts, "not_activated")
    )
    drawn = {}
    for status in NONCITIZEN_STATUSES:
        reachable = pieces.get_column(f"booked_{status}").to_numpy() - pieces.get_column(f"matched_{status}").to_numpy()
        drawn[f"other_route_{status}"] = rng.binomial(reachable, np.clip(rate, 0, 1))
    return pieces.with_columns(pl.Series(name, values, dtype=pl.Int64) for name, values in drawn.items())
