"""Stages 6–7 — the jail: the facts it knows about each person held on a detainer, when
the person would otherwise go free, what its policies in force that day decide, and the
hold that follows.

Policies come from a timeline (securecomm.law.timeline): every policy in force in the county
on the day of release eligibility is applied through the rules engine and the strictest
outcome governs (decline < review < honor); the hold ends at the earliest deadline of the
policies that allow it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
import polars as pl

from securecomm.core import places, schema
from securecomm.core.cases import CASE_SCHEMA, CLOCK_SCHEMA, CaseTables
from securecomm.core.schema import Decision, Status
from securecomm.core.units import HOURS_PER_DAY, MINUTES_PER_HOUR, SECONDS_PER_HOUR
from securecomm.law.compiler import HOLD_COLUMNS, compile_policy
from securecomm.law.holdclock import utc_of_wall
from securecomm.law.loader import load_policy
from securecomm.law.model import Policy
from securecomm.law.timeline import PolicyTimeline
from securecomm.model.parameters import BREAKDOWNS, Parameters
from securecomm.model.stages.codes import as_enum
from securecomm.model.stages.state import CaseSubsets, PlaceKeys, PlaceStream, State, Streams, drawn_before

PICKUP_PROBABILITY = "ice_pickup_probability"
AGES = "age_at_booking_share"
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


def draw_release_eligibility(state: State, parameters: Parameters, rng: Streams) -> State:
    """The stage: `release_eligible_at`, the booking time plus a lognormal stay set by the most
    serious current charge."""
    most_serious = state.column("most_serious_charge_level")
    stay = parameters.value("days_to_release_eligibility")
    median = np.array([stay[level]["median"] for level in schema.LEVELS])[most_serious]
    sigma = np.array([stay[level]["sigma"] for level in schema.LEVELS])[most_serious]
    longest = np.array([stay[level]["max"] for level in schema.LEVELS])[most_serious]
    days = np.minimum(median * np.exp(sigma * rng["release"].standard_normal(state.record_keys())), longest)
    minutes = np.round(days * HOURS_PER_DAY * MINUTES_PER_HOUR).astype("timedelta64[m]")
    booking_at = state.column("booking_at")
    release_eligible_at = (booking_at.astype("datetime64[m]") + minutes).astype("datetime64[us]")
    return replace(state, records=state.records.with_columns(release_eligible_at=pl.Series(release_eligible_at)))


def case_facts(
    status_codes: np.ndarray, keys: PlaceKeys, parameters: Parameters, rng: PlaceStream
) -> dict[str, pl.Series]:
    """The facts a jail's policy reads, other than criminal history and the form."""
    facts = {flag: pl.Series(flag, rng.random(keys) < parameters.value(name)) for flag, name in FLAG_PARAMETERS.items()}
    for flag, name in (("final_order", "final_order_probability"), ("prior_removal", "prior_removal_probability")):
        by_status = parameters.value(name)  # noncitizens only: a citizen cannot have either
        probability = np.array([by_status.get(status.label, 0.0) for status in Status])[status_codes]
        facts[flag] = pl.Series(flag, rng.random(keys) < probability)
    determined = rng.random(keys) < parameters.value("public_safety_risk_determined_probability")
    risk = rng.random(keys) < parameters.value("public_safety_risk_given_determined")
    facts["public_safety_risk"] = (
        pl.select(pl.when(pl.lit(pl.Series(determined))).then(pl.lit(pl.Series(risk))).otherwise(None))
        .to_series()
        .alias("public_safety_risk")
    )
    return facts


def draw_ages(booking_at: np.ndarray, keys: PlaceKeys, parameters: Parameters, rng: PlaceStream) -> np.ndarray:
    """Age at booking: a band of years (`A_B`) by the shares in force on the booking day, then a whole
    year uniformly from A to B."""
    bands = BREAKDOWNS["age_band"]
    youngest, oldest = (np.array([int(band.split("_")[end]) for band in bands]) for end in (0, 1))
    uniform = rng.random(keys)
    band = np.zeros(booking_at.size, dtype=np.int64)
    in_force = parameters.in_force(AGES, booking_at)
    for position, (_, shares) in enumerate(parameters[AGES].dated_values):
        rows = np.flatnonzero(in_force == position)
        cumulative = np.cumsum([shares[band] for band in bands])
        # The band is the number of cumulative shares at or below the draw.
        band[rows] = np.searchsorted(cumulative[:-1], uniform[rows] * cumulative[-1], side="right")
    span = oldest[band] - youngest[band] + 1
    return (youngest[band] + np.floor(rng.random(keys) * span)).astype(np.int16)


