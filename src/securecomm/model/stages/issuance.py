"""Stage 5 — issuance: the ICE field office decides whether to send a detainer.

Each era's federal criteria are a classification in the rules engine — SC levels until
the Dec 21, 2012 detainer guidance, the guidance's criteria until the PEP priorities of
Nov 20, 2014 (effective Jan 5, 2015) — and the parameters give the chance of a detainer
for each label of the era, times the factor of the county's field office (its area of
responsibility), the county's own factor (`county_factor`) and, in a newly activated county's first
months, ICE's ramp-up there (`activation_ramp`). Detainers by other routes are already drawn: the
county's factor (at most 1) is the chance that one is lodged there at all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import replace
from functools import cache
from typing import Any

import numpy as np
import polars as pl

from securecomm.core import schema
from securecomm.core.cases import CaseTables
from securecomm.core.places import counties
from securecomm.core.schema import Channel
from securecomm.core.units import DAYS_PER_YEAR
from securecomm.model.parameters import Parameters
from securecomm.model.stages.codes import as_enum, draw_codes
from securecomm.model.stages.lesc import OFFENSE_LEVELS, classify
from securecomm.model.stages.state import CaseSubsets, OffProgram, State, Streams, drawn_before

ERAS = "issuance_eras"
FIELD_OFFICE_FACTOR = "field_office_detainer_factor"
COUNTY_FACTOR = "county_detainer_factor"
RAMP_START = "activation_ramp_start_share"
RAMP_MONTHS = "activation_ramp_months"


def _in_era(days: np.ndarray, start: dt.date | None, end: dt.date | None) -> np.ndarray:
    # Days as integers (days since 1970, which is what datetime64[D] holds): NumPy compares them
    # several times faster than dates, which it checks for NaT one by one.
    day_numbers = days.astype("datetime64[D]", copy=False).view(np.int64)
    mask = np.ones(days.size, dtype=bool)
    if start is not None:
        mask &= day_numbers >= np.datetime64(start, "D").astype(np.int64)
    if end is not None:
        mask &= day_numbers < np.datetime64(end, "D").astype(np.int64)
    return mask


def detainer_probability(booking_days: np.ndarray, labels: pl.Series, parameters: Parameters) -> np.ndarray:
    """ICE's chance of issuing a detainer to a person found removable, given the label (an Enum; null:
    none, no detainer) that the criteria of the era of the booking day gave the person."""
    categories = labels.dtype.categories.to_list()
    codes = labels.to_physical().fill_null(len(categories)).to_numpy()
    probability = np.zeros(booking_days.size)
    for start, end, era in parameters[ERAS].periods():
        mask = _in_era(booking_days, start, end)
        by_code = np.array([era["probability"].get(label, 0.0) for label in categories] + [0.0])
        probability[mask] = by_code[codes[mask]]
    return probability


@cache
def _office_of_county() -> dict[str, str]:
    return dict(counties().select("fips", "aor").iter_rows())


def field_offices_of(fips: pl.Series) -> pl.Series:
    """The ICE field office (area of responsibility) of each record's county: an Enum of the offices
    where the counties are an Enum, else text."""
    offices = _office_of_county()
    dtype = pl.Enum(sorted(set(offices.values()))) if isinstance(fips.dtype, pl.Enum) else pl.String
    return by_label(fips, offices, dtype)


def field_office_factor(offices: pl.Series, parameters: Parameters) -> np.ndarray:
    """The field office's factor on the chance of a detainer, for each record's field office."""
    return by_label(offices, parameters.value(FIELD_OFFICE_FACTOR), pl.Float64).to_numpy()


def county_factor(fips: pl.Series, parameters: Parameters) -> np.ndarray:
    """The county's factor on detainers relative to its field office, for each record's county (1 for a
    county the parameter does not list)."""
    factors = parameters.value(COUNTY_FACTOR)
    codes = fips.dtype.categories.to_list() if isinstance(fips.dtype, pl.Enum) else fips.unique().to_list()
    return by_label(fips, {code: factors.get(code, 1.0) for code in codes}, pl.Float64).to_numpy()


def by_label(labels: pl.Series, values: Mapping[str, Any], dtype: pl.DataType) -> pl.Series:
    """The value of each record's label (a county, a field office): an Enum column is looked up once per
    category, not record by record."""
    if isinstance(labels.dtype, pl.Enum):
        return pl.Series([values[name] for name in labels.dtype.categories], dtype=dtype).gather(labels.to_physical())
    return labels.cast(pl.String).replace_strict(values, return_dtype=dtype)


def activation_days_of(fips: pl.Series, off_program: tuple[OffProgram, ...] = ()) -> np.ndarray:
    """The day the program started in each record's county (datetime64[D]; NaT: never activated): the
    activation table's date, or the later date a participation reform delays it to."""
    days = by_label(fips, _activation_of_county(), pl.Date).to_numpy().astype("datetime64[D]")
    for window in off_program:
        if window.start is None and window.end is not None:  # a delayed activation
            delayed = fips.cast(pl.String).is_in(list(window.counties)).to_numpy()
            days[delayed] = np.maximum(days[delayed], np.datetime64(window.end, "D"))
    return days


