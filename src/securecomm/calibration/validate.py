"""Validation: the model against every published figure, as a scorecard anyone can rerun.

Each replication draws every parameter from its uncertainty range (around the calibrated
values) and a fresh seed — the same scheme as `compare`, on the same runner (model/replications.py)
— simulates the places and period the targets need once, and computes every target from that run. The
scorecard gives, per target, the published value, the model's median and 90% band over the
replications, the relative error of the median and whether it is within the target's tolerance;
series checks (calibration/settings.yaml) correlate a series of medians with the published series.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from securecomm.calibration.targets import (
    SeriesCheck,
    Target,
    TargetError,
    evaluate_targets,
    load_all_targets,
    load_settings,
    load_targets,
    place_figure_targets,
    simulation_period,
    simulation_place,
)
from securecomm.core.places import NATION, resolve_place
from securecomm.core.places import counties as county_table
from securecomm.model.parameters import Parameters, calibrated_overlay_path, load_parameters
from securecomm.model.replications import HISTORICAL, ReplicationPlan, ReplicationProgress, Runner, band
from securecomm.model.simulation import Scenario, apply_policies, draw_population
from securecomm.model.stages import ident, removal
from securecomm.model.stages.issuance import FIELD_OFFICE_FACTOR


@dataclass(frozen=True)
class Score:
    target: Target
    model_median: float
    low: float
    high: float
    rel_error: float
    within: bool

    def to_dict(self) -> dict[str, Any]:
        t = self.target
        return {
            **t.identity(),
            "start": t.start.isoformat(),
            "end": t.end.isoformat(),
            "published": _plain(t.published),
            "model_median": _plain(self.model_median),
            "low": _plain(self.low),
            "high": _plain(self.high),
            "comparison": t.comparison,
            "tolerance": t.tolerance,
            "tolerance_unit": t.tolerance_unit,
            "rel_error": round(self.rel_error, 4),
            "within": self.within,
        }


@dataclass(frozen=True)
class SeriesResult:
    check: SeriesCheck
    targets: tuple[str, ...]
    value: float
    within: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.check.id,
            "statistic": self.check.statistic,
            "targets": list(self.targets),
            "value": round(self.value, 4),
            "at_least": self.check.at_least,
            "within": self.within,
        }


def _plain(value: float) -> float | int:
    if math.isfinite(value) and float(value).is_integer() and abs(value) >= 1:
        return int(value)
    return round(float(value), 6)


def score(target: Target, values: Sequence[float]) -> Score:
    """Median and 90% band of a target's model values, its relative error and whether the median is
    within the target's tolerance (Target.within)."""
    summary = band(values)
    rel_error = (summary["median"] - target.published) / target.published
    return Score(
        target, summary["median"], summary["low"], summary["high"], rel_error, target.within(summary["median"])
    )


def series_results(scores: Sequence[Score], checks: Sequence[SeriesCheck]) -> list[SeriesResult]:
    """Pearson correlation of the medians with the published values of each series, in date order."""
    results = []
    for check in checks:
        members = sorted((s for s in scores if s.target.series == check.id), key=lambda s: s.target.start)
        if len(members) < 3:
            continue
        model = np.array([s.model_median for s in members])
        published = np.array([s.target.published for s in members])
        value = float(np.corrcoef(model, published)[0, 1])
        results.append(SeriesResult(check, tuple(s.target.id for s in members), value, bool(value >= check.at_least)))
    return results


@dataclass(frozen=True)
class FieldOfficeFit:
    """How far to trust the model in a place: its ICE field office's factor on detainers per match
    (model/parameters/issuance.yaml), its factors on the chance of removal of the transferred with and
    without a conviction on record (removal.yaml), its factor on IDENT matches per submission (ident.yaml), and
    the place figures of that field office calibration fitted."""

    office: str
    counties: int  # of the place's counties in this field office
    factor: float
    low: float
    high: float
    place_figures: int  # fitted place targets whose counties all lie in this field office
    removal_convicted: float
    removal_non_criminal: float
    ident: float

    @property
    def at_bound(self) -> bool:
        return math.isclose(self.factor, self.low) or math.isclose(self.factor, self.high)

    def to_dict(self) -> dict[str, Any]:
        return {
            "office": self.office,
            "counties": self.counties,
            "factor": round(self.factor, 4),
            "range": [round(self.low, 4), round(self.high, 4)],
            "at_bound": self.at_bound,
            "place_figures": self.place_figures,
            "removal_factors": {
                "convicted": round(self.removal_convicted, 4),
                "non_criminal": round(self.removal_non_criminal, 4),
            },
            "ident_factor": round(self.ident, 4),
        }


