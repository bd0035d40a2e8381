"""A scenario and the pipeline: the ordered list of stages that simulates it.

Every stage keeps one contract, `stage(state, parameters, rng) -> state`
(securecomm.model.stages.state). The population stages make everything that does not depend
on local policy — bookings, matches, criminal histories, ICE's decisions, arrests on the street under
the field policies; the policy stages then run the jail, hold and removal stages under a detainer policy
timeline. A reform and its baseline share one population and read the same random streams, so
their difference is the policy, not noise.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from dataclasses import field as dataclass_field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, cast, get_args

import numpy as np
import polars as pl

from securecomm.core import places
from securecomm.core.places import resolve_place
from securecomm.core.schema import Decision
from securecomm.law.timeline import PolicyTimeline, parse_date
from securecomm.model.metrics import (
    MonthGroups,
    added,
    channel_values,
    county_sums,
    record_sums,
    rounded,
    totals,
)
from securecomm.model.parameters import Parameters, load_parameters
from securecomm.model.stages import (
    bookings,
    effects,
    field,
    iafis,
    ident,
    issuance,
    jail,
    lesc,
    other_routes,
    records,
    removal,
)
from securecomm.model.stages.state import EffectsRequest, NamedStage, OffProgram, State, Streams

# The pipeline, in order. Each stage draws from its own named streams, so the order of two
# stages matters only where one reads what the other adds.
POPULATION_STAGES = (
    NamedStage("bookings", bookings.draw_bookings),
    NamedStage("IDENT matching", ident.draw_matches),
    NamedStage("other ICE routes", other_routes.draw_detainers),
    NamedStage("field encounters", field.draw_encounters),
    # The field policies are the historical ones under every detainer policy: arrests on the street are
    # the population's, counted once for every policy run on it.
    NamedStage("field arrests", field.arrest),
    NamedStage("records", records.draw_records),
    NamedStage("current charges", bookings.draw_charges),
    NamedStage("criminal histories", iafis.draw_histories),
    NamedStage("release eligibility", jail.draw_release_eligibility),
    NamedStage("detainer forms", issuance.draw_forms),
    NamedStage("case facts", jail.draw_case_facts),
    NamedStage("LESC", lesc.determine),
    NamedStage("ICE issuance", issuance.issue),
)
POLICY_STAGES = (
    NamedStage("jail decisions", jail.decide),
    NamedStage("holds and pickups", jail.hold),
    NamedStage("ICE custody and removal", removal.draw_removals),
    # After the pipeline: what the program did to communities, only when a run asks for it.
    NamedStage("community effects", effects.estimate),
)
PIPELINE = POPULATION_STAGES + POLICY_STAGES
# The record table a run reports, in this order (the stages' working columns are left out).
RECORD_COLUMNS = (
    "record",
    "channel",
    "fips",
    "status",
    "age",
    "booking_at",
    "release_eligible_at",
    "removable",
    "ice_level",
    "issuance_label",
    "detainer_issued",
    "detainer_form",
    "known_convictions",
    "true_convictions",
    "most_serious_charge_level",
    "most_serious_charge_category",
    "jail_decision",
    "jail_policy",
    "jail_rule",
    "hold_until",
    "held",
    "hold_hours",
    "transferred",
    "transfer_at",
    "removed",
    "removal_at",
    "removal_level",
)
# Record columns whose vocabulary a run builds on the way (offense levels and ICE's labels of the eras in
# the period, the policies and rules in force): a run reports them as text, so that runs (and the parts
# of a run, `simulate(workers=...)`) put together compare and concatenate.
RUN_VOCABULARIES = ("ice_level", "issuance_label", "jail_policy", "jail_rule", "removal_level")
StageProgress = Callable[[str], None]


@dataclass(frozen=True)
class Reform:
    """From `start` (None: the scenario's start), the counties follow `policy_id` alone."""

    counties: frozenset[str]
    policy_id: str
    start: dt.date | None = None


ParticipationMode = Literal["never", "delayed", "no-detainers"]
PARTICIPATION_MODES: tuple[str, ...] = get_args(ParticipationMode)
# The library's policy for a place that sends prints but declines every detainer.
DECLINES_EVERY_DETAINER = "scenario/declines-every-detainer"


@dataclass(frozen=True)
class Participation:
    """A state's (or county's) part in the program, as Illinois, New York and Massachusetts tried to set
    it in 2011 before ICE answered (Aug 5, 2011) that no agreement was needed (docs/facts.md §1.5, §4.7):

    - `never`: from `start` (None: the scenario's start) the counties are not activated — no prints are
      checked in IDENT, and counties activated before are deactivated;
    - `delayed`: no county activates before `start` (required): each on the later of its date and `start`;
    - `no-detainers`: prints go to the FBI and IDENT as before, but from `start` (None: the scenario's
      start) the jails decline every detainer — the library's policy `DECLINES_EVERY_DETAINER`, applied
      as a `Reform`.
    """

    counties: frozenset[str]
    mode: ParticipationMode
    start: dt.date | None = None

    def __post_init__(self) -> None:
        if self.mode not in PARTICIPATION_MODES:
            raise ValueError(f"participation {self.mode!r}: expected one of {', '.join(PARTICIPATION_MODES)}")
        if self.mode == "delayed" and self.start is None:
            raise ValueError("a delayed participation needs the date activation is delayed to")

    @classmethod
    def parse(cls, spec: str) -> Participation:
        """`PLACE=MODE[@DATE]`, e.g. `IL=never@2011-05-04`."""
        place, equals, rest = spec.partition("=")
        mode, _, date_text = rest.partition("@")
        if not equals or mode.strip() not in PARTICIPATION_MODES:
            raise ValueError(
                f"--participation {spec!r}: expected PLACE=MODE[@DATE], MODE one of {', '.join(PARTICIPATION_MODES)}"
                " (e.g. IL=never@2011-05-04)"
            )
        start = parse_date(date_text, f"--participation {spec!r}") if date_text else None
        return cls(frozenset(resolve_place(place)), cast(ParticipationMode, mode.strip()), start)

    def off_program(self) -> OffProgram | None:
        """Where and when the program does not run (None: it runs, as in `no-detainers`)."""
        if self.mode == "never":
            return OffProgram(self.counties, self.start, None)
        if self.mode == "delayed":
            return OffProgram(self.counties, None, self.start)
        return None

    def describe(self) -> str:
        """In words: `102 counties: not activated from 2011-05-04`."""
        start = self.start or "the start"
        when = {
            "never": f"not activated from {start}",
            "delayed": f"activation delayed to {start}",
            "no-detainers": f"prints sent, every detainer declined from {start}",
        }[self.mode]
        return f"{len(self.counties)} count{'y' if len(self.counties) == 1 else 'ies'}: {when}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "start": None if self.start is None else self.start.isoformat(),
            "counties": sorted(self.counties),
        }

    def reform(self) -> Reform | None:
        """The jails' refusal as a reform of the policy timeline (None: the mode refuses nothing)."""
        return Reform(self.counties, DECLINES_EVERY_DETAINER, self.start) if self.mode == "no-detainers" else None


