"""Stage 8 — ICE custody and removal: a person transferred to ICE is removed, granted
relief or released (Level 1 records, detained and barred from most relief, are nearly
always removed); citizens wrongly transferred are released. Removal follows transfer
by a lognormal lag, months for a person removed after a hearing before an immigration judge, days for the
others (stipulated, reinstated or administrative removal, voluntary return). The chance of removal differs by ICE field office, apart for those with and
without a conviction on record (whom each office removes). ICE counts a removal at the offense level
of the record at removal (`removal_level`, which LESC reads: the FBI record with the current charge
added where it ended in a conviction before removal)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import polars as pl

from securecomm.core.schema import STATUSES
from securecomm.core.units import SECONDS_PER_DAY
from securecomm.model.parameters import Parameters
from securecomm.model.stages import issuance, lesc
from securecomm.model.stages.jail import datetime_column
from securecomm.model.stages.state import PlaceKeys, PlaceStream, State, Streams, drawn_before

BY_STATUS = "removal_probability"
LEVEL_1_PROBABILITY = "level_1_removal_probability"
LAG_DAYS = "removal_lag_days"
HEARING_SHARE = "immigration_hearing_share"
FIELD_OFFICE_CONVICTED = "field_office_removal_factor_convicted"
FIELD_OFFICE_NON_CRIMINAL = "field_office_removal_factor_non_criminal"


def field_office_factor(offices: pl.Series, non_criminal: np.ndarray, parameters: Parameters) -> np.ndarray:
    """The field office's factor on the chance of removal, for each record's field office and whether its
    record at the IDENT match shows no conviction (`non_criminal`)."""
    convicted = issuance.by_label(offices, parameters.value(FIELD_OFFICE_CONVICTED), pl.Float64).to_numpy()
    without = issuance.by_label(offices, parameters.value(FIELD_OFFICE_NON_CRIMINAL), pl.Float64).to_numpy()
    return np.where(non_criminal, without, convicted)


def removal_chance(
    status_codes: np.ndarray,
    level_1: np.ndarray,
    non_criminal: np.ndarray,
    offices: pl.Series,
    parameters: Parameters,
) -> np.ndarray:
    """Each transferred person's chance of removal: by status, or the Level 1 chance for a noncitizen
    whose known record is Level 1 (citizens are never removed), times the field office's factor for a
    record with or without a conviction (kept at most 1)."""
    by_status = parameters.value(BY_STATUS)
    probability = np.array([by_status[status] for status in STATUSES])[status_codes]
    probability = np.where(level_1 & (probability > 0), parameters.value(LEVEL_1_PROBABILITY), probability)
    return np.minimum(probability * field_office_factor(offices, non_criminal, parameters), 1.0)


@dataclass(frozen=True)
class RemovalDraws:
    """What decides each detainer case's removal whatever the policy: its chance of removal were it
    transferred to ICE, and its draws (the removal's, and the standard normal of its lag)."""

    chance: np.ndarray
    removal_draw: np.ndarray
    lag_draw: np.ndarray


def removal_draws(
    status_codes: np.ndarray,
    ice_level: pl.Series,
    fips: pl.Series,
    keys: PlaceKeys,
    parameters: Parameters,
    rng: PlaceStream,
) -> RemovalDraws:
    """Every record's chance of removal, from its status, ICE's offense level at the match (`ice_level`) and
    its county's field office, and its draws."""
    removal_draw, lag_draw = rng.random(keys), rng.standard_normal(keys)
    chance = removal_chance(
        status_codes,
        (ice_level == lesc.LEVEL_1).to_numpy(),
        (ice_level == lesc.NON_CRIMINAL).to_numpy(),
        issuance.field_offices_of(fips),
        parameters,
    )
    return RemovalDraws(chance, removal_draw, lag_draw)


def removals(
    transferred: np.ndarray, transfer_at: np.ndarray, draws: RemovalDraws, parameters: Parameters
) -> tuple[np.ndarray, np.ndarray]:
    """(removed, removal_at) for every record, from its draws (`removal_draws`); NaT where not removed."""
    removed = transferred & (draws.removal_draw < draws.chance)
    # Only the removed have a date of removal: their lags alone are made.
    gone = np.flatnonzero(removed)
    # Of the removed (draw < chance), draw / chance is uniform: below the hearing share, a hearing. No
    # draw of its own, so every other number of the run stays as it was.
    with_hearing = draws.removal_draw[gone] < draws.chance[gone] * parameters.value(HEARING_SHARE)
    lag_days = removal_lag_days(with_hearing, draws.lag_draw[gone], parameters)
    dates = transfer_at[gone] + (lag_days * SECONDS_PER_DAY).astype("timedelta64[s]")
    removal_at = np.full(transferred.size, np.datetime64("NaT"), dtype=dates.dtype)
    removal_at[gone] = dates
    return removed, removal_at


def removal_lag_days(with_hearing: np.ndarray, standard_normal: np.ndarray, parameters: Parameters) -> np.ndarray:
    """Days from ICE custody to removal: each record's lognormal, by whether it went before an immigration
    judge, from its standard normal draw (truncated at the lognormal's `max`)."""
    lag = parameters.value(LAG_DAYS)
    hearing, without = lag["with_hearing"], lag["without_hearing"]
    median = np.where(with_hearing, hearing["median"], without["median"])
    sigma = np.where(with_hearing, hearing["sigma"], without["sigma"])
    longest = np.where(with_hearing, hearing["max"], without["max"])
    return np.minimum(median * np.exp(sigma * standard_normal), longest)


def draw_removals(state: State, parameters: Parameters, rng: Streams) -> State:
    """The stage: who among those transferred to ICE is removed, and when (`removed`, `removal_at`); a
    removal counts at the level of the record at removal (`removal_level`, from LESC)."""

    def draw(_: np.ndarray) -> tuple[np.ndarray, ...]:
        draws = removal_draws(
            state.column("status"),
            state.records.get_column("ice_level"),
            state.records.get_column("fips"),
            state.record_keys(),
            parameters,
            rng["removal"],
        )
        return draws.chance, draws.removal_draw, draws.lag_draw

    # The same for every policy (every case's, from fresh streams of the seed; the chance reads no column a
    # policy makes): made once for the detainer cases, and kept for the next policy run on them.
    cases = drawn_before(state.detainer_cases, "the cases of the detainers issued")
    draws = RemovalDraws(*cases.filled("removal draws", np.arange(state.records.height), draw))
    removed, removal_at = removals(state.column("transferred"), state.column("transfer_at"), draws, parameters)
    records = state.records.with_columns(removed=removed, removal_at=datetime_column(removal_at))
    return replace(state, records=records)
