"""The community effects stage: what the program did to the places that ran it.

After the pipeline, each published estimate of `parameters/effects/studies.yaml` (docs/effects.md)
is applied to what the simulation produced — which counties were under Secure Communities, for
how many months of the period (the segments the bookings stage split at activation, after any
participation reform) and the Hispanic residents living there, aged 12+ by each county's own age
structure (core.demographics) — and, for the safety-net scenario, to the local detainer policy (the
share of detainers the jails declined).

A study's estimate is taken at its published value, or, when the run asks for draws (replications),
drawn from a normal distribution with the study's standard error from the stage's own stream, so the
bands carry the study's uncertainty beside the model's. The stage is a no-op unless effects are asked
for (`State.effects_request`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from securecomm.core.demographics import hispanic_population, hispanic_share_aged_12_plus
from securecomm.core.places import counties as county_table
from securecomm.core.units import DAYS_PER_YEAR
from securecomm.core.yamlfiles import PolicyFileError, YMap, line_of, load_yaml
from securecomm.model.parameters import Parameters, Reference
from securecomm.model.stages.state import State, Streams

MONTHS_PER_YEAR = 12
DAYS_PER_MONTH = DAYS_PER_YEAR / MONTHS_PER_YEAR
PERCENT = 100.0
KINDS = ("default", "scenario")
INPUT_KEYS = {"description", "value", "low", "high", "status", "references", "derivation"}
EFFECT_KEYS = {
    "label", "kind", "computation", "study", "table", "population", "period", "status", "estimate",
    "standard_error", "unit", "references", "evidence_of", "not_evidence_of", "why_default",
    "window_months", "direction", "range", "after", "derivation",
}  # fmt: skip
EFFECT_REQUIRED = {
    "label", "kind", "computation", "study", "table", "population", "period", "status", "unit", "references",
    "evidence_of", "not_evidence_of",
}  # fmt: skip
# `low` and `high`: a single run's 90% interval from the study's standard error alone (null when drawn per
# replication, where the band over replications carries it, or when the study gives no standard error).
EFFECT_COLUMNS = {
    "effect": pl.String,
    "value": pl.Float64,
    "applies": pl.Boolean,
    "note": pl.String,
    "low": pl.Float64,
    "high": pl.Float64,
}
# The standard normal's 95th percentile: the study's interval has the percentiles of every band (5 and 95).
STUDY_INTERVAL_Z = 1.6448536269514722


@dataclass(frozen=True)
class Input:
    """A population input of the effects (a share or a base rate), with its sourced range."""

    name: str
    value: float
    low: float
    high: float
    status: str
    references: tuple[Reference, ...]
    derivation: str


@dataclass(frozen=True)
class Effect:
    """One published effect: its study, table, population, period, status and estimate."""

    name: str
    label: str
    kind: str  # default (shown with --effects) or scenario (with --scenarios)
    computation: str
    study: str
    table: str
    population: str
    period: str
    status: str
    unit: str
    references: tuple[Reference, ...]
    evidence_of: str
    not_evidence_of: str
    estimate: float | None = None
    standard_error: float | None = None
    window_months: int | None = None
    direction: str | None = None
    published_range: tuple[float, float] | None = None
    after: dt.date | None = None
    why_default: str = ""

    @property
    def band_from_study(self) -> bool:
        return self.standard_error is not None


@dataclass(frozen=True)
class Studies:
    inputs: Mapping[str, Input]
    effects: Mapping[str, Effect]

    def names(self, kind: str) -> tuple[str, ...]:
        return tuple(name for name, effect in self.effects.items() if effect.kind == kind)


def studies_path() -> Path:
    return Path(str(resources.files("securecomm.model") / "parameters" / "effects" / "studies.yaml"))


def _references(node: Any, file: str, where: str) -> tuple[Reference, ...]:
    if not isinstance(node, list) or not node:
        raise PolicyFileError(file, line_of(node), f"{where}: needs references, each {{title, url}}")
    found = []
    for index, item in enumerate(node):
        if not isinstance(item, Mapping) or set(item) - {"title", "url"} or "title" not in item:
            raise PolicyFileError(file, line_of(node, index), f"{where}: a reference is {{title, url?}}")
        found.append(Reference(str(item["title"]), str(item.get("url", ""))))
    return tuple(found)


def _checked_keys(node: Any, allowed: set[str], required: set[str], file: str, where: str) -> YMap:
    if not isinstance(node, YMap):
        raise PolicyFileError(file, line_of(node), f"{where} must be a mapping")
    for key in node:
        if key not in allowed:
            raise PolicyFileError(file, line_of(node, key), f"{where}: unknown key '{key}'")
    missing = sorted(required - set(node))
    if missing:
        raise PolicyFileError(file, line_of(node), f"{where}: missing {', '.join(missing)}")
    return node


def load_studies(path: Path | None = None) -> Studies:
    """The published effects and their population inputs, read strictly (file and line on an error)."""
    file = "parameters/effects/studies.yaml"
    document = _checked_keys(
        load_yaml(path or studies_path(), file), {"inputs", "effects"}, {"inputs", "effects"}, file, "the file"
    )
    inputs = {}
    for name, node in document["inputs"].items():
        node = _checked_keys(node, INPUT_KEYS, INPUT_KEYS, file, f"input '{name}'")
        if not node["low"] <= node["value"] <= node["high"]:
            raise PolicyFileError(file, line_of(node, "value"), f"input '{name}': low ≤ value ≤ high")
        inputs[name] = Input(
            name, float(node["value"]), float(node["low"]), float(node["high"]), str(node["status"]),
            _references(node["references"], file, f"input '{name}'"), str(node["derivation"]),
        )  # fmt: skip
    effects = {}
    for name, node in document["effects"].items():
        node = _checked_keys(node, EFFECT_KEYS, EFFECT_REQUIRED, file, f"effect '{name}'")
        if node["kind"] not in KINDS or node["computation"] not in COMPUTATIONS:
            raise PolicyFileError(file, line_of(node), f"effect '{name}': unknown kind or computation")
        if node["kind"] == "default" and "why_default" not in node:
            raise PolicyFileError(file, line_of(node), f"effect '{name}': a default says why (why_default)")
        span = node.get("range")
        effects[name] = Effect(
            name=name,
            label=str(node["label"]),
            kind=str(node["kind"]),
            computation=str(node["computation"]),
            study=str(node["study"]),
            table=str(node["table"]),
            population=str(node["population"]),
            period=str(node["period"]),
            status=str(node["status"]),
            unit=str(node["unit"]),
            references=_references(node["references"], file, f"effect '{name}'"),
            evidence_of=str(node["evidence_of"]),
            not_evidence_of=str(node["not_evidence_of"]),
            estimate=None if node.get("estimate") is None else float(node["estimate"]),
            standard_error=None if node.get("standard_error") is None else float(node["standard_error"]),
            window_months=node.get("window_months"),
            direction=node.get("direction"),
            published_range=None if span is None else (float(span[0]), float(span[1])),
            after=node.get("after"),
            why_default=str(node.get("why_default", "")),
        )
    return Studies(inputs, effects)


@cache
def studies() -> Studies:
    """The package's studies file, read once."""
    return load_studies()