def participation_entry(participation: tuple[Participation, ...]) -> dict[str, Any]:
    """The `participation` key of a run's JSON, there only when the run has participation reforms."""
    return {"participation": [p.to_dict() for p in participation]} if participation else {}


@dataclass(frozen=True)
class Scenario:
    place: str
    start: dt.date
    end: dt.date
    seed: int = 0
    parameters: Parameters = dataclass_field(default_factory=load_parameters)
    reforms: tuple[Reform, ...] = ()
    effects: EffectsRequest = dataclass_field(default_factory=EffectsRequest)
    participation: tuple[Participation, ...] = ()

    def counties(self) -> list[str]:
        return resolve_place(self.place)

    def detainer_timeline(self, policy_id: str | None = None) -> PolicyTimeline:
        """The historical timeline with the scenario's reforms — or, given `policy_id`, that policy in every
        county of the place for the whole period — and on top, the participation reforms' refusals."""
        return _detainer_timeline(self.place, self.start, self.reforms, self.participation, policy_id)

    def off_program(self) -> tuple[OffProgram, ...]:
        """Where and when the participation reforms stop the program running."""
        return tuple(window for p in self.participation if (window := p.off_program()) is not None)

    def field_timeline(self) -> PolicyTimeline:
        return PolicyTimeline.historical("field")


