"""Stage 5 — issuance: the ICE field office decides whether to send a detainer.

Each era's federal criteria are a classification in the rules engine — SC levels until
the Dec 21, 2012 detainer guidance, the guidance's criteria until the PEP priorities of
Nov 20, 2014 (effective Jan 5, 2015) — and the parameters give the chance of a detainer
for each label of the era. Detainers by other routes are already issued.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from securecomm.core import schema
from securecomm.core.cases import CaseTables
from securecomm.model.parameters import Parameters
from securecomm.model.stages.codes import as_enum, draw_codes
from securecomm.model.stages.lesc import classify


def era_bounds(parameters: Parameters, name: str) -> list[tuple[dt.date | None, dt.date | None, dict]]:
    """(start, end exclusive, value) for each dated value of an era parameter."""
    dated = parameters[name].dated_values
    return [
        (start, dated[index + 1][0] if index + 1 < len(dated) else None, value)
        for index, (start, value) in enumerate(dated)
    ]


def _in_era(days: np.ndarray, start: dt.date | None, end: dt.date | None) -> np.ndarray:
    mask = np.ones(days.size, dtype=bool)
    if start is not None:
        mask &= days >= np.datetime64(start, "D")
    if end is not None:
        mask &= days < np.datetime64(end, "D")
    return mask


def issue_detainers(
    tables: CaseTables,
    booking_days: np.ndarray,
    eligible: np.ndarray,
    issuance_draw: np.ndarray,
    parameters: Parameters,
    known_labels: dict[str, pl.Series],
) -> tuple[np.ndarray, pl.Series]:
    """Which eligible records get a detainer, and the label the era's criteria gave them.

    `known_labels` holds classifications already made of every record (the offense
    levels, computed by LESC), so that an era using them does not classify again.
    """
    issued = np.zeros(booking_days.size, dtype=bool)
    vocabulary: dict[str, int] = {}
    labels = np.full(booking_days.size, -1, dtype=np.int64)
    for start, end, era in era_bounds(parameters, "issuance_eras"):
        mask = eligible & _in_era(booking_days, start, end)
        if not mask.any():
            continue
        if era["classification"] in known_labels:
            era_labels = known_labels[era["classification"]].filter(pl.Series(mask))
        else:
            era_labels = classify(era["classification"], tables.subset(mask))
        probability = era_labels.replace_strict(era["probability"], default=0.0, return_dtype=pl.Float64).to_numpy()
        issued[mask] = issuance_draw[mask] < probability
        era_vocabulary = era_labels.dtype.categories.to_list()
        to_global = np.array([vocabulary.setdefault(label, len(vocabulary)) for label in era_vocabulary])
        labels[mask] = to_global[era_labels.to_physical().to_numpy()]
    return issued, as_enum(labels, list(vocabulary)).cast(pl.String).alias("issuance_label")


def draw_forms(rng: np.random.Generator, booking_days: np.ndarray, parameters: Parameters) -> pl.Series:
    """The detainer form ICE would use on the booking date."""
    codes = np.zeros(booking_days.size, dtype=np.int64)
    for start, end, era in era_bounds(parameters, "detainer_form_eras"):
        mask = _in_era(booking_days, start, end)
        codes[mask] = draw_codes(rng, era["forms"], schema.DETAINER_FORMS, int(mask.sum()))
    return as_enum(codes, schema.DETAINER_FORMS).alias("detainer_form")