@cache
def _activation_of_county() -> dict[str, dt.date | None]:
    return dict(counties().select("fips", "sc_activation_date").iter_rows())


def months_since_activation(booking_days: np.ndarray, activation_days: np.ndarray) -> np.ndarray:
    """Whole mean calendar months from the county's activation to each booking day (0 in its first
    month; NaN where the county was never activated)."""
    elapsed = (booking_days.astype("datetime64[D]") - activation_days).astype(np.float64)  # NaT -> NaN
    return np.floor(np.maximum(elapsed, 0) / (DAYS_PER_YEAR / 12))


def activation_ramp(months: np.ndarray, parameters: Parameters) -> np.ndarray:
    """ICE's capacity in a newly activated county, a factor on the chance of a detainer: the start share
    in the county's first month, rising linearly to 1 at `activation_ramp_months` whole months (1 where
    the months are NaN)."""
    start, length = parameters.value(RAMP_START), parameters.value(RAMP_MONTHS)
    months = np.nan_to_num(np.asarray(months, dtype=np.float64), nan=np.inf)
    progress = np.ones(months.size) if length <= 0 else np.clip(months / length, 0.0, 1.0)
    return start + (1.0 - start) * progress


def era_labels(
    cases: CaseTables,
    booking_days: np.ndarray,
    eligible: np.ndarray,
    parameters: Parameters,
    known: dict[str, pl.Series],
) -> pl.Series:
    """The label the criteria of the era of the booking day give each eligible record (null elsewhere).

    `known` holds classifications already made of every record (the offense levels, computed by
    LESC), so that an era using them does not classify again.
    """
    vocabulary: dict[str, int] = {}
    labels = np.full(booking_days.size, -1, dtype=np.int64)
    for start, end, era in parameters[ERAS].periods():
        mask = eligible & _in_era(booking_days, start, end)
        if not mask.any():
            continue
        if era["classification"] in known:
            labelled = known[era["classification"]].filter(pl.Series(mask))
        else:
            labelled = classify(era["classification"], cases.subset(mask))
        to_global = np.array([vocabulary.setdefault(label, len(vocabulary)) for label in labelled.dtype.categories])
        labels[mask] = to_global[labelled.to_physical().to_numpy()]
    return as_enum(labels, list(vocabulary)).alias("issuance_label")


def issue(state: State, parameters: Parameters, rng: Streams) -> State:
    """The stage: the label the era's criteria give each person found removable (`issuance_label`) and
    whether ICE issues a detainer (`detainer_issued`); a detainer by another route stays with the chance
    of the county's factor (1 for a county the parameter does not list)."""
    booking_days = state.column("booking_at").astype("datetime64[D]")
    secure_communities = state.column("channel") == Channel.SECURE_COMMUNITIES
    eligible = secure_communities & state.column("removable")
    known = {OFFENSE_LEVELS: state.records.get_column("ice_level")}
    labels = era_labels(drawn_before(state.cases, "the cases"), booking_days, eligible, parameters, known)
    draw = rng["issuance"].random(state.record_keys())
    offices = field_offices_of(state.records.get_column("fips"))
    probability = detainer_probability(booking_days, labels, parameters) * field_office_factor(offices, parameters)
    county = county_factor(state.records.get_column("fips"), parameters)
    probability *= county
    activation = activation_days_of(state.records.get_column("fips"), state.off_program)
    probability *= activation_ramp(months_since_activation(booking_days, activation), parameters)
    issued = (eligible & (draw < np.minimum(probability, 1.0))) | (~secure_communities & (draw < county))
    records = state.records.with_columns(issuance_label=labels, detainer_issued=pl.Series(issued))
    detainer_cases = CaseSubsets(drawn_before(state.cases, "the cases").subset(issued))
    return replace(state, records=records, detainer_cases=detainer_cases)


def draw_forms(state: State, parameters: Parameters, rng: Streams) -> State:
    """The stage: the detainer form ICE would use on the booking date (`detainer_form`)."""
    booking_days = state.column("booking_at").astype("datetime64[D]")
    codes = np.zeros(booking_days.size, dtype=np.int64)
    keys = state.record_keys()
    for start, end, era in parameters["detainer_form_eras"].periods():
        mask = _in_era(booking_days, start, end)
        codes[mask] = draw_codes(era, schema.DETAINER_FORMS, keys.subset(mask), rng["forms"])
    return replace(state, records=state.records.with_columns(detainer_form=as_enum(codes, schema.DETAINER_FORMS)))