# --- what the simulation produced, per county ---------------------------------------------


def program_months(segments: pl.DataFrame, start: dt.date, window_months: int | None = None) -> pl.DataFrame:
    """Per county: months of the period under Secure Communities (`months`), and of those the ones
    within `window_months` of the county's activation (`window_months`, all of them if None).

    Activation is the date of the county's table, or, where the run's first activated segment starts
    later than both that date and the period (a delayed activation), that segment's start."""
    activated = segments.filter(pl.col("activated"))
    per_county = activated.group_by("fips").agg(
        pl.col("segment_start").min().alias("first_activated"), (pl.col("days").sum() / DAYS_PER_MONTH).alias("months")
    )
    dates = county_table().select("fips", "sc_activation_date")
    joined = per_county.join(dates, on="fips", how="left").with_columns(
        activation=pl.when(pl.col("first_activated") > pl.max_horizontal("sc_activation_date", pl.lit(start)))
        .then(pl.col("first_activated"))
        .otherwise(pl.col("sc_activation_date"))
    )
    if window_months is None:
        return joined.select("fips", "months", window_months=pl.col("months"))
    window_end = pl.col("activation").dt.offset_by(f"{window_months}mo")
    in_window = (
        activated.join(joined.select("fips", "activation"), on="fips")
        .with_columns(
            overlap=(
                pl.min_horizontal("segment_end", window_end) - pl.max_horizontal("segment_start", "activation")
            ).dt.total_days()
        )
        .group_by("fips")
        .agg((pl.col("overlap").clip(0, None).sum() / DAYS_PER_MONTH).alias("window_months"))
    )
    return joined.select("fips", "months").join(in_window, on="fips", how="left").fill_null(0.0)