@functools.lru_cache(maxsize=64)
def _detainer_timeline(
    place: str,
    start: dt.date,
    reforms: tuple[Reform, ...],
    participation: tuple[Participation, ...],
    policy_id: str | None,
) -> PolicyTimeline:
    """`Scenario.detainer_timeline`, kept (timelines are immutable): every replication of a comparison asks for
    the same timelines, each the place's counties resolved and every entry of the library's cut by them."""
    reforms = reforms if policy_id is None else (Reform(frozenset(resolve_place(place)), policy_id),)
    refusals = tuple(reform for p in participation if (reform := p.reform()) is not None)
    timeline = PolicyTimeline.historical("detainer")
    for reform in reforms + refusals:
        timeline = timeline.replace(reform.counties, reform.policy_id, reform.start or start)
    return timeline


def run_stages(
    stages: tuple[NamedStage, ...],
    state: State,
    parameters: Parameters,
    seed: int,
    progress: StageProgress | None = None,
) -> State:
    """Run stages in order, each on fresh named random streams of the seed."""
    rng = Streams(seed)
    for stage in stages:
        if progress is not None:
            progress(stage.label)
        state = stage.run(state, parameters, rng)
    return state


@dataclass(frozen=True)
class Population:
    """A scenario and the state of its pipeline before local policy acts.

    Local policy acts only on the records with a detainer issued; every policy leaves the others as they
    are (nothing to decide, hold, transfer or remove). Those are counted once here, for every policy.
    """

    scenario: Scenario
    state: State

    @property
    def segments(self) -> pl.DataFrame:
        return self.state.segments

    @cached_property
    def issued(self) -> np.ndarray:
        """The rows of the records with a detainer issued."""
        return np.flatnonzero(self.state.column("detainer_issued"))

    @cached_property
    def issued_records(self) -> pl.DataFrame:
        """The records the policy stages act on, with the columns a run reports (the population stages'
        working columns left behind)."""
        records = self.state.records
        return records.select(name for name in RECORD_COLUMNS if name in records.columns)[self.issued]

    def records_without_detainer(self) -> pl.DataFrame:
        """The records without a detainer, with the columns a run reports, as every policy leaves them."""
        issued = self.state.column("detainer_issued")
        return (
            self.state.records.filter(pl.Series(~issued))
            .with_columns(
                jail_decision=pl.lit(None, dtype=pl.Enum(Decision.labels())),
                jail_policy=pl.lit(None, dtype=pl.String),
                jail_rule=pl.lit(None, dtype=pl.String),
                hold_until=pl.lit(None, dtype=pl.Datetime("us")),
                held=pl.lit(False),
                hold_hours=pl.lit(0.0),
                transferred=pl.lit(False),
                transfer_at=pl.lit(None, dtype=pl.Datetime("us")),
                removed=pl.lit(False),
                removal_at=pl.lit(None, dtype=pl.Datetime("us")),
                removal_level=pl.col("ice_level"),
            )
            .select(RECORD_COLUMNS)
        )

    @cached_property
    def month_groups(self) -> MonthGroups:
        return MonthGroups.of(self.segments, self.state.records)

    @cached_property
    def segment_columns(self) -> dict[str, pl.Series]:
        """The segment metrics per county-month: the policy stages count records, so every policy run reads these."""
        return self.month_groups.segment_columns(self.segments)

    @cached_property
    def sums_without_detainer(self) -> dict[str, np.ndarray]:
        """The record metrics of the records without a detainer, summed per county-month and channel."""
        groups = self.month_groups
        without = groups.record_groups[~self.state.column("detainer_issued")]
        return record_sums(self.records_without_detainer(), self.scenario.end, without, groups.size)

    @cached_property
    def policy_columns(self) -> frozenset[str]:
        """The record columns the policy stages make."""
        return frozenset(RECORD_COLUMNS) - frozenset(self.issued_records.columns)

    @cached_property
    def sums_before_policy(self) -> dict[str, np.ndarray]:
        """The record metrics' sums every policy run adds to: over the records without a detainer, and over
        those with one, the metrics that read none of the columns the policy stages make (matches,
        detainers issued, on minor charges, with no conviction): the same under every policy."""
        groups = self.month_groups
        issued = record_sums(
            self.issued_records,
            self.scenario.end,
            groups.record_groups[self.issued],
            groups.size,
            wanted=lambda columns: not columns & self.policy_columns,
        )
        return added(self.sums_without_detainer, issued)


