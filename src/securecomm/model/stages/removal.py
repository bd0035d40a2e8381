"""Stage 8 — ICE custody and removal: a person transferred to ICE is removed, granted
relief or released (Level 1 records, detained and barred from most relief, are nearly
always removed); citizens wrongly transferred are released. Removal follows transfer
by a lognormal lag. ICE counts a removal at the offense level of the record at removal: a
current charge that ended in a conviction before removal counts."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl

from securecomm.core.schema import STATUSES
from securecomm.core.units import SECONDS_PER_DAY
from securecomm.model.parameters import Parameters
from securecomm.model.stages import lesc
from securecomm.model.stages.state import PlaceKeys, PlaceStream, State, Streams

BY_STATUS = "removal_probability"
LEVEL_1_PROBABILITY = "level_1_removal_probability"
CONVICTED_BEFORE_REMOVAL = "current_charge_conviction_before_removal"
NON_CRIMINAL = "non_criminal"
# The level a first conviction on the current charge gives a record without one (the SC offense
# levels, us/ice/offense-levels-2010: any felony is Level 2, a misdemeanor Level 3; an infraction is
# no crime). An aggravated felony (Level 1) cannot be told from the charge's category: Level 2.
FIRST_CONVICTION_LEVEL = {"felony": "level_2", "misdemeanor": "level_3"}


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
    keys: PlaceKeys,
    parameters: Parameters,
    rng: PlaceStream,
) -> tuple[np.ndarray, np.ndarray]:
    """(removed, removal_at) for every record; NaT where not removed."""
    removal_draw, lag_draw = rng.random(keys), rng.standard_normal(keys)
    probability = removal_chance(status_codes, level_1, parameters)
    removed = transferred & (removal_draw < probability)
    lag = parameters.value("removal_lag_days")
    lag_days = np.minimum(lag["median"] * np.exp(lag["sigma"] * lag_draw), lag["max"])
    removal_at = transfer_at + (lag_days * SECONDS_PER_DAY).astype("timedelta64[s]")
    return removed, np.where(removed, removal_at, np.datetime64("NaT"))


def level_at_removal(
    ice_level: pl.Series,
    charge_level: pl.Series,
    removed: np.ndarray,
    keys: PlaceKeys,
    parameters: Parameters,
    rng: PlaceStream,
) -> pl.Series:
    """ICE's offense level of each record at removal, the one its removal counts use: the level at the
    IDENT match, except that a removed person without a conviction whose current charge (a felony or a
    misdemeanor) ended in a conviction before removal has that first conviction's level."""
    levels = ice_level.cast(pl.String)
    draw = rng.random(keys)
    # Only the removed without a conviction can change level: their charges alone are looked up, and the
    # labels stay a column (a million labels as Python strings would cost a second).
    candidates = np.flatnonzero(removed & (levels == NON_CRIMINAL).to_numpy())
    first = charge_level.gather(candidates).cast(pl.String).replace_strict(FIRST_CONVICTION_LEVEL, default=None)
    convicted = first.is_not_null().to_numpy() & (draw[candidates] < parameters.value(CONVICTED_BEFORE_REMOVAL))
    return levels.clone().scatter(candidates[convicted], first.filter(pl.Series(convicted))).alias("removal_level")


def draw_removals(state: State, parameters: Parameters, rng: Streams) -> State:
    """The stage: who among those transferred to ICE is removed, when (`removed`, `removal_at`), and
    the offense level ICE counts the removal at (`removal_level`)."""
    ice_level, keys = state.records.get_column("ice_level"), state.record_keys()
    removed, removal_at = remove(
        state.column("status"),
        (ice_level == lesc.LEVEL_1).to_numpy(),
        state.column("transferred"),
        state.column("transfer_at"),
        keys,
        parameters,
        rng["removal"],
    )
    level = level_at_removal(
        ice_level, state.records.get_column("most_serious_charge_level"), removed, keys, parameters, rng["removal"]
    )
    records = state.records.with_columns(
        removed=removed, removal_at=pl.Series(removal_at, dtype=pl.Datetime("us")), removal_level=level
    )
    return replace(state, records=records)