NATIONAL_SHARE_12_PLUS = "hispanic_share_aged_12_plus"
SHARE_OF_10_TO_14_AGED_12_PLUS = "hispanic_share_of_10_to_14_aged_12_plus"


@dataclass(frozen=True)
class PersonMonths:
    """Hispanic residents aged 12+ × months under the program, over the counties with population data."""

    value: float
    without_population: int  # counties of the place the population table does not cover: left out
    at_national_share: int  # counties covered whose age structure is unknown: the national 12+ share

    def caveats(self) -> str:
        """What the note adds when some counties of the place lack data ("" when none do)."""
        notes = []
        if self.without_population:
            notes.append(f"{_counties(self.without_population)} without Hispanic population data left out")
        if self.at_national_share:
            notes.append(f"{_counties(self.at_national_share)} without age data at the national 12+ share")
        return "".join(f"; {note}" for note in notes)


def _counties(number: int) -> str:
    return f"{number} county" if number == 1 else f"{number} counties"


def hispanic_person_months(
    segments: pl.DataFrame, start: dt.date, window: int | None, inputs: Mapping[str, float]
) -> PersonMonths:
    """Hispanic residents aged 12+ × months under the program (within the window), summed over the
    counties the population table covers: each county's Hispanic residents (ACS 2012-2016) times its own
    share aged 12+ (core.demographics: July 1, 2019, with the 10-14 group split by the input
    `hispanic_share_of_10_to_14_aged_12_plus`), or the national share for a county the age table lacks."""
    months = program_months(segments, start, window)
    place = segments.select("fips").unique()
    covered = place.join(hispanic_population(), on="fips", how="left")
    without_population = covered.filter(pl.col("hispanic_population").is_null()).height
    shares = hispanic_share_aged_12_plus(inputs[SHARE_OF_10_TO_14_AGED_12_PLUS]).select("fips", "share_aged_12_plus")
    joined = (
        covered.drop_nulls("hispanic_population")
        .join(shares, on="fips", how="left")
        .join(months, on="fips", how="left")
        .with_columns(pl.col("window_months").fill_null(0.0))
    )
    at_national_share = joined.filter(pl.col("share_aged_12_plus").is_null()).height
    share = pl.col("share_aged_12_plus").fill_null(inputs[NATIONAL_SHARE_12_PLUS])
    value = float(joined.select((pl.col("hispanic_population") * share * pl.col("window_months")).sum()).item())
    return PersonMonths(value, without_population, at_national_share)


# --- the study's own arithmetic -----------------------------------------------------------


def relative_change(points: float, base_share: float) -> float:
    """A change in percentage points over a base share (a fraction) as a relative change:
    +0.152 pp a month on a 0.9% base is +16.9% (the study rounds its base: 0.152/0.95 = +16%)."""
    return points / PERCENT / base_share


def added_events(points: float, person_months: float) -> float:
    """Events a change of `points` percentage points a month adds over person-months at risk."""
    return points / PERCENT * person_months


def percent_of_log_points(log_points: float) -> float:
    """A difference in logs as a percent change."""
    return float(np.expm1(log_points)) * PERCENT


