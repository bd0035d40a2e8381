"""Stages 6–7 — the jail: the facts it knows about each person held on a detainer, when
the person would otherwise go free, what its policies in force that day decide, and the
hold that follows.

Policies come from a timeline (securecomm.law.timeline): every policy in force in the county
on the day of release eligibility is applied through the rules engine and the strictest
outcome governs (decline < review < honor); the hold ends at the earliest deadline of the
policies that allow it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from securecomm.core import schema
from securecomm.core.cases import CaseTables
from securecomm.law.compiler import compile_policy
from securecomm.law.holdclock import hold_until_many
from securecomm.law.loader import load_policy
from securecomm.law.timeline import PolicyTimeline
from securecomm.model.parameters import NONCITIZEN_STATUSES, Parameters
from securecomm.model.stages.codes import as_enum

DECLINE, REVIEW, HONOR = 0, 1, 2
DECISION_CODES = {"decline": DECLINE, "review": REVIEW, "honor": HONOR}
DECISIONS = ("decline", "review", "honor")
FLAG_PARAMETERS = {
    "pending_charges": "pending_charges_probability",
    "bond_posted": "bond_posted_probability",
    "outstanding_warrant": "outstanding_warrant_probability",
    "federal_felony_warrant": "federal_felony_warrant_probability",
    "gang_database": "gang_database_probability",
    "terrorist_watchlist": "terrorist_watchlist_probability",
    "sex_or_arson_registrant": "sex_or_arson_registrant_probability",
    "judicial_warrant": "judicial_warrant_probability",
    "ice_reimbursement": "ice_reimbursement_probability",
}
NEVER = np.datetime64("9999-12-31T00:00", "us")


def draw_case_facts(rng: np.random.Generator, status_codes: np.ndarray, parameters: Parameters) -> dict[str, pl.Series]:
    """The facts a jail's policy reads, other than criminal history and the form."""
    count = status_codes.size
    facts = {
        flag: pl.Series(flag, rng.random(count) < parameters.value(name)) for flag, name in FLAG_PARAMETERS.items()
    }
    for flag, name in (("final_order", "final_order_probability"), ("prior_removal", "prior_removal_probability")):
        by_status = parameters.value(name)
        probability = np.array([by_status[status] for status in NONCITIZEN_STATUSES] + [0.0, 0.0])[status_codes]
        facts[flag] = pl.Series(flag, rng.random(count) < probability)
    determined = rng.random(count) < parameters.value("public_safety_risk_determined_probability")
    risk = rng.random(count) < parameters.value("public_safety_risk_given_determined")
    facts["public_safety_risk"] = (
        pl.select(pl.when(pl.lit(pl.Series(determined))).then(pl.lit(pl.Series(risk))).otherwise(None))
        .to_series()
        .alias("public_safety_risk")
    )
    facts["age"] = pl.Series("age", [None] * count, dtype=pl.Int16)  # unknown: not known to be a minor
    return facts


def held_to_answer(pending_charges: np.ndarray, charges: pl.DataFrame) -> np.ndarray:
    """A pending case on a current felony charge has passed a probable-cause finding: a
    felony defendant still held at release eligibility has been held to answer."""
    felony_rows = charges.filter(pl.col("level") == "felony").get_column("row").to_numpy()
    has_felony = np.zeros(pending_charges.size, dtype=bool)
    has_felony[felony_rows] = True
    return pending_charges & has_felony


def draw_release_eligibility(
    rng: np.random.Generator, booking_at: np.ndarray, charges: pl.DataFrame, parameters: Parameters
) -> np.ndarray:
    """Booking time plus a lognormal stay set by the most serious current charge."""
    records = booking_at.size
    # Charges are grouped by record, and every record has at least one: reduce each group.
    rows = charges.get_column("row").to_numpy()
    group_starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    most_serious = np.minimum.reduceat(charges.get_column("level").to_physical().to_numpy(), group_starts)
    stay = parameters.value("days_to_release_eligibility")
    median = np.array([stay[level]["median"] for level in schema.LEVELS])[most_serious]
    sigma = np.array([stay[level]["sigma"] for level in schema.LEVELS])[most_serious]
    longest = np.array([stay[level]["max"] for level in schema.LEVELS])[most_serious]
    days = np.minimum(median * np.exp(sigma * rng.standard_normal(records)), longest)
    minutes = np.round(days * 24 * 60).astype("timedelta64[m]")
    return (booking_at.astype("datetime64[m]") + minutes).astype("datetime64[us]")


@dataclass(frozen=True)
class JailDecisions:
    decision: np.ndarray  # DECLINE / REVIEW / HONOR
    hold_until: np.ndarray  # datetime64[us]; NaT where no policy allows a hold
    deciding_policy: pl.Series  # Enum: the policy that set the outcome (null where no detainer)
    rule: pl.Series  # Enum: its rule id


