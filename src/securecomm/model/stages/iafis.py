"""Stage 2 — IAFIS: the criminal history the FBI returns for a person's prints.

Truth and knowledge are kept apart: every person has true prior convictions; each is in
the FBI record only with the record's completeness. ICE and the jail decide on what the
record shows.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl

from securecomm.core import schema
from securecomm.core.schema import Channel, Status
from securecomm.model.parameters import Parameters
from securecomm.model.stages.bookings import draw_offenses
from securecomm.model.stages.ident import unauthorized_match_probability
from securecomm.model.stages.state import PlaceKeys, PlaceStream, State, Streams

RECORD_RATIO = "ident_record_ratio_prior_conviction"


def ident_match_share_with_conviction(match_probability: float, parameters: Parameters) -> float:
    """Among unauthorized people matched in IDENT, the share with a prior conviction.

    The match probability p is the mean over the booked; people with a conviction (a share
    q of the booked) match `ident_record_ratio_prior_conviction` times as often as the
    others, capped at 1, with the others' probability set so that the mean stays p.
    """
    share = parameters.value("prior_conviction_probability")["noncitizen"]
    if match_probability <= 0:
        return share
    ratio = parameters.value(RECORD_RATIO)
    with_conviction = min(1.0, match_probability * ratio / (share * ratio + 1 - share))
    return share * with_conviction / match_probability


def prior_conviction_chance(
    status_codes: np.ndarray, matched_in_ident: np.ndarray, parameters: Parameters
) -> np.ndarray:
    """Each record's chance of having at least one prior conviction.

    Noncitizens and citizens differ; unauthorized people found by an IDENT match are more
    likely to have a record, because a conviction is what most often put them in IDENT.
    """
    any_probability = parameters.value("prior_conviction_probability")
    noncitizen = status_codes < Status.NATURALIZED
    chance = np.where(noncitizen, any_probability["noncitizen"], any_probability["citizen"])
    enriched = ident_match_share_with_conviction(unauthorized_match_probability(parameters), parameters)
    return np.where(matched_in_ident & (status_codes == Status.UNAUTHORIZED), enriched, chance)


def draw_histories(state: State, parameters: Parameters, rng: Streams) -> State:
    """The stage: every record's true prior convictions (`convictions`, `known` where the FBI record
    shows them), and on the record `known_convictions`, `true_convictions` and `aggravated_felony`."""
    count, keys = state.records.height, state.record_keys()
    status_codes = state.column("status")
    matched_in_ident = state.column("channel") == Channel.SECURE_COMMUNITIES
    prior_conviction = prior_conviction_chance(status_codes, matched_in_ident, parameters)
    convictions = draw_criminal_histories(prior_conviction, keys, parameters, rng["histories"])
    rows = convictions.get_column("row").to_numpy()
    known = convictions.get_column("known").to_numpy()
    felony = convictions.get_column("level").to_physical().to_numpy() == schema.LEVELS.index("felony")
    aggravated = draw_aggravated_felony(keys, rows[known & felony], parameters, rng["aggravated"])
    records = state.records.with_columns(
        known_convictions=pl.Series(np.bincount(rows[known], minlength=count).astype(np.int32)),
        true_convictions=pl.Series(np.bincount(rows, minlength=count).astype(np.int32)),
        aggravated_felony=pl.Series(aggravated),
    )
    return replace(state, records=records, convictions=convictions)


def draw_criminal_histories(
    prior_conviction: np.ndarray, record_keys: PlaceKeys, parameters: Parameters, rng: PlaceStream
) -> pl.DataFrame:
    """Prior convictions, long: row (the record), category, level, felony_class, years_ago, years_since_release, known.

    `prior_conviction` is each record's chance of having any (`prior_conviction_chance`).
    """
    has_record = np.flatnonzero(rng.random(record_keys) < prior_conviction)
    per_record = np.zeros(prior_conviction.size, dtype=np.int64)
    per_record[has_record] = 1 + rng.poisson(
        record_keys.subset(has_record), parameters.value("extra_prior_convictions_mean")
    )
    convictions = draw_offenses(
        per_record, record_keys, "conviction_level_mix", "conviction_category_mix", parameters, rng
    )
    keys = record_keys.repeat(per_record)
    level_codes = convictions.get_column("level").to_physical().to_numpy()
    incarceration = parameters.value("incarceration_probability")
    sentence_mean = parameters.value("sentence_years_mean")
    years_ago = rng.exponential(keys, parameters.value("years_since_conviction_mean"))
    np.round(years_ago, 1, out=years_ago)
    incarcerated = np.flatnonzero(
        rng.random(keys) < np.array([incarceration[level] for level in schema.LEVELS])[level_codes]
    )
    # Only a sentence served has a release: the years since are those since the conviction less the sentence.
    sentence = (
        rng.exponential(keys.subset(incarcerated), 1.0)
        * np.array([sentence_mean[level] for level in schema.LEVELS])[level_codes[incarcerated]]
    )
    years_since_release = np.full(keys.size, np.nan)
    years_since_release[incarcerated] = years_ago[incarcerated] - np.minimum(
        np.round(sentence, 1), years_ago[incarcerated]
    )
    known = rng.random(keys) < parameters.value("fbi_record_completeness")
    return convictions.with_columns(
        years_ago=pl.Series(years_ago),
        years_since_release=pl.Series(years_since_release, nan_to_null=True),
        known=pl.Series(known),
    )


def draw_aggravated_felony(
    record_keys: PlaceKeys, known_felony_rows: np.ndarray, parameters: Parameters, rng: PlaceStream
) -> np.ndarray:
    """Whether the known record includes an aggravated felony (only people with a known felony can)."""
    has_felony = np.zeros(record_keys.size, dtype=bool)
    has_felony[known_felony_rows] = True
    return has_felony & (rng.random(record_keys) < parameters.value("aggravated_felony_share"))