# --- the computations, one per kind of published estimate -----------------------------------


@dataclass(frozen=True)
class Context:
    """What an effect reads: the run's state, the study's estimate (drawn or published) and the inputs."""

    state: State
    estimate: float | None
    inputs: Mapping[str, float]
    declined_share: float
    # Hispanic person-months under the program by window (`hispanic_person_months` of the run's segments
    # and inputs): the same for every effect and every end of a study's interval, so made once a run.
    person_months: Callable[[int | None], PersonMonths]


Outcome = tuple[float | None, bool, str]  # value, applies, note
Computation = Callable[[Effect, Context], Outcome]


def _share_under_program(context: Context) -> float:
    segments = context.state.segments
    total = float(segments["days"].sum())
    return float(segments.filter(pl.col("activated"))["days"].sum()) / total if total else 0.0


def _applies(context: Context) -> bool:
    return _share_under_program(context) > 0


def _no_program(context: Context) -> Outcome:
    return 0.0, False, "no county of the place was under Secure Communities in the period"


def _percent_of_log_points(effect: Effect, context: Context) -> Outcome:
    if not _applies(context):
        return _no_program(context)
    return percent_of_log_points(context.estimate or 0.0), True, "percent change in index crime after activation"


def _victimization(effect: Effect, context: Context) -> Outcome:
    person_months = context.person_months(effect.window_months)
    if person_months.value == 0:
        return _no_program(context)
    base = context.inputs["hispanic_monthly_victimization_base"]
    note = (
        f"{added_events(context.estimate or 0.0, person_months.value):,.0f} more crimes against Hispanic residents 12+ "
        f"({relative_change(context.estimate or 0.0, base):+.0%} on a base of {base:.2%} a month)"
    )
    return added_events(context.estimate or 0.0, person_months.value), True, note + person_months.caveats()


def _reporting(effect: Effect, context: Context) -> Outcome:
    inputs = context.inputs
    person_months = context.person_months(effect.window_months)
    if person_months.value == 0:
        return _no_program(context)
    victimizations = inputs["hispanic_monthly_victimization_base"] * person_months.value
    fewer_reported = -added_events(context.estimate or 0.0, victimizations)
    return (
        fewer_reported,
        True,
        (
            f"{relative_change(context.estimate or 0.0, inputs['hispanic_reporting_base_share']):+.0%} "
            "of the share reported"
        )
        + person_months.caveats(),
    )


def _published_null(effect: Effect, context: Context) -> Outcome:
    if not _applies(context):
        return _no_program(context)
    return effect.estimate, True, "the study finds no change: more crime and less reporting cancel out"


def _elasticity_per_doubling(effect: Effect, context: Context) -> Outcome:
    if not _applies(context):
        return _no_program(context)
    return (context.estimate or 0.0) * PERCENT, True, "percent change in index crime if detainees doubled"


def _percent_under_program(effect: Effect, context: Context) -> Outcome:
    share = _share_under_program(context)
    if share == 0:
        return _no_program(context)
    return (
        (effect.estimate or 0.0) * share,
        True,
        f"the study's {effect.estimate:+g}% for the {share:.0%} of the period under the program",
    )


def _direction(effect: Effect, context: Context) -> Outcome:
    if not _applies(context):
        return _no_program(context)
    return None, True, f"{effect.direction} (size not published in the sources read)"


def _direction_unless_sanctuary(effect: Effect, context: Context) -> Outcome:
    if not _applies(context):
        return _no_program(context)
    if context.declined_share > 0:
        return (
            None,
            True,
            (
                f"{effect.direction}, muted: the jails declined or reviewed {context.declined_share:.0%} of detainers "
                "(the study finds smaller declines under sanctuary policies)"
            ),
        )
    return None, True, f"{effect.direction} (size not published in the sources read)"


def _published_range(effect: Effect, context: Context) -> Outcome:
    if not _applies(context):
        return _no_program(context)
    low, high = effect.published_range or (effect.estimate or 0.0, effect.estimate or 0.0)
    return effect.estimate, True, f"{low:+g}% to {high:+g}% for the average rise in enforcement (no standard error)"