def field_office_fits(place: str, parameters: Parameters, targets: Sequence[Target]) -> list[FieldOfficeFit]:
    """The field offices of a place's counties, each with its fitted factor, range and the place
    figures (among `targets`, those marked `fit`) that informed it."""
    offices = dict(county_table().select("fips", "aor").iter_rows())
    mine: dict[str, int] = {}
    for county in resolve_place(place):
        mine[offices[county]] = mine.get(offices[county], 0) + 1
    informing: dict[str, int] = {}
    for target in targets:
        covered = {offices[county] for county in target.counties()}
        if target.fitted and target.place != NATION and len(covered) == 1:
            (office,) = covered
            informing[office] = informing.get(office, 0) + 1
    factor = parameters[FIELD_OFFICE_FACTOR]
    source = load_parameters(calibrated=False)[FIELD_OFFICE_FACTOR]
    # the fit's range (settings.yaml's dimension), the assumption's; replications draw a narrower one
    (low, high), *_ = [
        spec.get("range", source.bounds().multipliers())
        for spec in load_settings().calibrate["dimensions"]
        if spec["parameter"] == FIELD_OFFICE_FACTOR
    ]
    return [
        FieldOfficeFit(
            office,
            count,
            factor.value[office],
            source.value[office] * low,
            source.value[office] * high,
            informing.get(office, 0),
            parameters.value(removal.FIELD_OFFICE_CONVICTED)[office],
            parameters.value(removal.FIELD_OFFICE_NON_CRIMINAL)[office],
            parameters.value(ident.FIELD_OFFICE_FACTOR)[office],
        )
        for office, count in sorted(mine.items(), key=lambda item: -item[1])
    ]


@dataclass(frozen=True)
class HeldOutFigure:
    """A place figure as the shipped calibration predicted it with the place left out of the fit
    (`securecomm calibrate --leave-one-out`, kept in the overlay's provenance)."""

    target: Target
    fitted: float  # expected value at the joint fit
    held_out: float  # expected value with the place's figures left out
    within_held_out: bool

    @property
    def relative_error(self) -> float:
        return self.held_out / self.target.published - 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.target.id,
            "metric": self.target.metric,
            "published": self.target.published,
            "comparison": self.target.comparison,
            "fitted": self.fitted,
            "held_out": self.held_out,
            "within_held_out": self.within_held_out,
        }


def held_out_figures(targets: Sequence[Target], overlay: Path | None = None) -> list[HeldOutFigure]:
    """The leave-one-place-out predictions of `targets` in the calibrated overlay (the shipped one by
    default): none for a figure the fit did not have, or whose place spans several field offices."""
    document = yaml.safe_load((overlay or calibrated_overlay_path()).read_text(encoding="utf-8"))
    rows = {row["id"]: row for row in document["provenance"].get("leave_one_place_out", [])}
    return [
        HeldOutFigure(t, rows[t.id]["fitted"], rows[t.id]["held_out"], rows[t.id]["within_held_out"])
        for t in targets
        if t.id in rows
    ]


def median_count_error(figures: Sequence[HeldOutFigure]) -> float | None:
    """The median absolute relative error of the counts among `figures` (None without a count)."""
    errors = [abs(f.relative_error) for f in figures if f.target.tolerance_unit == "factor"]
    return float(np.median(errors)) if errors else None


NO_CONVICTION_SHARE = "removals_noncriminal_share"
# A cumulative figure counts from the program's start: its window starts within a month of it.
CUMULATIVE_START_DAYS = 31