def held_to_answer(pending_charges: np.ndarray, charges: pl.DataFrame) -> np.ndarray:
    """A pending case on a current felony charge has passed a probable-cause finding: a
    felony defendant still held at release eligibility has been held to answer."""
    felony_rows = charges.filter(pl.col("level") == "felony").get_column("row").to_numpy()
    has_felony = np.zeros(pending_charges.size, dtype=bool)
    has_felony[felony_rows] = True
    return pending_charges & has_felony


def draw_case_facts(state: State, parameters: Parameters, rng: Streams) -> State:
    """The stage: each record's `age` at booking, and the case it makes for the rules engine (`cases`): the
    facts a jail's policy reads, the charges, the convictions the FBI record shows, the form and the release time."""
    keys = state.record_keys()
    facts = case_facts(state.column("status"), keys, parameters, rng["facts"])
    facts["held_to_answer"] = pl.Series(held_to_answer(facts["pending_charges"].to_numpy(), state.charges))
    facts["age"] = pl.Series("age", draw_ages(state.column("booking_at"), keys, parameters, rng["ages"]))
    records = state.records.with_columns(facts["age"])
    case_records = pl.DataFrame(
        {
            "row": np.arange(records.height, dtype=np.uint32),
            "release_eligible_at": records.get_column("release_eligible_at"),
            "detainer_form": records.get_column("detainer_form"),
            "aggravated_felony": records.get_column("aggravated_felony"),
            # The jail's clock runs in its county's zone: hold deadlines are real hours from the local release.
            "time_zone": as_enum(county_zone_codes(state.counties)[state.column("fips")], schema.TIME_ZONES),
            **facts,
        }
    ).cast(
        {
            **{name: dtype for name, dtype in CASE_SCHEMA.items() if name != "case_id"},
            "time_zone": CLOCK_SCHEMA["time_zone"],
        }
    )
    known = state.convictions.filter(pl.col("known")).drop("known")
    return replace(state, records=records, cases=CaseTables(case_records, state.charges, known))


@lru_cache(maxsize=64)
def county_zone_codes(counties: tuple[str, ...]) -> np.ndarray:
    """Each county's time zone, as its code in `schema.TIME_ZONES` (one byte; read only). Kept: every replication
    on a place asks again (a look-up per county of the nation)."""
    codes = np.array([schema.TIME_ZONES.index(places.time_zone(fips)) for fips in counties], dtype=np.uint8)
    codes.flags.writeable = False
    return codes


@dataclass(frozen=True)
class JailDecisions:
    decision: np.ndarray  # Decision codes
    hold_until: np.ndarray  # datetime64[us], local wall clock; NaT where no hold is allowed
    hold_hours: np.ndarray  # real hours from release eligibility to `hold_until`; NaN where no hold is allowed
    deciding_policy: np.ndarray  # codes into `policies` of the policy that set the outcome (-1: none in force)
    rule: np.ndarray  # codes into `rules` of its rule
    policies: list[str]
    rules: list[str]


def release_instants(records: pl.DataFrame) -> np.ndarray:
    """The UTC instant of each case's release eligibility, its local time read in the case's zone."""
    zones = records.get_column("time_zone")
    codes = zones.to_physical().to_numpy()
    wall = records.get_column("release_eligible_at").to_numpy()
    instants = np.full(wall.shape, np.datetime64("NaT"), dtype="datetime64[us]")
    for code in np.unique(codes):
        rows = np.flatnonzero(codes == code)
        instants[rows] = utc_of_wall(wall[rows], zones.dtype.categories[int(code)])
    return instants