def draw_population(scenario: Scenario, progress: StageProgress | None = None) -> Population:
    """The population stages: everything drawn before local policy acts."""
    start = State(
        tuple(scenario.counties()),
        scenario.start,
        scenario.end,
        scenario.off_program(),
        field_timeline=scenario.field_timeline(),
    )
    state = run_stages(POPULATION_STAGES, start, scenario.parameters, scenario.seed, progress)
    # The policy stages read the cases of the detainers issued alone: every record's charges, convictions
    # and case are let go (most of the memory a national run holds).
    return Population(scenario, replace(state, charges=pl.DataFrame(), convictions=pl.DataFrame(), cases=None))


@dataclass(frozen=True)
class SimulationResult:
    """What a run produced: totals, per-county and per-month counts, and the records (those the policies
    acted on, and the others)."""

    scenario: Scenario
    timeline: PolicyTimeline
    county_months: pl.DataFrame
    total: dict[str, float]
    channels: dict[str, dict[str, float]]
    # The record tables (with a detainer issued, without), made or read when asked for.
    record_tables: Callable[[], tuple[pl.DataFrame, pl.DataFrame]] = dataclass_field(repr=False, compare=False)
    effects: pl.DataFrame = dataclass_field(default_factory=pl.DataFrame)  # one row per effect asked for

    @cached_property
    def _tables(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        return self.record_tables()

    @cached_property
    def issued_records(self) -> pl.DataFrame:
        """The records with a detainer issued, as the policies left them (RUN_VOCABULARIES as text)."""
        return self._tables[0]

    @cached_property
    def records(self) -> pl.DataFrame:
        """Every record, in record order: made when asked for (a comparison reads only the counts)."""
        return self.records_in_any_order().sort("record")

    def records_in_any_order(self) -> pl.DataFrame:
        """Every record, those with a detainer after the others: what a count reads (validation's targets),
        without the sort of `records` (about a tenth of a national replication's time)."""
        issued, without = self._tables
        return pl.concat([without.with_columns(pl.col(RUN_VOCABULARIES).cast(pl.String)), issued])

    def by_county(self) -> pl.DataFrame:
        return county_sums(self.county_months)

    def to_dict(self) -> dict[str, Any]:
        places = {row.pop("fips"): row for row in self.by_county().to_dicts()}
        effects = (
            {"effects": {row.pop("effect"): row for row in self.effects.to_dicts()}} if self.effects.height else {}
        )
        return {
            "place": self.scenario.place,
            "start": self.scenario.start.isoformat(),
            "end": self.scenario.end.isoformat(),
            "seed": self.scenario.seed,
            "parameters": self.scenario.parameters.label,
            "policies": sorted({entry.policy_id for entry in self.timeline.entries}),
            "total": self.total,
            "channels": self.channels,
            "places": {fips: rounded(row) for fips, row in places.items()},
            **participation_entry(self.scenario.participation),
            **effects,
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
    population: Population, timeline: PolicyTimeline, progress: StageProgress | None = None
) -> SimulationResult:
    """The policy stages under a detainer policy timeline, on the records with a detainer issued; the others
    count as the population left them."""
    run = _policy_run(population, timeline, progress)
    parameters = population.scenario.parameters
    return SimulationResult(
        population.scenario,
        timeline,
        run.county_months,
        totals(run.county_months),
        channel_values(run.sums, parameters),
        lambda: (run.issued_records_as_text(), population.records_without_detainer()),
        run.effects,
    )


@dataclass(frozen=True)
class PolicyRun:
    """The policy stages' results on a population: what a run reports, and what the parts of a run
    (`simulate(workers=...)`) send back to be put together."""

    county_months: pl.DataFrame
    sums: dict[str, np.ndarray]  # the record metrics' sums per county-month group and channel (`record_sums`)
    segments: pl.DataFrame  # the population's (the policy stages count records): what the community effects read
    issued_records: pl.DataFrame  # RECORD_COLUMNS
    effects: pl.DataFrame

    def issued_records_as_text(self) -> pl.DataFrame:
        """The records with a detainer issued as a run reports them, RUN_VOCABULARIES as text: cast only when
        asked for (a comparison reads only the counts)."""
        return self.issued_records.with_columns(pl.col(RUN_VOCABULARIES).cast(pl.String))


def _policy_run(population: Population, timeline: PolicyTimeline, progress: StageProgress | None) -> PolicyRun:
    scenario = population.scenario
    state = replace(
        population.state,
        records=population.issued_records,
        detainer_timeline=timeline,
        effects_request=scenario.effects,
    )
    state = run_stages(POLICY_STAGES, state, scenario.parameters, scenario.seed, progress)
    issued = state.records.select(RECORD_COLUMNS)
    groups = population.month_groups
    issued_sums = record_sums(
        issued,
        scenario.end,
        groups.record_groups[population.issued],
        groups.size,
        wanted=lambda columns: bool(columns & population.policy_columns),
    )
    sums = added(population.sums_before_policy, issued_sums)
    return PolicyRun(
        groups.table(population.segment_columns, sums, scenario.parameters),
        sums,
        state.segments,
        issued,
        state.effects,
    )


def simulate(
    place: str,
    start: dt.date | str,
    end: dt.date | str,
    *,
    seed: int = 0,
    reforms: tuple[Reform, ...] = (),
    parameters: Parameters | None = None,
    progress: StageProgress | None = None,
    effects: tuple[str, ...] = (),
    participation: tuple[Participation, ...] = (),
    workers: int = 1,
) -> SimulationResult:
    """Simulate Secure Communities over a place and period (the historical policy timeline
    unless reforms replace it; the real activation dates unless participation reforms change them).

    `workers` > 1 runs a place of several states in as many threads, each a part of whole states
    (`state_parts`): every state draws from its own random streams, so the numbers are those of a run
    in one thread."""
    scenario = Scenario(
        place,
        dt.date.fromisoformat(start) if isinstance(start, str) else start,
        dt.date.fromisoformat(end) if isinstance(end, str) else end,
        seed,
        parameters or load_parameters(),
        reforms,
        EffectsRequest(effects),
        participation,
    )
    parts = state_parts(scenario.counties(), workers, scenario.start.year)
    if len(parts) > 1:
        return _simulate_in_parts(scenario, parts, progress)
    population = draw_population(scenario, progress)
    return apply_policies(population, scenario.detainer_timeline(), progress)


# A county's months cost a run as much work as the records of ~940 noncitizens: measured state by state
# over the program period (2026-12-02), 0.31 ms of CPU per county and 2.1 µs per record, with 0.16 records
# per noncitizen of 2008. Parts cut by noncitizens alone gave the part of many small counties 17% more work.
NONCITIZENS_PER_COUNTY_OF_WORK = 940


def state_parts(counties: list[str], workers: int, year: int) -> list[list[str]]:
    """The counties (in FIPS order) in at most `workers` parts of whole states, in order, of about equal
    work: the records follow the noncitizen population in `year`, and each county's months add their own
    (`NONCITIZENS_PER_COUNTY_OF_WORK`)."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    states = [list(group) for _, group in itertools.groupby(counties, key=lambda fips: fips[:2])]
    if workers == 1 or len(states) == 1:
        return [counties]
    noncitizens = places.population(counties, year, clamp_year=True).get_column("noncitizen_population").fill_null(0)
    work = noncitizens.to_numpy().astype(np.float64) + NONCITIZENS_PER_COUNTY_OF_WORK
    by_state = np.add.reduceat(work, np.cumsum([0] + [len(s) for s in states[:-1]]))
    # Cut at the state boundaries where the running share comes closest to each part's end.
    share = np.r_[0.0, np.cumsum(by_state) / max(by_state.sum(), 1.0)]
    ends = np.arange(1, workers) / workers
    cuts = sorted(set(np.abs(share[None, :] - ends[:, None]).argmin(axis=1).tolist()) - {0, len(states)})
    return [
        [fips for state in states[first:last] for fips in state]
        for first, last in itertools.pairwise([0, *cuts, len(states)])
    ]


@dataclass(frozen=True)
class PartRun:
    """A part of a run (`simulate(workers=...)`): its population and what the policy stages made of it."""

    population: Population
    run: PolicyRun

    def record_tables(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        return self.run.issued_records_as_text(), self.population.records_without_detainer()


def run_part(scenario: Scenario, progress: StageProgress | None = None) -> PartRun:
    """A part of a run: its population and policy stages, without the community effects (they read the
    whole place: the run estimates them once its parts are put together)."""
    part = replace(scenario, effects=EffectsRequest())
    population = draw_population(part, progress)
    return PartRun(population, _policy_run(population, part.detainer_timeline(), progress))


def _simulate_in_parts(scenario: Scenario, parts: list[list[str]], progress: StageProgress | None) -> SimulationResult:
    """A run in parts of whole states, each in a thread of its own, put together as the run in one thread
    would have made it. NumPy's and Polars' work on whole columns lets go of the interpreter's lock, so
    the parts run side by side on the machine's cores, sharing one interpreter, its libraries and tables
    (a process per part would start an interpreter and send its records back)."""
    scenarios = [replace(scenario, place=",".join(part)) for part in parts]
    with ThreadPoolExecutor(len(parts)) as pool:  # the first part reports its stages' progress
        runs = list(pool.map(run_part, scenarios, [progress, *[None] * (len(parts) - 1)]))
    counties = scenario.counties()
    offsets = np.cumsum([0] + [run.population.state.records.height for run in runs[:-1]]).tolist()

    @functools.cache  # made once: by the effects, or when the result is asked for its records
    def record_tables() -> tuple[pl.DataFrame, pl.DataFrame]:
        # Records numbered, and counties coded, as in one run.
        tables = [run.record_tables() for run in runs]
        issued, without = (
            pl.concat(
                table[kind].with_columns(
                    pl.col("record") + pl.lit(offset, dtype=pl.UInt32), pl.col("fips").cast(pl.Enum(counties))
                )
                for table, offset in zip(tables, offsets, strict=True)
            )
            for kind in (0, 1)
        )
        return issued, without

    # Parts come in FIPS order: their county-months and groups one after another are the run's.
    months = pl.concat(run.run.county_months for run in runs).rechunk().with_columns(pl.col("fips").set_sorted())
    sums = {name: np.concatenate([run.run.sums[name] for run in runs], axis=1) for name in runs[0].run.sums}
    estimated = pl.DataFrame()
    if scenario.effects.effects:  # the effects read the issued records: put them together now
        whole = State(
            tuple(counties),
            scenario.start,
            scenario.end,
            segments=pl.concat(run.run.segments for run in runs),
            records=record_tables()[0],
            effects_request=scenario.effects,
        )
        estimated = effects.estimate(whole, scenario.parameters, Streams(scenario.seed)).effects
    return SimulationResult(
        scenario,
        scenario.detainer_timeline(),
        months,
        totals(months),
        channel_values(sums, scenario.parameters),
        record_tables,
        estimated,
    )
