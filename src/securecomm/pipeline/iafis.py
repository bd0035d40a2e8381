"""Stage 2 — IAFIS: the criminal history the FBI returns for a person's prints.

Truth and knowledge are kept apart: every person has true prior convictions; each is in
the FBI record only with the record's completeness. ICE and the jail decide on what the
record shows.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from securecomm import schema
from securecomm.parameters import Parameters
from securecomm.pipeline.bookings import draw_offenses

NONCITIZEN_CODES = 3  # statuses 0..2 are noncitizens (parameters.STATUSES order)


def draw_criminal_histories(rng: np.random.Generator, status_codes: np.ndarray, parameters: Parameters) -> pl.DataFrame:
    """Prior convictions, long: row (the record), category, level, felony_class, years_ago, years_since_release, known."""
    any_probability = parameters.value("prior_conviction_probability")
    noncitizen = status_codes < NONCITIZEN_CODES
    probability = np.where(noncitizen, any_probability["noncitizen"], any_probability["citizen"])
    has_record = rng.random(status_codes.size) < probability
    per_record = has_record * (1 + rng.poisson(parameters.value("extra_prior_convictions_mean"), status_codes.size))
    convictions = draw_offenses(rng, per_record, parameters, "conviction_level_mix", "conviction_category_mix")
    count = convictions.height
    level_codes = convictions.get_column("level").to_physical().to_numpy()
    incarceration = parameters.value("incarceration_probability")
    sentence_mean = parameters.value("sentence_years_mean")
    incarcerated_probability = np.array([incarceration[level] for level in schema.LEVELS])[level_codes]
    sentence = rng.exponential(1.0, count) * np.array([sentence_mean[level] for level in schema.LEVELS])[level_codes]
    years_ago = np.round(rng.exponential(parameters.value("years_since_conviction_mean"), count), 1)
    served = np.minimum(np.round(sentence, 1), years_ago)
    incarcerated = rng.random(count) < incarcerated_probability
    known = rng.random(count) < parameters.value("fbi_record_completeness")
    return convictions.with_columns(
        years_ago=pl.Series(years_ago),
        years_since_release=pl.Series(np.where(incarcerated, years_ago - served, np.nan), nan_to_null=True),
        known=pl.Series(known),
    )


def draw_aggravated_felony(
    rng: np.random.Generator, records: int, convictions: pl.DataFrame, parameters: Parameters
) -> np.ndarray:
    """Whether the known record includes an aggravated felony (only people with a known felony can)."""
    known_felony = convictions.filter(pl.col("known") & (pl.col("level") == "felony")).get_column("row").to_numpy()
    has_felony = np.zeros(records, dtype=bool)
    has_felony[known_felony] = True
    return has_felony & (rng.random(records) < parameters.value("aggravated_felony_share"))
