"""Stage 4 — LESC: ICE's Law Enforcement Support Center determines the status of each
person IDENT matched, and the record's offense level (SC Levels 1–3, Morton June 2010)
is read off the FBI record through the rules engine (`us/ice/offense-levels-2010`).
Determinations can be wrong: a naturalized citizen's old record can make them look
removable."""

from __future__ import annotations

import numpy as np
import polars as pl

from securecomm.core.cases import CaseTables
from securecomm.law.compiler import compile_policy
from securecomm.law.loader import load_policy
from securecomm.model.parameters import STATUSES, Parameters

OFFENSE_LEVELS = "us/ice/offense-levels-2010"


LPR_CODE = STATUSES.index("lawful_permanent_resident")


def determine_removable(
    rng: np.random.Generator, status_codes: np.ndarray, known_convictions: np.ndarray, parameters: Parameters
) -> np.ndarray:
    """Whether LESC finds each matched person removable: by status, and for a lawful permanent
    resident by whether the record shows a conviction (the grounds of deportability are crimes)."""
    probability = parameters.value("lesc_removable_probability")
    lpr = probability["lawful_permanent_resident"]
    by_code = np.array([0.0 if status == "lawful_permanent_resident" else probability[status] for status in STATUSES])
    chance = np.where(
        status_codes == LPR_CODE,
        np.where(known_convictions > 0, lpr["with_known_conviction"], lpr["without_known_conviction"]),
        by_code[status_codes],
    )
    return rng.random(status_codes.size) < chance


def classify(policy_id: str, tables: CaseTables) -> pl.Series:
    """The label a classification policy gives each case (e.g. level_1 … non_criminal)."""
    return compile_policy(load_policy(policy_id)).decisions(tables).get_column("decision")
