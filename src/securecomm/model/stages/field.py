"""Stage F — the street: police encounters with an NCIC hit on an ICE administrative
warrant, and arrests on them where the local field policy allows (New Haven's General
Order 06-2 forbids them). Counted per county-segment: nothing here branches further."""

from __future__ import annotations

from dataclasses import replace
from functools import cache

import numpy as np
import polars as pl

from securecomm.core.cases import tables_from_records
from securecomm.core.units import DAYS_PER_YEAR
from securecomm.law.compiler import compile_policy
from securecomm.law.loader import load_policy
from securecomm.model.parameters import Parameters
from securecomm.model.stages.state import State, Streams, drawn_before, segment_keys

ICE_WARRANT_HIT = {"case_id": "hit", "investigating_criminal_activity": False, "ncic_hit": "ice_administrative_warrant"}


@cache
def allows_arrest_on_ice_warrant(policy_id: str) -> bool:
    """A field policy's answer, through the rules engine, for an ICE administrative warrant hit."""
    result = compile_policy(load_policy(policy_id)).evaluate(tables_from_records([ICE_WARRANT_HIT], "field"))
    return result.get_column("arrest_on_hit")[0] == "allowed"


def draw_encounters(state: State, parameters: Parameters, rng: Streams) -> State:
    """The stage: add `ice_warrant_hits` and `potential_field_arrests` (arrests if every policy allowed them)."""
    segments, field_rng, keys = state.segments, rng["field"], segment_keys(state.segments)
    rate = parameters.value("ice_warrant_hits_per_100k_residents")
    population, days = segments.get_column("population").to_numpy(), segments.get_column("days").to_numpy()
    expected = population * rate / 1e5 * days / DAYS_PER_YEAR
    hits = field_rng.poisson(keys, np.nan_to_num(expected))
    potential = field_rng.binomial(keys, hits, parameters.value("field_arrest_probability"))
    segments = segments.with_columns(ice_warrant_hits=pl.Series(hits), potential_field_arrests=pl.Series(potential))
    return replace(state, segments=segments)


def arrest(state: State, parameters: Parameters, rng: Streams) -> State:
    """The stage: add `field_arrests`, the arrests on ICE warrant hits under the field policies in force
    at each segment's start."""
    segments = state.segments
    allowed = np.ones(segments.height, dtype=bool)
    fips = segments.get_column("fips").to_numpy()
    starts = segments.get_column("segment_start").to_numpy().astype("datetime64[D]")
    for entry in drawn_before(state.field_timeline, "the field policies").entries:
        if allows_arrest_on_ice_warrant(entry.policy_id):
            continue
        in_force = np.isin(fips, list(entry.counties)) & (starts >= np.datetime64(entry.start, "D"))
        if entry.end is not None:
            in_force &= starts < np.datetime64(entry.end, "D")
        allowed &= ~in_force
    arrests = np.where(allowed, segments.get_column("potential_field_arrests").to_numpy(), 0)
    return replace(state, segments=segments.with_columns(field_arrests=pl.Series(arrests)))
