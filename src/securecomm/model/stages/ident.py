"""Stage 3 — IDENT: in an activated county the prints sent to IAFIS at booking are checked
against DHS's biometric records; a match opens a record for ICE. Before activation, nothing
is checked. Submissions and matches are binomial thinning of each status's bookings; the chance
of a match differs by ICE field office (where people met the immigration authorities before)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl

from securecomm.core.schema import STATUSES, Status
from securecomm.model.parameters import Parameters
from securecomm.model.stages import issuance
from securecomm.model.stages.state import State, Streams, segment_keys

SUBMISSION_SHARE = "fingerprint_submission_share"
RECORD_PROBABILITY = "ident_record_probability"
FIELD_OFFICE_FACTOR = "field_office_ident_factor"


def record_probability(status_codes: np.ndarray, parameters: Parameters) -> np.ndarray:
    """The chance that a person's submitted prints match a record in IDENT, by status."""
    by_status = parameters.value(RECORD_PROBABILITY)
    return np.array([by_status[status] for status in STATUSES])[status_codes]


def field_office_factor(offices: pl.Series, parameters: Parameters) -> np.ndarray:
    """The field office's factor on the chance of an IDENT match, for each row's field office."""
    return issuance.by_label(offices, parameters.value(FIELD_OFFICE_FACTOR), pl.Float64).to_numpy()


def match_probability(status_codes: np.ndarray, office_factor: np.ndarray, parameters: Parameters) -> np.ndarray:
    """The chance that submitted prints match: `record_probability` times the field office's factor (for
    everyone with an immigration history: not the native-born, whose matches are errors), at most 1."""
    factor = np.where(status_codes == Status.NATIVE, 1.0, office_factor)
    return np.minimum(record_probability(status_codes, parameters) * factor, 1.0)


def unauthorized_match_probability(parameters: Parameters) -> float:
    """`record_probability` of an unauthorized person."""
    return float(record_probability(np.array([Status.UNAUTHORIZED]), parameters)[0])


def submission_probability(parameters: Parameters) -> float:
    """The chance that a booking's prints are submitted (and so checked in an activated county)."""
    return float(parameters.value(SUBMISSION_SHARE))


def draw_matches(state: State, parameters: Parameters, rng: Streams) -> State:
    """The stage: add `fingerprints_checked`, `matched_<status>` and `ident_matches` to every segment."""
    segments, ident_rng, keys = state.segments, rng["ident"], segment_keys(state.segments)
    office_factor = field_office_factor(issuance.field_offices_of(segments.get_column("fips")), parameters)
    submitted_share = submission_probability(parameters)
    activated = segments.get_column("activated").to_numpy()
    checked = np.zeros(segments.height, dtype=np.int64)
    matched = {}
    for status in Status:
        booked = segments.get_column(f"booked_{status.label}").to_numpy()
        submitted = np.where(activated, ident_rng.binomial(keys, booked, submitted_share), 0)
        checked += submitted
        chance = match_probability(np.full(segments.height, status), office_factor, parameters)
        matched[f"matched_{status.label}"] = ident_rng.binomial(keys, submitted, chance)
    segments = segments.with_columns(pl.Series(name, values, dtype=pl.Int64) for name, values in matched.items())
    segments = segments.with_columns(
        fingerprints_checked=pl.Series(checked),
        ident_matches=pl.sum_horizontal(f"matched_{status}" for status in STATUSES),
    )
    return replace(state, segments=segments)