def policy_decisions(cases: CaseSubsets, policy: Policy, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """A policy's decision on the cases at `rows` (Decision codes) and the rule that made it (codes into the
    list returned: the policy's rules)."""
    question = policy.questions[0]
    if not question.rules:  # a policy without rules decides every case by its default
        return (
            np.full(rows.size, Decision.of(question.default.decision), dtype=np.uint8),
            np.zeros(rows.size, np.int16),
            ["default"],
        )
    compiled = compile_policy(policy)
    outcomes = compiled.outcomes[question.name]
    rules = list(dict.fromkeys(outcome.rule for outcome in outcomes))
    decision_of_outcome = np.array([Decision.of(outcome.decision) for outcome in outcomes], dtype=np.uint8)
    rule_of_outcome = np.array([rules.index(outcome.rule) for outcome in outcomes], dtype=np.int16)

    def decide_rows(missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        outcome = compiled.outcome_indexes(cases.subset(missing))
        return decision_of_outcome[outcome], rule_of_outcome[outcome]

    decision, rule = cases.filled(("decision", policy.id), rows, decide_rows)
    return decision, rule, rules


def decide_detainers(
    cases: CaseSubsets,
    county_codes: np.ndarray,
    county_fips: tuple[str, ...],
    release_eligible_at: np.ndarray,
    timeline: PolicyTimeline,
) -> JailDecisions:
    """Apply every policy in force to detainer cases; the strictest outcome governs, and the hold ends at
    the earliest deadline any of them allows (each policy's own limit, cut to the detainer form's by the law
    engine, on the clock of the case's zone).

    `county_codes` index `county_fips`; membership is looked up per county, not per case.
    """
    size = cases.records.height
    # Decisions in the Enum's own one-byte codes; policies and rules as codes into vocabularies built on the way.
    decision = np.full(size, Decision.HONOR, dtype=np.uint8)
    policy_ids: dict[str, int] = {}
    rule_ids: dict[str, int] = {}
    deciding = np.full(size, -1, dtype=np.int16)
    rule = np.full(size, -1, dtype=np.int16)
    decided = np.zeros(size, dtype=bool)
    first_day, last_day = (
        (release_eligible_at.min().astype("datetime64[D]"), release_eligible_at.max().astype("datetime64[D]"))
        if size
        else (None, None)
    )
    release_days: np.ndarray | None = None  # each case's day, once a policy's dates cut the cases
    # Cases come grouped by county (records are drawn county by county): the cases a policy covers are
    # the blocks of its counties, found without a pass over every case for each policy of the timeline.
    if size and (county_codes[1:] < county_codes[:-1]).any():
        raise ValueError("detainer cases must come grouped by county, in the order of the county list")
    county_starts = np.searchsorted(county_codes, np.arange(len(county_fips) + 1))
    in_force: list[tuple[Policy, np.ndarray]] = []
    for entry in timeline.entries:
        # An entry outside the cases' days covers none of them (a reform's cuts end where the period starts).
        if size == 0 or np.datetime64(entry.start, "D") > last_day:
            continue
        if entry.end is not None and np.datetime64(entry.end, "D") <= first_day:
            continue
        covered = covered_positions(entry.counties, county_fips)
        if covered.size == 0:
            continue
        indexes = blocks(county_starts[covered], county_starts[covered + 1])
        # A bound outside the cases' days cuts none of them.
        starts_later = np.datetime64(entry.start, "D") > first_day
        ends_sooner = entry.end is not None and np.datetime64(entry.end, "D") <= last_day
        if (starts_later or ends_sooner) and release_days is None:
            release_days = release_eligible_at.astype("datetime64[D]")
        if starts_later:
            indexes = indexes[release_days[indexes] >= np.datetime64(entry.start, "D")]
        if ends_sooner:
            indexes = indexes[release_days[indexes] < np.datetime64(entry.end, "D")]
        if indexes.size == 0:
            continue
        policy = load_policy(entry.policy_id)
        in_force.append((policy, indexes))
        codes, rule_codes, rule_names = policy_decisions(cases, policy, indexes)
        rules = np.array([rule_ids.setdefault(name, len(rule_ids)) for name in rule_names], dtype=np.int16)[rule_codes]
        at = every_case(indexes, size)
        current = decision[at]
        takes_over = (codes < current) | ~decided[at]
        decided[at] = True
        decision[at] = np.minimum(current, codes)
        # Written in place where `at` is every case (views); else gathered, written and put back.
        deciding_at, rule_at = deciding[at], rule[at]
        deciding_at[takes_over] = policy_ids.setdefault(entry.policy_id, len(policy_ids))
        np.copyto(rule_at, rules, where=takes_over)
        if not isinstance(at, slice):
            deciding[at], rule[at] = deciding_at, rule_at
    hold_until, hold_until_utc, holdable = earliest_holds(cases, decision != Decision.DECLINE, in_force)
    hours = np.full(size, np.nan)
    held = np.flatnonzero(holdable)
    (released,) = cases.filled(
        "release instants",
        held,
        lambda rows: (release_instants(cases.records.select("time_zone", "release_eligible_at")[rows]),),
    )
    span = hold_until_utc[held] - released
    hours[held] = span.astype("timedelta64[s]").astype(np.float64) / SECONDS_PER_HOUR
    return JailDecisions(
        decision,
        np.where(holdable, hold_until, np.datetime64("NaT")),
        hours,
        deciding,
        rule,
        list(policy_ids),
        list(rule_ids),
    )


@lru_cache(maxsize=1024)
def covered_positions(counties: frozenset[str], county_fips: tuple[str, ...]) -> np.ndarray:
    """The positions in `county_fips` of the counties among them that a timeline's entry covers, ascending (read
    only). Kept: every policy run on a place asks again for the same entries' (a look-up per county of the
    nation each time)."""
    position = {fips: index for index, fips in enumerate(county_fips)}
    covered = np.array(sorted(position[fips] for fips in counties if fips in position), dtype=np.int64)
    covered.flags.writeable = False
    return covered


def every_case(indexes: np.ndarray, size: int) -> np.ndarray | slice:
    """Ascending distinct case indexes, as a slice where they are every case (one policy over the place, as a
    comparison applies): the arrays read and written through it are views, not copies."""
    return slice(None) if indexes.size == size else indexes


def blocks(starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """The indexes of the blocks [start, stop), one after another."""
    lengths = stops - starts
    return np.repeat(starts - (np.cumsum(lengths) - lengths), lengths) + np.arange(lengths.sum())


def hold_deadlines(cases: CaseSubsets, policy: Policy, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The deadline (local, UTC; NaT where none is allowed) of a hold under `policy` of the cases at `rows`. The law engine's deadline depends on the policy's hold, the case's form and
    its zone (simulated cases carry theirs): policies with the same hold share their deadlines."""
    key = ("deadline", None if policy.hold is None else (policy.hold.hours, policy.hold.counting))

    def deadlines(missing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # The hold reads a few columns of the case records: the charges and convictions have decided already.
        read = cases.records.select(name for name in HOLD_COLUMNS if name in cases.records.columns)
        tables = CaseTables(read[missing], pl.DataFrame(), pl.DataFrame())
        deadlines = compile_policy(policy).hold_deadlines(tables, np.ones(missing.size, bool))
        return deadlines.local, deadlines.utc

    local, utc = cases.filled(key, rows, deadlines)
    return local, utc


def earliest_holds(
    cases: CaseSubsets, may_hold: np.ndarray, in_force: list[tuple[Policy, np.ndarray]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The earliest deadline (local, UTC) the policies in force at each case allow, and whether any hold is
    allowed: a case declined by one of them needs none, and one that a policy in force leaves without a
    deadline (a form asking for notice only) is not held."""
    size = cases.records.height
    hold_until = np.full(size, NEVER)
    hold_until_utc = np.full(size, NEVER)
    holdable = may_hold.copy()
    for policy, indexes in in_force:
        rows = indexes[may_hold[indexes]]
        if rows.size == 0:
            continue
        local, utc = hold_deadlines(cases, policy, rows)
        at = every_case(rows, size)
        holdable[at] &= ~np.isnat(utc)
        # Written in place where `at` is every case (views); else gathered, written and put back. No deadline
        # (NaT) is earlier than any.
        until_at, until_utc_at = hold_until[at], hold_until_utc[at]
        earlier = utc < until_utc_at
        np.copyto(until_at, local, where=earlier)
        np.copyto(until_utc_at, utc, where=earlier)
        if not isinstance(at, slice):
            hold_until[at], hold_until_utc[at] = until_at, until_utc_at
    return hold_until, hold_until_utc, holdable & (hold_until_utc != NEVER)


def decide(state: State, parameters: Parameters, rng: Streams) -> State:
    """The stage, on the records with a detainer issued: the jail's decision on each under the policies in
    force (`jail_decision`, `jail_policy`, `jail_rule`) and the latest hold they allow (`hold_allowed_until`,
    local, and `hold_allowed_hours`, real hours)."""
    decisions = decide_detainers(
        drawn_before(state.detainer_cases, "the cases of the detainers issued"),
        state.column("fips"),
        state.counties,
        state.column("release_eligible_at"),
        drawn_before(state.detainer_timeline, "the detainer policies"),
    )
    records = state.records.with_columns(
        jail_decision=as_enum(decisions.decision, Decision.labels()),
        jail_policy=as_enum(decisions.deciding_policy, decisions.policies),
        jail_rule=as_enum(decisions.rule, decisions.rules),
        hold_allowed_until=datetime_column(decisions.hold_until),
        hold_allowed_hours=decisions.hold_hours,
    )
    return replace(state, records=records)


def datetime_column(times: np.ndarray) -> pl.Series:
    """Times (datetime64[us]; NaT where there is none) as a Datetime column: through their integers with NaT
    masked, a seventh of the time Polars takes to find the NaTs itself."""
    times = times.astype("datetime64[us]", copy=False)
    return pl.Series(np.ma.masked_array(times.view(np.int64), np.isnat(times))).cast(pl.Datetime("us"))


def pickup_probability(release_eligible_at: np.ndarray, parameters: Parameters) -> np.ndarray:
    """The chance that ICE picks up a person the jail may hold (or tells of the release), by release date."""
    return parameters.by_day(PICKUP_PROBABILITY, release_eligible_at)


@dataclass(frozen=True)
class Holds:
    held: np.ndarray
    hold_hours: np.ndarray
    transferred: np.ndarray
    transfer_at: np.ndarray


@dataclass(frozen=True)
class PickupDraws:
    """What chance decides for each detainer case whatever the policy: whether a review would end in an
    honored request, whether ICE comes for the person it may hold, and when within the hold."""

    review_honors: np.ndarray
    ice_comes: np.ndarray
    share_of_hold: np.ndarray  # of the hold allowed, spent before ICE comes


def draw_pickups(
    release_eligible_at: np.ndarray, keys: PlaceKeys, parameters: Parameters, rng: PlaceStream
) -> PickupDraws:
    """A review honors at the reviewers' rate; ICE comes with the chance of the release date, uniformly
    within [0, 2 × the mean share] of the hold, capped at its end."""
    review_draw, pickup_draw, pickup_time_draw = rng.random(keys), rng.random(keys), rng.random(keys)
    return PickupDraws(
        review_draw < parameters.value("review_honor_probability"),
        pickup_draw < pickup_probability(release_eligible_at, parameters),
        np.minimum(pickup_time_draw * 2 * parameters.value("pickup_share_of_hold"), 1.0),
    )


def hold_and_transfer(
    decision: np.ndarray, hold_allowed_hours: np.ndarray, release_eligible_at: np.ndarray, draws: PickupDraws
) -> Holds:
    """Who is held, for how long, and whom ICE picks up.

    A review ends in a hold when the reviewer honors. An honored request that allows no hold (a form
    asking for notice only) is a notice: ICE can only be there at release.
    """
    allowed = (decision == Decision.HONOR) | ((decision == Decision.REVIEW) & draws.review_honors)
    held = allowed & ~np.isnan(hold_allowed_hours)
    picked_up = allowed & draws.ice_comes
    span = np.where(held, hold_allowed_hours * SECONDS_PER_HOUR, 0.0)
    held_seconds = np.where(picked_up, draws.share_of_hold * span, span)
    # A local time: across a change of the clocks it is off by the hour they moved, which no lag of
    # ICE custody measured in days can tell.
    transfer_at = release_eligible_at + held_seconds.astype("timedelta64[s]")
    return Holds(
        held, held_seconds / SECONDS_PER_HOUR, picked_up, np.where(picked_up, transfer_at, np.datetime64("NaT"))
    )


def hold(state: State, parameters: Parameters, rng: Streams) -> State:
    """The stage: who is held and until when (`held`, `hold_until`, `hold_hours`), and whom ICE picks
    up (`transferred`, `transfer_at`)."""
    decision = state.column("jail_decision")
    hold_allowed_until = state.column("hold_allowed_until")
    release_eligible_at = state.column("release_eligible_at")
    every_case = np.arange(state.records.height)

    def draw(_: np.ndarray) -> tuple[np.ndarray, ...]:
        draws = draw_pickups(release_eligible_at, state.record_keys(), parameters, rng["jail"])
        return draws.review_honors, draws.ice_comes, draws.share_of_hold

    # The same numbers under every policy (every case's, from fresh streams of the seed): drawn once for the
    # detainer cases, and kept for the next policy run on them.
    cases = drawn_before(state.detainer_cases, "the cases of the detainers issued")
    draws = PickupDraws(*cases.filled("pickup draws", every_case, draw))
    holds = hold_and_transfer(decision, state.column("hold_allowed_hours"), release_eligible_at, draws)
    records = state.records.drop("hold_allowed_until", "hold_allowed_hours").with_columns(
        hold_until=datetime_column(np.where(holds.held, hold_allowed_until, np.datetime64("NaT"))),
        held=holds.held,
        hold_hours=holds.hold_hours,
        transferred=holds.transferred,
        transfer_at=datetime_column(holds.transfer_at),
    )
    return replace(state, records=records)
