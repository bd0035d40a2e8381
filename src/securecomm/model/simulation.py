"""A scenario, its random draws, and the stages in order.

`draw_population` makes everything that does not depend on local policy — bookings,
matches, criminal histories, ICE's decisions, and the uniform draws that later stages
read — from one seeded generator, each stage on its own spawned stream. `apply_policies`
then runs the jail, hold, removal and field stages under a policy timeline. A reform and
its baseline share one population, so their difference is the policy, not noise.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from securecomm.core.cases import CASE_SCHEMA, CaseTables
from securecomm.core.places import resolve_place
from securecomm.law.timeline import PolicyTimeline
from securecomm.model.metrics import CHANNELS, channel_totals, county_months, totals
from securecomm.model.parameters import STATUSES, Parameters, load_parameters
from securecomm.model.stages import bookings, field, iafis, ident, issuance, jail, lesc, other_routes, removal
from securecomm.model.stages.codes import as_enum

STREAMS = (
    "bookings",
    "ident",
    "other_routes",
    "field",
    "booking_times",
    "charges",
    "histories",
    "aggravated",
    "release",
    "facts",
    "forms",
    "lesc",
    "issuance",
    "jail",
    "removal",
)
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Reform:
    """From `start` (None: the scenario's start), the counties follow `policy_id` alone."""

    counties: frozenset[str]
    policy_id: str
    start: dt.date | None = None


@dataclass(frozen=True)
class Scenario:
    place: str
    start: dt.date
    end: dt.date
    seed: int = 0
    parameters: Parameters = dataclass_field(default_factory=load_parameters)
    reforms: tuple[Reform, ...] = ()

    def counties(self) -> list[str]:
        return resolve_place(self.place)

    def detainer_timeline(self) -> PolicyTimeline:
        timeline = PolicyTimeline.historical("detainer")
        for reform in self.reforms:
            timeline = timeline.replace(reform.counties, reform.policy_id, reform.start or self.start)
        return timeline

    def field_timeline(self) -> PolicyTimeline:
        return PolicyTimeline.historical("field")


@dataclass(frozen=True)
class Population:
    """Everything drawn before local policy acts."""

    scenario: Scenario
    segments: pl.DataFrame
    records: pl.DataFrame
    tables: CaseTables


def _streams(seed: int) -> dict[str, np.random.Generator]:
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {name: np.random.default_rng(child) for name, child in zip(STREAMS, children, strict=True)}


def _expand(segments: pl.DataFrame, prefix: str, statuses: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """One entry per counted person: the segment they came from and their status code."""
    segment_parts, status_parts = [], []
    for status in statuses:
        counts = segments.get_column(f"{prefix}{status}").to_numpy()
        segment_parts.append(np.repeat(np.arange(segments.height, dtype=np.uint32), counts))
        status_parts.append(np.full(segment_parts[-1].size, STATUSES.index(status), dtype=np.int64))
    return np.concatenate(segment_parts), np.concatenate(status_parts)


def draw_population(scenario: Scenario, progress: Progress | None = None) -> Population:
    report = progress or (lambda stage: None)
    rng = _streams(scenario.seed)
    parameters = scenario.parameters

    report("bookings")
    counties = scenario.counties()
    pieces = bookings.segments(counties, scenario.start, scenario.end)
    pieces = bookings.draw_bookings(bookings.expected_bookings(pieces, parameters), rng["bookings"])
    report("IDENT matching")
    pieces = ident.draw_matches(pieces, parameters, rng["ident"])
    pieces = other_routes.draw_other_route_detainers(pieces, parameters, rng["other_routes"])
    pieces = field.draw_field_encounters(pieces, parameters, rng["field"])

    report("records")
    matched_segments, matched_statuses = _expand(pieces, "matched_", STATUSES)
    routed_segments, routed_statuses = _expand(pieces, "other_route_", STATUSES[:3])
    segment = np.concatenate([matched_segments, routed_segments])
    status_codes = np.concatenate([matched_statuses, routed_statuses])
    channel_codes = np.repeat([0, 1], [matched_segments.size, routed_segments.size])
    count = segment.size
    county_codes = pieces.get_column("fips").replace_strict(counties, list(range(len(counties)))).to_numpy()
    segment_start = pieces.get_column("segment_start").to_numpy().astype("datetime64[m]")[segment]
    segment_minutes = pieces.get_column("days").to_numpy()[segment].astype(np.int64) * 24 * 60
    offset = np.floor(rng["booking_times"].random(count) * segment_minutes).astype("timedelta64[m]")
    booking_at = (segment_start + offset).astype("datetime64[us]")

    report("criminal histories")
    charges = bookings.draw_current_charges(rng["charges"], count, parameters)
    matched_in_ident = channel_codes == CHANNELS.index("secure_communities")
    prior_conviction = iafis.prior_conviction_chance(status_codes, matched_in_ident, parameters)
    convictions = iafis.draw_criminal_histories(rng["histories"], prior_conviction, parameters)
    known = convictions.filter(pl.col("known")).drop("known")
    aggravated = iafis.draw_aggravated_felony(rng["aggravated"], count, convictions, parameters)
    release_eligible_at = jail.draw_release_eligibility(rng["release"], booking_at, charges, parameters)
    facts = jail.draw_case_facts(rng["facts"], status_codes, parameters)
    facts["held_to_answer"] = pl.Series(jail.held_to_answer(facts["pending_charges"].to_numpy(), charges))
    booking_days = booking_at.astype("datetime64[D]")
    forms = issuance.draw_forms(rng["forms"], booking_days, parameters)
    engine_records = pl.DataFrame(
        {
            "row": np.arange(count, dtype=np.uint32),
            "release_eligible_at": release_eligible_at,
            "detainer_form": forms,
            "aggravated_felony": aggravated,
            **facts,
        }
    ).cast({name: dtype for name, dtype in CASE_SCHEMA.items() if name != "case_id"})
    tables = CaseTables(engine_records, charges, known)

    report("LESC and ICE issuance")
    secure_communities = matched_in_ident
    known_counts = np.bincount(known.get_column("row").to_numpy(), minlength=count)
    removable = np.where(
        secure_communities, lesc.determine_removable(rng["lesc"], status_codes, known_counts, parameters), True
    )
    ice_level = lesc.classify(lesc.OFFENSE_LEVELS, tables)
    issued, labels = issuance.issue_detainers(
        tables,
        booking_days,
        secure_communities & removable,
        rng["issuance"].random(count),
        parameters,
        {lesc.OFFENSE_LEVELS: ice_level},
    )
    issued |= ~secure_communities
    decision_draws = rng["jail"].random((3, count))
    removal_draws = rng["removal"].random(count), rng["removal"].standard_normal(count)
    records = pl.DataFrame(
        {
            "record": np.arange(count, dtype=np.uint32),
            "channel": as_enum(channel_codes, CHANNELS),
            "fips": as_enum(county_codes[segment], counties),
            "status": as_enum(status_codes, STATUSES),
            "booking_at": booking_at,
            "release_eligible_at": release_eligible_at,
            "removable": removable,
            "ice_level": ice_level.cast(pl.String),
            "issuance_label": labels,
            "detainer_issued": issued,
            "detainer_form": forms,
            "known_convictions": known_counts.astype(np.int32),
            "true_convictions": np.bincount(convictions.get_column("row").to_numpy(), minlength=count).astype(np.int32),
            "review_draw": decision_draws[0],
            "pickup_draw": decision_draws[1],
            "pickup_time_draw": decision_draws[2],
            "removal_draw": removal_draws[0],
            "removal_lag_draw": removal_draws[1],
        }
    )
    return Population(scenario, pieces, records, tables)


@dataclass(frozen=True)
class SimulationResult:
    """What a run produced: totals, per-county and per-month counts, and the records."""

    scenario: Scenario
    timeline: PolicyTimeline
    county_months: pl.DataFrame
    records: pl.DataFrame
    total: dict[str, float]
    channels: dict[str, dict[str, float]]

    def by_county(self) -> pl.DataFrame:
        numeric = [name for name in self.county_months.columns if name not in ("fips", "month")]
        return self.county_months.group_by("fips").agg(pl.col(numeric).sum()).sort("fips")

    def to_dict(self) -> dict[str, Any]:
        places = {row.pop("fips"): row for row in self.by_county().to_dicts()}
        return {
            "place": self.scenario.place,
            "start": self.scenario.start.isoformat(),
            "end": self.scenario.end.isoformat(),
            "seed": self.scenario.seed,
            "parameters": self.scenario.parameters.label,
            "policies": sorted({entry.policy_id for entry in self.timeline.entries}),
            "total": self.total,
            "channels": self.channels,
            "places": {
                fips: {k: (round(v, 2) if isinstance(v, float) else v) for k, v in row.items()}
                for fips, row in places.items()
            },
        }

    def write(self, directory: Path) -> list[Path]:
        """County-month counts (Parquet and CSV) and the record-level table (Parquet)."""
        directory.mkdir(parents=True, exist_ok=True)
        written = [directory / "county_months.parquet", directory / "county_months.csv", directory / "records.parquet"]
        self.county_months.write_parquet(written[0])
        self.county_months.write_csv(written[1])
        self.records.write_parquet(written[2])
        summary = directory / "summary.json"
        summary.write_text(json.dumps(self.to_dict(), indent=2))
        return [*written, summary]


def apply_policies(
    population: Population, timeline: PolicyTimeline, progress: Progress | None = None
) -> SimulationResult:
    """The jail, hold, removal and field stages under a policy timeline."""
    report = progress or (lambda stage: None)
    scenario, records = population.scenario, population.records
    parameters = scenario.parameters
    report("jail decisions")
    release_eligible_at = records.get_column("release_eligible_at").to_numpy()
    decisions = jail.decide_detainers(
        population.tables,
        records.get_column("fips").to_physical().to_numpy(),
        scenario.counties(),
        release_eligible_at,
        records.get_column("detainer_issued").to_numpy(),
        timeline,
    )
    holds = jail.hold_and_transfer(
        decisions,
        release_eligible_at,
        (records.get_column("detainer_form") == "I-247N").to_numpy(),
        records.get_column("review_draw").to_numpy(),
        records.get_column("pickup_draw").to_numpy(),
        records.get_column("pickup_time_draw").to_numpy(),
        parameters,
    )
    report("ICE custody and removal")
    status_codes = records.get_column("status").to_physical().to_numpy()
    removed, removal_at = removal.remove(
        status_codes,
        (records.get_column("ice_level") == "level_1").to_numpy(),
        holds.transferred,
        holds.transfer_at,
        records.get_column("removal_draw").to_numpy(),
        records.get_column("removal_lag_draw").to_numpy(),
        parameters,
    )
    issued = records.get_column("detainer_issued").to_numpy()
    outcome = records.with_columns(
        jail_decision=pl.Series(np.where(issued, decisions.decision, -1)).replace_strict(
            {-1: None, **dict(enumerate(jail.DECISIONS))}, return_dtype=pl.Enum(jail.DECISIONS)
        ),
        jail_policy=decisions.deciding_policy,
        jail_rule=decisions.rule,
        hold_until=pl.Series(np.where(holds.held, decisions.hold_until, np.datetime64("NaT")), dtype=pl.Datetime("us")),
        held=holds.held,
        hold_hours=holds.hold_hours,
        transferred=holds.transferred,
        transfer_at=pl.Series(holds.transfer_at, dtype=pl.Datetime("us")),
        removed=removed,
        removal_at=pl.Series(removal_at, dtype=pl.Datetime("us")),
    )
    report("field arrests")
    segments = population.segments.with_columns(field.field_arrests(population.segments, scenario.field_timeline()))
    daily_cost = parameters.value("jail_daily_cost_usd")
    months = county_months(segments, outcome, scenario.end, daily_cost)
    return SimulationResult(
        scenario,
        timeline,
        months,
        outcome,
        totals(months),
        channel_totals(outcome, segments, scenario.end, daily_cost),
    )


def simulate(
    place: str,
    start: dt.date | str,
    end: dt.date | str,
    *,
    seed: int = 0,
    reforms: tuple[Reform, ...] = (),
    parameters: Parameters | None = None,
    progress: Progress | None = None,
) -> SimulationResult:
    """Simulate Secure Communities over a place and period (the historical policy timeline
    unless reforms replace it)."""
    scenario = Scenario(
        place,
        dt.date.fromisoformat(start) if isinstance(start, str) else start,
        dt.date.fromisoformat(end) if isinstance(end, str) else end,
        seed,
        parameters or load_parameters(),
        reforms,
    )
    population = draw_population(scenario, progress)
    return apply_policies(population, scenario.detainer_timeline(), progress)