@dataclass(frozen=True)
class NationalShare:
    """A published share of the nation's removals without a conviction, against the model's median and
    the issue-16 test (within `points` of the figure; a lower bound, not below it by more). For a
    cumulative figure, what it and the cumulative figure before it imply for the removals in between,
    weighted by the model's removals to each end (`removals`): figures that count the same way imply shares
    near each other's, and one far from its neighbours says two figures count differently."""

    target: Target
    model_median: float
    removals: float  # the model's median removals over the figure's window
    points: float
    published_since_previous: float | None = None
    model_since_previous: float | None = None

    @property
    def difference(self) -> float:
        return self.model_median - self.target.published

    @property
    def within(self) -> bool:
        if self.target.comparison == "at_least":
            return self.difference >= -self.points - 1e-9
        return abs(self.difference) <= self.points + 1e-9

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.target.identity(),
            "start": self.target.start.isoformat(),
            "end": self.target.end.isoformat(),
            "published": self.target.published,
            "comparison": self.target.comparison,
            "source": self.target.source,
            "model_median": round(self.model_median, 4),
            "difference": round(self.difference, 4),
            "within": self.within,
            "model_removals": _plain(self.removals),
            "published_since_previous": _rounded(self.published_since_previous),
            "model_since_previous": _rounded(self.model_since_previous),
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def national_share_figures(targets: Sequence[Target]) -> list[Target]:
    """The published shares of the nation's removals without a conviction among `targets`."""
    return [t for t in targets if t.metric == NO_CONVICTION_SHARE and t.place == NATION]


def removals_over(target: Target) -> Target:
    """The removals over a share's window: the weight that links two cumulative shares."""
    return replace(target, id=f"{target.id}:removals", metric="removals", use="holdout", series="")


def national_shares(
    figures: Sequence[Target], runs: Sequence[Mapping[str, float]], points: float, program_start: dt.date
) -> list[NationalShare]:
    """Each figure against the model's median over `runs`, in order of its window's end; a cumulative
    figure (counted from the program's start) with the share the previous cumulative figure and it
    imply for the removals in between: (R₂·s₂ − R₁·s₁) / (R₂ − R₁), with R the model's median removals."""
    cumulative_previous: tuple[float, float, float] | None = None  # removals, published, model
    shares = []
    for figure in sorted(figures, key=lambda t: (t.end, t.start)):
        model = band([run[figure.id] for run in runs])["median"]
        removals = band([run[removals_over(figure).id] for run in runs])["median"]
        share = NationalShare(figure, model, removals, points)
        if abs((figure.start - program_start).days) <= CUMULATIVE_START_DAYS:
            if cumulative_previous is not None and removals > cumulative_previous[0]:
                before, published_before, model_before = cumulative_previous
                added = removals - before
                share = replace(
                    share,
                    published_since_previous=(removals * figure.published - before * published_before) / added,
                    model_since_previous=(removals * model - before * model_before) / added,
                )
            cumulative_previous = (removals, figure.published, model)
        shares.append(share)
    return shares


@dataclass(frozen=True)
class Scorecard:
    scores: list[Score]
    series: list[SeriesResult]
    replications: int
    seed: int
    parameters: str
    place_figures: dict[str, dict[str, float]] | None = None
    place: str | None = None
    program: tuple[dt.date, dt.date] | None = None
    field_offices: list[FieldOfficeFit] | None = None
    held_out: list[HeldOutFigure] | None = None  # the place's figures predicted with the place left out
    national_shares: list[NationalShare] | None = None  # the nation's shares of removals without a conviction

    @property
    def within(self) -> int:
        return sum(score.within for score in self.scores)

    def summary(self) -> str:
        return f"{self.within} of {len(self.scores)} targets within tolerance"

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "targets": [s.to_dict() for s in self.scores],
            "summary": {"within": self.within, "total": len(self.scores)},
            "series": [s.to_dict() for s in self.series],
            "replications": self.replications,
            "seed": self.seed,
            "parameters": self.parameters,
        }
        if self.national_shares:
            document["national_shares_without_conviction"] = {
                "points": self.national_shares[0].points,
                "within": sum(share.within for share in self.national_shares),
                "total": len(self.national_shares),
                "figures": [share.to_dict() for share in self.national_shares],
            }
        if self.place_figures is not None and self.program is not None:
            document["place"] = {
                "place": self.place,
                "start": self.program[0].isoformat(),
                "end": self.program[1].isoformat(),
                "figures": self.place_figures,
                "field_offices": [fit.to_dict() for fit in self.field_offices or []],
                "leave_one_place_out": (
                    None
                    if self.held_out is None
                    else {
                        "figures": [figure.to_dict() for figure in self.held_out],
                        "median_absolute_error_of_counts": median_count_error(self.held_out),
                    }
                ),
            }
        return document


