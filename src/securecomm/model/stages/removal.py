"""Stage 8 — ICE custody and removal: a person transferred to ICE is removed, granted
relief or released (Level 1 records, detained and barred from most relief, are nearly
always removed); citizens wrongly transferred are released. Removal follows transfer
by a lognormal lag."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl

from securecomm.core.schema import STATUSES
from securecomm.core.units import SECONDS_PER_DAY
from securecomm.model.parameters import Parameters
from securecomm.model.stages import lesc
from securecomm.model.stages.state import State, Streams

BY_STATUS = "removal_probability"
LEVEL_1_PROBABILITY = "level_1_removal_probability"


def removal_chance(status_codes: np.ndarray, level_1: np.ndarray, parameters: Parameters) -> np.ndarray:
    """Each transferred person's chance of removal: by status, or the Level 1 chance for a
    noncitizen whose known record is Level 1 (citizens are never removed)."""
    by_status = parameters.value(BY_STATUS)
    probability = np.array([by_status[status] for status in STATUSES])[status_codes]
    return np.where(level_1 & (probability > 0), parameters.value(LEVEL_1_PROBABILITY), probability)


def remove(
    status_codes: np.ndarray,
    level_1: np.ndarray,
    transferred: np.ndarray,
    transfer_at: np.ndarray,
    parameters: Parameters,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """(removed, removal_at) for every record; NaT where not removed."""
    removal_draw, lag_draw = rng.random(status_codes.size), rng.standard_normal(status_codes.size)
    probability = removal_chance(status_codes, level_1, parameters)
    removed = transferred & (removal_draw < probability)
    lag = parameters.value("removal_lag_days")
    lag_days = np.minimum(lag["median"] * np.exp(lag["sigma"] * lag_draw), lag["max"])
    removal_at = transfer_at + (lag_days * SECONDS_PER_DAY).astype("timedelta64[s]")
    return removed, np.where(removed, removal_at, np.datetime64("NaT"))


def draw_removals(state: State, parameters: Parameters, rng: Streams) -> State:
    """The stage: who among those transferred to ICE is removed, and when (`removed`, `removal_at`)."""
    removed, removal_at = remove(
        state.column("status"),
        (state.records.get_column("ice_level") == lesc.LEVEL_1).to_numpy(),
        state.column("transferred"),
        state.column("transfer_at"),
        parameters,
        rng["removal"],
    )
    records = state.records.with_columns(removed=removed, removal_at=pl.Series(removal_at, dtype=pl.Datetime("us")))
    return replace(state, records=records)
