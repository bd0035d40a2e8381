"""The other ICE routes into jails — the Criminal Alien Program's jail screening and
287(g) — which issued detainers before and after Secure Communities. They form a
separate channel, so that totals can be held against all detainers issued (NPR) and
Secure Communities figures against the Secure Communities channel alone."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl

from securecomm.core.schema import NONCITIZEN_STATUSES
from securecomm.model.parameters import Parameters
from securecomm.model.stages.state import State, Streams, segment_keys

RATE = "other_route_detainers_per_noncitizen_booking"


def detainer_probability(days: np.ndarray, activated: np.ndarray, parameters: Parameters) -> np.ndarray:
    """The chance that a noncitizen booked on a day (and not matched in IDENT) gets a detainer by another route."""
    rate = np.where(
        activated, parameters.by_day(RATE, days, "activated"), parameters.by_day(RATE, days, "not_activated")
    )
    return np.clip(rate, 0, 1)


def draw_detainers(state: State, parameters: Parameters, rng: Streams) -> State:
    """The stage: add `other_route_<status>`, the detainers reaching the jail by other routes, per segment.

    In an activated county only noncitizens whom IDENT did not match can be reached this
    way (a match already put them in the Secure Communities channel).
    """
    segments, routes_rng, keys = state.segments, rng["other_routes"], segment_keys(state.segments)
    probability = detainer_probability(
        segments.get_column("segment_start").to_numpy(), segments.get_column("activated").to_numpy(), parameters
    )
    drawn = {}
    for status in NONCITIZEN_STATUSES:
        booked = segments.get_column(f"booked_{status}").to_numpy()
        reachable = booked - segments.get_column(f"matched_{status}").to_numpy()
        drawn[f"other_route_{status}"] = routes_rng.binomial(keys, reachable, probability)
    segments = segments.with_columns(pl.Series(name, values, dtype=pl.Int64) for name, values in drawn.items())
    return replace(state, segments=segments)