def _not_modelled(effect: Effect, context: Context) -> Outcome:
    return None, False, "287(g) agreements are not modelled: never applied"


def _percent_after(effect: Effect, context: Context) -> Outcome:
    if effect.after is None or context.state.end < effect.after or not _applies(context):
        return 0.0, False, f"the period ends before {effect.after}"
    return effect.estimate, True, f"after {effect.after}"


COMPUTATIONS: dict[str, Computation] = {
    "percent_of_log_points": _percent_of_log_points,
    "victimization": _victimization,
    "reporting": _reporting,
    "published_null": _published_null,
    "elasticity_per_doubling": _elasticity_per_doubling,
    "percent_under_program": _percent_under_program,
    "direction": _direction,
    "direction_unless_sanctuary": _direction_unless_sanctuary,
    "published_range": _published_range,
    "not_modelled": _not_modelled,
    "percent_after": _percent_after,
}


def _declined_share(records: pl.DataFrame) -> float:
    issued = records.filter(pl.col("detainer_issued"))
    if issued.height == 0:
        return 0.0
    return issued.filter(pl.col("jail_decision") != "honor").height / issued.height


def estimate(state: State, parameters: Parameters, rng: Streams) -> State:
    """The stage: one row per requested effect (`state.effects`: effect, value, applies, note)."""
    request = state.effects_request
    if not request.effects:
        return state
    known = studies()
    unknown = sorted(set(request.effects) - set(known.effects))
    if unknown:
        raise ValueError(f"unknown effects: {', '.join(unknown)}; known: {', '.join(known.effects)}")
    draws = rng.of_run("effects")
    inputs = {
        name: float(draws.uniform(item.low, item.high)) if request.draw else item.value
        for name, item in known.inputs.items()
    }
    # Every study with a standard error is drawn, in the file's order, whichever are asked for: an
    # effect reads the same draw whatever else a run estimates.
    estimates = {
        name: float(draws.normal(effect.estimate, effect.standard_error))
        if request.draw and effect.estimate is not None and effect.standard_error is not None
        else effect.estimate
        for name, effect in known.effects.items()
    }
    declined = _declined_share(state.records)

    @cache
    def person_months(window: int | None) -> PersonMonths:
        return hispanic_person_months(state.segments, state.start, window, inputs)

    rows = []
    for name in request.effects:
        effect = known.effects[name]
        compute = COMPUTATIONS[effect.computation]
        value, applies, note = compute(effect, Context(state, estimates[name], inputs, declined, person_months))
        low = high = None
        if not request.draw and effect.band_from_study and effect.estimate is not None and value is not None:
            # One run: the place's value at either end of the study's interval (every computation is monotone
            # in the estimate), the uncertainty the replications would otherwise draw.
            spread = STUDY_INTERVAL_Z * (effect.standard_error or 0.0)
            ends = [
                compute(effect, Context(state, effect.estimate + sign * spread, inputs, declined, person_months))[0]
                for sign in (-1, 1)
            ]
            low, high = min(ends), max(ends)
        rows.append({"effect": name, "value": value, "applies": applies, "note": note, "low": low, "high": high})
    return replace(state, effects=pl.DataFrame(rows, schema=EFFECT_COLUMNS))


ALL = "all"


def select(defaults: bool, scenarios: str | None) -> tuple[str, ...]:
    """The effects a run estimates: the defaults if asked for, then the scenarios named (comma
    separated) or `all` of them."""
    known = studies()
    chosen = list(known.names("default")) if defaults else []
    if scenarios:
        names = [name.strip() for name in scenarios.split(",") if name.strip()]
        wanted = known.names("scenario") if names == [ALL] else tuple(names)
        unknown = sorted(set(wanted) - set(known.names("scenario")))
        if unknown:
            raise ValueError(f"unknown scenarios: {', '.join(unknown)}; known: {', '.join(known.names('scenario'))}")
        chosen += [name for name in wanted if name not in chosen]
    return tuple(chosen)