def run_replication(
    plan: ReplicationPlan, index: int, *, targets: Sequence[Target], parameters: Parameters
) -> dict[str, float]:
    """One replication: parameters drawn from their ranges, a fresh seed, every target's value."""
    simulation_seed, parameter_seed = plan.seeds()[index]
    drawn = (
        parameters.sample(np.random.default_rng(parameter_seed), f"replication {index}")
        if plan.vary_parameters
        else parameters
    )
    scenario = Scenario(plan.place, plan.start, plan.end, simulation_seed, drawn)
    population = draw_population(scenario)
    result = apply_policies(population, scenario.detainer_timeline())
    # The targets count records: any order will do.
    return evaluate_targets(targets, population.segments, result.records_in_any_order(), scenario.counties())


def validate(
    targets: Sequence[Target] | None = None,
    *,
    place: str | None = None,
    replications: int | None = None,
    seed: int | None = None,
    vary_parameters: bool = True,
    parameters: Parameters | None = None,
    runner: Runner | None = None,
    progress: ReplicationProgress | None = None,
) -> Scorecard:
    """The scorecard of every target (of `place`'s targets, and its figures over the program and its
    field offices' fit, if given), its replications on `runner` (by default, as many local workers as
    calibration/settings.yaml says). Without `targets`, the national targets, and with a place the
    place targets too."""
    settings = load_settings()
    everyone = list(targets if targets is not None else load_all_targets() if place else load_targets())
    chosen = everyone
    figures: list[Target] = []
    program = (settings.program_start, settings.program_end)
    if place is not None:
        wanted = set(resolve_place(place))
        chosen = [t for t in chosen if set(t.counties()) == wanted]
        figures = place_figure_targets(place.strip().upper(), *program)
    everything = chosen + figures
    if not everything:
        raise TargetError("no targets to validate")
    # The nation's shares without a conviction (issue 16's test), with the place table's when the national
    # table is the shipped one; only on a run of the nation, which a national figure would otherwise force.
    shares = (
        national_share_figures(everyone if targets is not None else load_all_targets())
        if simulation_place(everything) == NATION
        else []
    )
    scored = {t.id for t in everything}
    everything += [t for t in shares if t.id not in scored] + [removals_over(t) for t in shares]
    count = replications or settings.validate_replications
    if count < 1:
        raise ValueError("replications must be at least 1")
    first, last = simulation_period(everything)
    plan = ReplicationPlan(
        simulation_place(everything),
        first,
        last,
        (HISTORICAL,),
        count,
        settings.validate_seed if seed is None else seed,
        vary_parameters,
    )
    base = parameters or load_parameters()
    chosen_runner = runner or Runner(workers=settings.validate_workers)
    runs = chosen_runner.map(partial(run_replication, plan, targets=everything, parameters=base), count, progress)
    scores = [score(t, [run[t.id] for run in runs]) for t in chosen]
    place_figures = None
    if place is not None:
        place_figures = {figure.id: band([run[figure.id] for run in runs]) for figure in figures}
    return Scorecard(
        scores,
        series_results(scores, settings.series),
        count,
        plan.seed,
        base.label,
        place_figures,
        place.strip().upper() if place else None,
        program if place else None,
        field_office_fits(place, base, everyone) if place else None,
        # the shipped fit's predictions describe the shipped parameters only
        held_out_figures(chosen) if place and parameters is None else None,
        national_shares(shares, runs, settings.national_share_points, settings.program_start) if shares else None,
    )
