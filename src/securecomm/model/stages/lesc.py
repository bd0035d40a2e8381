"""Stage 4 — LESC: ICE's Law Enforcement Support Center determines the status of each
person IDENT matched, and the record's offense level (SC Levels 1–3, Morton June 2010)
is read off the FBI record through the rules engine (`us/ice/offense-levels-2010`).
Determinations can be wrong: a naturalized citizen's old record can make them look
removable."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl

from securecomm.core import schema
from securecomm.core.cases import CaseTables
from securecomm.core.schema import Channel, Status
from securecomm.law.compiler import compile_policy
from securecomm.law.loader import load_policy
from securecomm.model.parameters import Parameters
from securecomm.model.stages.state import PlaceKeys, PlaceStream, State, Streams, drawn_before

OFFENSE_LEVELS = "us/ice/offense-levels-2010"
LEVEL_1 = "level_1"  # the label OFFENSE_LEVELS gives the most serious records
NON_CRIMINAL = "non_criminal"  # its label for a record without a conviction
CONVICTED_BEFORE_REMOVAL = "current_charge_conviction_before_removal"
# The share of felony convictions that are aggravated felonies (criminal_history.yaml), for a felony
# conviction on the current charge as for one on the FBI record.
AGGRAVATED_SHARE = "aggravated_felony_share"


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


def known_felony(convictions: pl.DataFrame, count: int) -> np.ndarray:
    """Whether each of `count` records' FBI record shows a felony conviction."""
    shown = convictions.filter(pl.col("known") & (pl.col("level") == schema.LEVELS[0]))
    flags = np.zeros(count, dtype=bool)
    flags[shown.get_column("row").to_numpy()] = True
    return flags


def level_at_removal(
    ice_level: pl.Series,
    charge_level: pl.Series,
    known_felony: np.ndarray,
    candidates: np.ndarray,
    keys: PlaceKeys,
    parameters: Parameters,
    rng: PlaceStream,
) -> pl.Series:
    """ICE's offense level of each record at removal, the one its removal counts use (ICE counts a
    removal at the record at removal): the level of the FBI record (`ice_level`), with the current charge
    (a felony or a misdemeanor) of a `candidates` row added where it ends in a conviction before removal,
    by the SC offense levels (OFFENSE_LEVELS): a felony makes Level 1 if it is an aggravated felony or the
    record already shows a felony (two felonies), else Level 2; a misdemeanor makes a record without a
    conviction Level 3. (A misdemeanor that makes a third, Level 2, is not counted: the record's
    misdemeanors are not counted here.)"""
    # On the labels' codes: a comparison of millions of strings costs more than the draws.
    labels = ice_level.dtype.categories.to_list()
    levels = ice_level.to_physical().to_numpy()
    rows = np.flatnonzero(candidates & (levels != labels.index(LEVEL_1)))
    row_keys = keys.subset(rows)
    convicted = rng.random(row_keys) < parameters.value(CONVICTED_BEFORE_REMOVAL)
    aggravated = rng.random(row_keys) < parameters.value(AGGRAVATED_SHARE)
    charge = charge_level.to_physical().to_numpy()[rows]
    felony = convicted & (charge == schema.LEVELS.index("felony"))
    level_1 = felony & (known_felony[rows] | aggravated)
    first_misdemeanor = (
        convicted & (charge == schema.LEVELS.index("misdemeanor")) & (levels[rows] == labels.index(NON_CRIMINAL))
    )
    at_removal = levels.copy()
    for changed, label in ((felony & ~level_1, "level_2"), (level_1, LEVEL_1), (first_misdemeanor, "level_3")):
        at_removal[rows[changed]] = labels.index(label)
    return pl.Series("removal_level", at_removal).cat.to(ice_level.dtype)


def classify(policy_id: str, tables: CaseTables) -> pl.Series:
    """The label a classification policy gives each case (e.g. level_1 … non_criminal)."""
    return compile_policy(load_policy(policy_id)).decisions(tables).get_column("decision")


def determine(state: State, parameters: Parameters, rng: Streams) -> State:
    """The stage: whether LESC finds each person removable (`removable`; a detainer by another route
    comes from an ICE officer who already has), the offense level of the FBI record (`ice_level`) and the
    level ICE would count a removal at (`removal_level`, read by the removal counts)."""
    status_codes, keys = state.column("status"), state.record_keys()
    chance = removable_chance(status_codes, state.column("known_convictions"), parameters)
    found_removable = rng["lesc"].random(keys) < chance
    secure_communities = state.column("channel") == Channel.SECURE_COMMUNITIES
    removable = np.where(secure_communities, found_removable, True)
    ice_level = classify(OFFENSE_LEVELS, drawn_before(state.cases, "the cases"))
    removal_level = level_at_removal(
        ice_level,
        state.records.get_column("most_serious_charge_level"),
        known_felony(state.convictions, state.records.height),
        removable,  # only those found removable can be removed
        keys,
        parameters,
        rng["lesc"],
    )
    records = state.records.with_columns(
        removable=pl.Series(removable), ice_level=ice_level, removal_level=removal_level
    )
    return replace(state, records=records)