def decide_detainers(
    tables: CaseTables,
    county_codes: np.ndarray,
    county_fips: list[str],
    release_eligible_at: np.ndarray,
    issued: np.ndarray,
    timeline: PolicyTimeline,
) -> JailDecisions:
    """Apply every policy in force to the issued detainers; the strictest outcome governs.

    `county_codes` index `county_fips`; membership is looked up per county, not per record.
    """
    size = issued.size
    decision = np.full(size, HONOR, dtype=np.int8)
    hold_until = np.full(size, NEVER)
    # Policies and rules are kept as codes into vocabularies built on the way.
    policy_ids: dict[str, int] = {}
    rule_ids: dict[str, int] = {}
    deciding = np.full(size, -1, dtype=np.int64)
    rule = np.full(size, -1, dtype=np.int64)
    decided = np.zeros(size, dtype=bool)
    release_days = release_eligible_at.astype("datetime64[D]")
    for entry in timeline.entries:
        mask = issued & np.isin(np.asarray(county_fips), list(entry.counties))[county_codes]
        mask &= release_days >= np.datetime64(entry.start, "D")
        if entry.end is not None:
            mask &= release_days < np.datetime64(entry.end, "D")
        if not mask.any():
            continue
        policy = load_policy(entry.policy_id)
        indexes = np.flatnonzero(mask)
        question = policy.questions[0]
        if question.rules:
            outcome = compile_policy(policy).decisions(tables.subset(mask))
            decided_as = outcome.get_column("decision").cast(pl.String)
            codes = decided_as.replace_strict(DECISION_CODES, return_dtype=pl.Int8).to_numpy()
            rule_names = outcome.get_column("rule")
            vocabulary = rule_names.dtype.categories.to_list()
            local = np.array([rule_ids.setdefault(name, len(rule_ids)) for name in vocabulary], dtype=np.int64)
            rules = local[rule_names.to_physical().to_numpy()]
        else:  # a policy without rules decides every case by its default
            codes = np.full(indexes.size, DECISION_CODES[question.default.decision], dtype=np.int8)
            rules = np.full(indexes.size, rule_ids.setdefault("default", len(rule_ids)), dtype=np.int64)
        stricter = codes < decision[indexes]
        takes_over = stricter | ~decided[indexes]
        decided[indexes] = True
        decision[indexes] = np.minimum(decision[indexes], codes)
        deciding[indexes[takes_over]] = policy_ids.setdefault(entry.policy_id, len(policy_ids))
        rule[indexes[takes_over]] = rules[takes_over]
        if policy.hold is not None:
            deadlines = hold_until_many(release_eligible_at[indexes], policy.hold.hours, policy.hold.counting)
            hold_until[indexes] = np.minimum(hold_until[indexes], deadlines)
    hold_until = np.where(hold_until == NEVER, np.datetime64("NaT"), hold_until)
    return JailDecisions(
        decision,
        hold_until,
        as_enum(deciding, list(policy_ids)).alias("jail_policy"),
        as_enum(rule, list(rule_ids)).alias("jail_rule"),
    )


@dataclass(frozen=True)
class Holds:
    held: np.ndarray
    hold_hours: np.ndarray
    transferred: np.ndarray
    transfer_at: np.ndarray


def hold_and_transfer(
    decisions: JailDecisions,
    release_eligible_at: np.ndarray,
    notification_only: np.ndarray,
    review_draw: np.ndarray,
    pickup_draw: np.ndarray,
    pickup_time_draw: np.ndarray,
    parameters: Parameters,
) -> Holds:
    """Who is held, for how long, and whom ICE picks up.

    A review ends in a hold when the reviewer honors. A notification-only request
    (I-247N) asks for no hold: ICE can only be there at release.
    """
    allowed = (decisions.decision == HONOR) | (
        (decisions.decision == REVIEW) & (review_draw < parameters.value("review_honor_probability"))
    )
    allowed &= ~np.isnat(decisions.hold_until)
    held = allowed & ~notification_only
    picked_up = allowed & (pickup_draw < parameters.by_day("ice_pickup_probability", release_eligible_at))
    # Pickup comes uniformly within [0, 2 × mean share] of the hold, capped at its end.
    share = np.minimum(pickup_time_draw * 2 * parameters.value("pickup_share_of_hold"), 1.0)
    span = (decisions.hold_until - release_eligible_at).astype("timedelta64[s]").astype(np.float64)
    span = np.where(held, span, 0.0)
    held_seconds = np.where(picked_up, share * span, span)
    transfer_at = release_eligible_at + held_seconds.astype("timedelta64[s]")
    return Holds(held, held_seconds / 3600.0, picked_up, np.where(picked_up, transfer_at, np.datetime64("NaT")))
