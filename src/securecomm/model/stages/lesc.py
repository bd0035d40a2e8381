"""Stage 4 — LESC: ICE's Law Enforcement Support Center determines the status of each
person IDENT matched, and the record's offense level (SC Levels 1–3, Morton June 2010)
is read off the FBI record through the rules engine (`us/ice/offense-levels-2010`).
Determinations can be wrong: a naturalized citizen's old record can make them look
removable."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl

from securecomm.core.cases import CaseTables
from securecomm.core.schema import Channel, Status
from securecomm.law.compiler import compile_policy
from securecomm.law.loader import load_policy
from securecomm.model.parameters import Parameters
from securecomm.model.stages.state import State, Streams, drawn_before

OFFENSE_LEVELS = "us/ice/offense-levels-2010"
LEVEL_1 = "level_1"  # the label OFFENSE_LEVELS gives the most serious records


def removable_chance(status_codes: np.ndarray, known_convictions: np.ndarray, parameters: Parameters) -> np.ndarray:
    """The chance that LESC finds a matched person removable: by status, and for a lawful permanent
    resident by whether the record shows a conviction (the grounds of deportability are crimes)."""
    probability = parameters.value("lesc_removable_probability")
    lpr = probability[Status.LAWFUL_PERMANENT_RESIDENT.label]
    by_code = np.array(
        [0.0 if status == Status.LAWFUL_PERMANENT_RESIDENT else probability[status.label] for status in Status]
    )
    return np.where(
        status_codes == Status.LAWFUL_PERMANENT_RESIDENT,
        np.where(known_convictions > 0, lpr["with_known_conviction"], lpr["without_known_conviction"]),
        by_code[status_codes],
    )


def classify(policy_id: str, tables: CaseTables) -> pl.Series:
    """The label a classification policy gives each case (e.g. level_1 … non_criminal)."""
    return compile_policy(load_policy(policy_id)).decisions(tables).get_column("decision")


def determine(state: State, parameters: Parameters, rng: Streams) -> State:
    """The stage: whether LESC finds each person removable (`removable`; a detainer by another route
    comes from an ICE officer who already has) and the offense level of the FBI record (`ice_level`)."""
    status_codes = state.column("status")
    chance = removable_chance(status_codes, state.column("known_convictions"), parameters)
    found_removable = rng["lesc"].random(state.record_keys()) < chance
    secure_communities = state.column("channel") == Channel.SECURE_COMMUNITIES
    ice_level = classify(OFFENSE_LEVELS, drawn_before(state.cases, "the cases"))
    records = state.records.with_columns(
        removable=pl.Series(np.where(secure_communities, found_removable, True)),
        ice_level=ice_level,
    )
    return replace(state, records=records)
