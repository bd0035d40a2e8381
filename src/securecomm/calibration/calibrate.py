"""Calibration: fit the parameters marked `calibrate: true` to the published figures marked `fit`.

Method (docs/validation.md, "How the fit works"):

1. Each fitted quantity is a *multiplier* of a parameter's source value (one per parameter, per
   dated value, or per key — `calibration/settings.yaml`), bounded by the parameter's uncertainty
   range: [1 − r, 1 + r] for a relative range, [low/value, high/value] for an absolute one.
2. One population is simulated for the places and period of the fitting targets, at the
   current multipliers but with the Bernoulli stages that are fitted *saturated*: ICE issues a
   detainer to everyone it could (issuance probability 1), picks up everyone held (pickup 1)
   and removes everyone it can (removal 1). Every record then carries the stage it reached.
3. The expected value of a target under any candidate parameters is a weighted count of that
   population: a record's weight is the product of the probabilities of the stages the target
   needs (issuance for its era and label, pickup for its release date, removal for its status)
   times the likelihood ratio of its being there at all (IDENT match probability, noncitizen
   booking ratio, other-route detainer rate, candidate over simulated). Records are grouped in
   cells that share every factor, so an evaluation is a few small dot products.
4. `scipy.optimize.least_squares` (trust-region reflective, within the bounds) minimises the
   sum of |relative error / tolerance| ** `loss_exponent` over the targets (4: close to minimising
   the worst error, which is what "within tolerance" asks, while every target still counts), plus
   a small pull of every multiplier towards 1 (`prior_weight`, per half-range) that settles what
   the targets do not determine. The population is then redrawn at the fit (`outer_iterations`).
5. What the scorecard and `compare` report is not one run at the fitted values but the median
   over replications that each draw every parameter from its uncertainty range; products of
   uniform draws and probabilities capped at 1 put that median below the point value. So the
   fit is then corrected for the ensemble (`ensemble_rounds`): `ensemble_replications`
   replications at the current fit give each target's median over its point value, and the
   multipliers are refitted so that point value times that ratio meets the target.
6. The fit is checked against a plain simulation with the same seed.

The same seed is used throughout (common random numbers), so the result is reproducible.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import yaml

from securecomm.calibration.targets import (
    COUNTS,
    SHARES,
    Target,
    count_mask,
    evaluate_targets,
    load_settings,
    load_targets,
    simulation_period,
    simulation_place,
)
from securecomm.core.files import write_text
from securecomm.core.places import counties as county_table
from securecomm.model.metrics import Metric
from securecomm.model.parameters import (
    PROBABILITY_PARAMETERS,
    STATUSES,
    Parameters,
    load_parameters,
)
from securecomm.model.replications import IN_PROCESS, Runner
from securecomm.model.simulation import Scenario, apply_policies, draw_population
from securecomm.model.stages.iafis import ident_match_share_with_conviction
from securecomm.model.stages.removal import removal_chance

# The parameters whose effect the reweighting knows (step 3 above).
RATIO = "noncitizen_booking_ratio"
IDENT = "ident_record_probability"
IDENT_CONVICTION_RATIO = "ident_record_ratio_prior_conviction"
SUBMISSION = "fingerprint_submission_share"
OTHER_ROUTES = "other_route_detainers_per_noncitizen_booking"
ISSUANCE = "issuance_eras"
PICKUP = "ice_pickup_probability"
REMOVAL = "removal_probability"
LEVEL_1_REMOVAL = "level_1_removal_probability"
FITTABLE = (RATIO, SUBMISSION, IDENT, IDENT_CONVICTION_RATIO, OTHER_ROUTES, ISSUANCE, PICKUP, REMOVAL)
NONCITIZEN_CODES = (0, 1, 2)  # STATUSES[:3]


class CalibrationError(ValueError):
    """The calibration settings do not fit the parameters or the targets."""


# --- dimensions: multipliers of source values --------------------------------------------------


@dataclass(frozen=True)
class Dimension:
    """One multiplier: of `parameter`'s dated values starting on `dates` (None: all), at `keys` (None: all)."""

    name: str
    parameter: str
    dates: tuple[dt.date | None, ...] | None
    keys: tuple[str, ...] | None
    low: float
    high: float


def _bounds(parameters: Parameters, name: str) -> tuple[float, float]:
    parameter = parameters[name]
    if "relative" in parameter.uncertainty:
        relative = parameter.uncertainty["relative"]
        return 1 - relative, 1 + relative
    value = parameter.value
    if not value:
        raise CalibrationError(f"{name}: an absolute range around 0 cannot be turned into a multiplier")
    return parameter.uncertainty["low"] / value, parameter.uncertainty["high"] / value


def dimensions(
    sources: Parameters, specs: Sequence[Mapping[str, Any]], start: dt.date, end: dt.date, *, require_all: bool = True
) -> list[Dimension]:
    """The multipliers of a dimension spec (calibration/settings.yaml), for a fit over [start, end]."""
    result = []
    for spec in specs:
        unknown = set(spec) - {"parameter", "each_date", "keys"}
        name = spec.get("parameter")
        if unknown or name not in sources.by_name:
            raise CalibrationError(f"dimension {dict(spec)}: unknown parameter or keys {sorted(unknown)}")
        if not sources[name].calibrate:
            raise CalibrationError(f"dimension {name}: the parameter is not marked 'calibrate: true'")
        if name not in FITTABLE:
            raise CalibrationError(
                f"dimension {name}: the calibration does not know how this parameter acts (see docs/validation.md)"
            )
        keys = tuple(spec["keys"]) if spec.get("keys") else None
        low, high = _bounds(sources, name)
        key_label = f"[{','.join(keys)}]" if keys else ""
        dated = sources[name].dated_values
        if spec.get("each_date"):
            for index, (first, value) in enumerate(dated):
                following = dated[index + 1][0] if index + 1 < len(dated) else None
                if (first is not None and first > end) or (following is not None and following <= start):
                    continue  # this value is not in force during the fitted period
                if keys and not set(keys) & set(value.get("probability", value)):
                    continue  # none of the keys in this value (an era with other labels)
                label = f"{name}{key_label}@{first.isoformat() if first else 'all'}"
                result.append(Dimension(label, name, (first,), keys, low, high))
        else:
            result.append(Dimension(f"{name}{key_label}", name, None, keys, low, high))
    if require_all:
        missing = {name for name, p in sources.by_name.items() if p.calibrate} - {d.parameter for d in result}
        if missing:
            raise CalibrationError(
                f"parameters marked 'calibrate: true' without a dimension: {', '.join(sorted(missing))}"
            )
    return result


def _scaled(value: Any, factor: Callable[[str | None], float], clip: Callable[[float], float]) -> Any:
    if isinstance(value, Mapping) and "classification" in value:
        return {**value, "probability": {k: clip(v * factor(k)) for k, v in value["probability"].items()}}
    if isinstance(value, Mapping):
        return {k: clip(v * factor(k)) for k, v in value.items()}
    return clip(value * factor(None))


def apply_multipliers(
    sources: Parameters, dims: Sequence[Dimension], multipliers: Sequence[float], label: str
) -> Parameters:
    """The source parameters with each dimension's multiplier applied (probabilities kept ≤ 1)."""
    by_parameter: dict[str, list[tuple[Dimension, float]]] = {}
    for dim, multiplier in zip(dims, multipliers, strict=True):
        by_parameter.setdefault(dim.parameter, []).append((dim, float(multiplier)))
    new_values = {}
    for name, pairs in by_parameter.items():
        probability = name in PROBABILITY_PARAMETERS

        def clip(v: float, probability: bool = probability) -> float:
            return min(max(v, 0.0), 1.0) if probability else max(v, 0.0)

        dated = []
        for start, value in sources[name].dated_values:

            def factor(key: str | None, start: dt.date | None = start, pairs: list = pairs) -> float:
                product = 1.0
                for dim, multiplier in pairs:
                    if (dim.dates is None or start in dim.dates) and (dim.keys is None or key in dim.keys):
                        product *= multiplier
                return product

            dated.append((start, _scaled(value, factor, clip)))
        new_values[name] = tuple(dated)
    moved = sources.replace_values(new_values, label)
    by_name = dict(moved.by_name)
    for name, pairs in by_parameter.items():
        uncertainty = sources[name].uncertainty
        if "low" in uncertainty:  # an absolute range (single scalars only) moves with the value it surrounds
            scale = math.prod(multiplier for _, multiplier in pairs)
            value = by_name[name].value
            by_name[name] = replace(
                by_name[name],
                uncertainty={
                    "low": min(uncertainty["low"] * scale, value),
                    "high": max(uncertainty["high"] * scale, value),
                },
            )
    return Parameters(by_name, label)


def saturated(parameters: Parameters) -> Parameters:
    """The fitted Bernoulli stages set to certainty: every possible detainer, pickup and removal."""

    def ones(value: Any) -> Any:
        if isinstance(value, Mapping) and "classification" in value:
            return {**value, "probability": dict.fromkeys(value["probability"], 1.0)}
        if isinstance(value, Mapping):
            return {key: (1.0 if v > 0 else 0.0) for key, v in value.items()}
        return 1.0

    return parameters.replace_values(
        {
            name: tuple((start, ones(v)) for start, v in parameters[name].dated_values)
            for name in (ISSUANCE, PICKUP, REMOVAL, LEVEL_1_REMOVAL)
        },
        f"{parameters.label} (saturated)",
    )


# --- the reweighted population ------------------------------------------------------------------


def _entry_index(parameters: Parameters, name: str, days: np.ndarray) -> np.ndarray:
    starts = np.array([np.datetime64(start or "1900-01-01", "D") for start, _ in parameters[name].dated_values])
    return np.maximum(np.searchsorted(starts, days.astype("datetime64[D]"), side="right") - 1, 0)


@dataclass
class Surrogate:
    """Expected values of targets under candidate parameters, from one saturated population."""

    base: Parameters  # the (unsaturated) parameters the population was drawn with
    # one row per cell: status, sc, activated, match_record, other_entry, era, label, level_1, pickup_entry
    cells: pl.DataFrame
    targets: list[Target]
    constants: dict[str, float]  # targets evaluated on the segments (stocks, segment counts)
    vectors: dict[str, tuple[tuple[str, np.ndarray], tuple[str, np.ndarray] | None]] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        base: Parameters,
        segments: pl.DataFrame,
        records: pl.DataFrame,
        targets: Sequence[Target],
        simulated: list[str],
    ) -> Surrogate:
        activation = county_table().select(pl.col("fips"), pl.col("sc_activation_date"))
        frame = records.with_columns(pl.col("fips").cast(pl.String).alias("fips_code")).join(
            activation.rename({"fips": "fips_code"}), on="fips_code", how="left"
        )
        booking_days = frame.get_column("booking_at").to_numpy().astype("datetime64[D]")
        release_days = frame.get_column("release_eligible_at").to_numpy().astype("datetime64[D]")
        keys = pl.DataFrame(
            {
                "status": frame.get_column("status").to_physical().cast(pl.Int64),
                "sc": frame.get_column("channel") == "secure_communities",
                "activated": (
                    frame.get_column("booking_at").dt.date() >= frame.get_column("sc_activation_date")
                ).fill_null(False),
                # 1: an unauthorized IDENT match without a prior conviction, 2: with one, 0: anyone else
                "match_record": np.where(
                    (
                        (frame.get_column("channel") == "secure_communities")
                        & (frame.get_column("status") == "unauthorized")
                    ).to_numpy(),
                    1 + (frame.get_column("true_convictions").to_numpy() > 0),
                    0,
                ),
                "other_entry": _entry_index(base, OTHER_ROUTES, booking_days),
                "era": _entry_index(base, ISSUANCE, booking_days),
                "label": frame.get_column("issuance_label").fill_null(""),
                "level_1": frame.get_column("ice_level") == "level_1",
                "pickup_entry": _entry_index(base, PICKUP, release_days),
            }
        )
        cells = keys.unique(maintain_order=True).with_row_index("cell")
        cell_of = (
            keys.join(cells, on=list(keys.columns), how="left", maintain_order="left").get_column("cell").to_numpy()
        )
        surrogate = cls(base, cells.drop("cell"), list(targets), {})
        record_targets = [t for t in targets if t.metric in COUNTS or t.metric in SHARES]
        constant_targets = [t for t in targets if t not in record_targets]
        surrogate.constants = evaluate_targets(constant_targets, segments, records, simulated)
        size = cells.height

        def vector(target: Target, count: Metric) -> tuple[str, np.ndarray]:
            codes = target.counties()
            chosen = None if len(codes) == len(simulated) else codes
            mask = count_mask(records, count, target.channel, chosen, target.start, target.end)
            return count.stage, np.bincount(cell_of[mask], minlength=size).astype(np.float64)

        for target in record_targets:
            if target.metric in COUNTS:
                surrogate.vectors[target.id] = (vector(target, COUNTS[target.metric]), None)
            else:
                share = SHARES[target.metric]
                surrogate.vectors[target.id] = (vector(target, share.numerator), vector(target, share.denominator))
        return surrogate

    def stage_weights(self, candidate: Parameters) -> dict[str, np.ndarray]:
        """Each cell's weight at each stage under candidate parameters."""
        base = self.base
        status = self.cells.get_column("status").to_numpy()
        sc = self.cells.get_column("sc").to_numpy()
        noncitizen = np.isin(status, NONCITIZEN_CODES)
        ratio = np.where(noncitizen, candidate.value(RATIO) / base.value(RATIO), 1.0)
        ident_new = np.array([candidate.value(IDENT)[s] for s in STATUSES])[status]
        ident_old = np.array([base.value(IDENT)[s] for s in STATUSES])[status]
        match_ratio = np.divide(ident_new, ident_old, out=np.zeros_like(ident_new), where=ident_old > 0)

        def rates(parameters: Parameters) -> np.ndarray:
            entries = parameters[OTHER_ROUTES].dated_values
            return np.array([[min(max(v["not_activated"], 0), 1), min(max(v["activated"], 0), 1)] for _, v in entries])

        entry = self.cells.get_column("other_entry").to_numpy()
        activated = self.cells.get_column("activated").to_numpy().astype(np.int64)
        rate_new, rate_old = rates(candidate)[entry, activated], rates(base)[entry, activated]
        route_ratio = np.divide(rate_new, rate_old, out=np.zeros_like(rate_new), where=rate_old > 0)
        with_conviction_new = ident_match_share_with_conviction(candidate.value(IDENT)["unauthorized"], candidate)
        with_conviction_old = ident_match_share_with_conviction(base.value(IDENT)["unauthorized"], base)
        match_record = self.cells.get_column("match_record").to_numpy()
        record_ratio = np.select(
            [match_record == 1, match_record == 2],
            [
                (1 - with_conviction_new) / (1 - with_conviction_old) if with_conviction_old < 1 else 0.0,
                with_conviction_new / with_conviction_old if with_conviction_old > 0 else 0.0,
            ],
            1.0,
        )
        submitted = candidate.value(SUBMISSION) / base.value(SUBMISSION)
        # In an activated county an other-route record is a noncitizen IDENT did not match:
        # submitted and missed, or never submitted. Elsewhere nobody is checked.
        not_matched_old = 1 - base.value(SUBMISSION) * ident_old
        not_matched_new = 1 - candidate.value(SUBMISSION) * ident_new
        other_route_ratio = np.divide(
            not_matched_new, not_matched_old, out=np.zeros_like(ident_new), where=not_matched_old > 0
        )
        other_route_ratio = np.where(activated == 1, other_route_ratio, 1.0)
        presence = ratio * record_ratio * np.where(sc, submitted * match_ratio, other_route_ratio * route_ratio)

        eras = candidate[ISSUANCE].dated_values
        era = self.cells.get_column("era").to_numpy()
        labels = self.cells.get_column("label").to_list()
        issue = np.array(
            [eras[e][1]["probability"].get(label, 0.0) for e, label in zip(era, labels, strict=True)], dtype=np.float64
        )
        issue = np.where(sc, issue, 1.0)
        pickup_values = np.array([value for _, value in candidate[PICKUP].dated_values], dtype=np.float64)
        pickup = np.clip(pickup_values[self.cells.get_column("pickup_entry").to_numpy()], 0, 1)
        removal = removal_chance(status, self.cells.get_column("level_1").to_numpy(), candidate)
        weights = {"match": presence}
        weights["issue"] = weights["match"] * issue
        weights["pickup"] = weights["issue"] * pickup
        weights["removal"] = weights["pickup"] * removal
        return weights

    def values(self, candidate: Parameters) -> dict[str, float]:
        weights = self.stage_weights(candidate)
        values = dict(self.constants)
        submitted = candidate.value(SUBMISSION) / self.base.value(SUBMISSION)
        for target in self.targets:
            if target.metric == "fingerprints_checked":  # the one segment count a fitted parameter moves
                values[target.id] *= submitted
        for target_id, (numerator, denominator) in self.vectors.items():
            top = float(numerator[1] @ weights[numerator[0]])
            if denominator is None:
                values[target_id] = top
            else:
                bottom = float(denominator[1] @ weights[denominator[0]])
                values[target_id] = top / bottom if bottom else math.nan
        return values


# --- the fit ---------------------------------------------------------------------------------


def relative_errors(targets: Sequence[Target], values: Mapping[str, float]) -> np.ndarray:
    """Relative error of each target; a lower bound (`at_least`) has none when the model is above it."""
    errors = []
    for target in targets:
        error = (values[target.id] - target.published) / target.published
        if target.comparison == "at_least":
            error = min(error, 0.0)
        errors.append(error)
    return np.array(errors)


def loss(targets: Sequence[Target], values: Mapping[str, float], exponent: float = 2) -> float:
    """Mean of |relative error / tolerance| ** exponent over the targets."""
    scaled = relative_errors(targets, values) / np.array([t.tolerance for t in targets])
    return float(np.mean(np.abs(scaled) ** exponent))


@dataclass(frozen=True)
class CalibrationResult:
    parameters: Parameters
    dims: list[Dimension]
    multipliers: list[float]
    targets: list[Target]
    start_values: dict[str, float]
    fitted_values: dict[str, float]  # a plain simulation at the fit, same seed
    surrogate_values: dict[str, float]
    loss_start: float
    loss_fitted: float
    loss_surrogate: float
    evaluations: int
    seconds: float
    seed: int
    place: str
    start: dt.date
    end: dt.date
    prior_weight: float
    outer_iterations: int
    loss_exponent: float = 2
    ensemble_rounds: int = 0
    ensemble_replications: int = 0
    ensemble_ratios: dict[str, float] = field(default_factory=dict)  # median over replications / point value
    ensemble_values: dict[str, float] = field(default_factory=dict)  # medians of the last round, before its refit
    loss_ensemble_expected: float = math.nan  # the loss of point value × ratio at the final fit


def _simulate(parameters: Parameters, place: str, start: dt.date, end: dt.date, seed: int) -> tuple:
    scenario = Scenario(place, start, end, seed, parameters)
    population = draw_population(scenario)
    result = apply_policies(population, scenario.detainer_timeline())
    return population.segments, result.records, scenario.counties()


def fit(
    sources: Parameters,
    targets: Sequence[Target],
    dims: Sequence[Dimension],
    *,
    seed: int,
    outer_iterations: int,
    prior_weight: float,
    loss_exponent: float = 2,
    ensemble_rounds: int = 0,
    ensemble_replications: int = 0,
    runner: Runner = IN_PROCESS,
    progress: Callable[[str], None] | None = None,
) -> CalibrationResult:
    """Fit the dimensions' multipliers to the targets (all of which are used: pass the `fit` ones)."""
    report = progress or (lambda message: None)
    began = time.perf_counter()
    targets = list(targets)
    if not targets:
        raise CalibrationError("no targets to fit")
    place = simulation_place(targets)
    start, end = simulation_period(targets)
    multipliers = np.clip(np.ones(len(dims)), [d.low for d in dims], [d.high for d in dims])
    evaluations = 0
    start_values: dict[str, float] = {}
    surrogate_values: dict[str, float] = {}
    for iteration in range(outer_iterations):
        current = apply_multipliers(sources, dims, multipliers, "calibration")
        report(f"iteration {iteration + 1}/{outer_iterations}: simulating {place} {start} → {end}")
        segments, records, simulated = _simulate(saturated(current), place, start, end, seed)
        surrogate = Surrogate.build(current, segments, records, targets, simulated)
        if iteration == 0:
            start_values = surrogate.values(current)

        report(
            f"iteration {iteration + 1}/{outer_iterations}: fitting {len(dims)} multipliers to {len(targets)} targets"
        )
        multipliers, used = _least_squares(
            surrogate, sources, targets, dims, multipliers, prior_weight, loss_exponent, None
        )
        evaluations += used
        surrogate_values = surrogate.values(apply_multipliers(sources, dims, multipliers, "candidate"))
    ratios: dict[str, float] = {}
    ensemble_values: dict[str, float] = {}
    if ensemble_rounds and ensemble_replications:
        from securecomm.calibration.validate import validate

        for round_number in range(ensemble_rounds):
            current = apply_multipliers(sources, dims, multipliers, "calibration")
            point = surrogate.values(current)

            def done(count: int, total: int, round_number: int = round_number) -> None:
                report(f"ensemble {round_number + 1}/{ensemble_rounds}: replication {count}/{total}")

            # The scorecard's replications at the current fit: the places, period and seeds of the fit.
            card = validate(
                targets, replications=ensemble_replications, seed=seed, parameters=current, runner=runner, progress=done
            )
            ensemble_values = {s.target.id: s.model_median for s in card.scores}
            ratios = {t.id: ensemble_values[t.id] / point[t.id] if point[t.id] else 1.0 for t in targets}
            report(f"ensemble {round_number + 1}/{ensemble_rounds}: refitting the medians")
            multipliers, used = _least_squares(
                surrogate, sources, targets, dims, multipliers, prior_weight, loss_exponent, ratios
            )
            evaluations += used
        surrogate_values = surrogate.values(apply_multipliers(sources, dims, multipliers, "candidate"))
    fitted = apply_multipliers(sources, dims, multipliers, "calibrated")
    report("checking the fit with a plain simulation")
    segments, records, simulated = _simulate(fitted, place, start, end, seed)
    fitted_values = evaluate_targets(targets, segments, records, simulated)
    return CalibrationResult(
        parameters=fitted,
        dims=list(dims),
        multipliers=[float(m) for m in multipliers],
        targets=targets,
        start_values=start_values,
        fitted_values=fitted_values,
        surrogate_values=surrogate_values,
        loss_start=loss(targets, start_values, loss_exponent),
        loss_fitted=loss(targets, fitted_values, loss_exponent),
        loss_surrogate=loss(targets, surrogate_values, loss_exponent),
        evaluations=evaluations,
        seconds=time.perf_counter() - began,
        seed=seed,
        place=place,
        start=start,
        end=end,
        prior_weight=prior_weight,
        outer_iterations=outer_iterations,
        loss_exponent=loss_exponent,
        ensemble_rounds=ensemble_rounds,
        ensemble_replications=ensemble_replications,
        ensemble_ratios=ratios,
        ensemble_values=ensemble_values,
        loss_ensemble_expected=(
            loss(targets, {t.id: surrogate_values[t.id] * ratios[t.id] for t in targets}, loss_exponent)
            if ratios
            else math.nan
        ),
    )


def _least_squares(
    surrogate: Surrogate,
    sources: Parameters,
    targets: Sequence[Target],
    dims: Sequence[Dimension],
    start: np.ndarray,
    prior_weight: float,
    exponent: float,
    ratios: Mapping[str, float] | None,
) -> tuple[np.ndarray, int]:
    """Multipliers minimising the loss of the surrogate's values (times `ratios`, if given), within bounds:
    the sum of |relative error / tolerance| ** exponent, as least squares of signed |·| ** (exponent / 2)."""
    from scipy.optimize import least_squares

    low = np.array([d.low for d in dims])
    high = np.array([d.high for d in dims])
    half_range = (high - low) / 2
    tolerance = np.array([t.tolerance for t in targets])

    def residuals(x: np.ndarray) -> np.ndarray:
        values = surrogate.values(apply_multipliers(sources, dims, x, "candidate"))
        if ratios is not None:
            values = {key: value * ratios.get(key, 1.0) for key, value in values.items()}
        misfit = relative_errors(targets, values) / tolerance
        misfit = np.sign(misfit) * np.abs(misfit) ** (exponent / 2)
        return np.concatenate([np.nan_to_num(misfit, nan=1e3), math.sqrt(prior_weight) * (x - 1) / half_range])

    solution = least_squares(residuals, np.clip(start, low, high), bounds=(low, high), method="trf")
    return solution.x, int(solution.nfev)


def calibrate(
    targets: Sequence[Target] | None = None,
    *,
    seed: int | None = None,
    ensemble_rounds: int | None = None,
    runner: Runner | None = None,
    progress: Callable[[str], None] | None = None,
) -> CalibrationResult:
    """Fit the parameters marked `calibrate: true` to the `fit` targets, with calibration/settings.yaml's settings."""
    settings = load_settings().calibrate
    chosen = [t for t in (targets if targets is not None else load_targets()) if t.fitted]
    if not chosen:
        raise CalibrationError("no target is marked 'fit'")
    sources = load_parameters(calibrated=False)
    first, last = simulation_period(chosen)
    dims = dimensions(sources, settings["dimensions"], first, last)
    return fit(
        sources,
        chosen,
        dims,
        seed=int(settings["seed"] if seed is None else seed),
        outer_iterations=int(settings["outer_iterations"]),
        prior_weight=float(settings["prior_weight"]),
        loss_exponent=float(settings["loss_exponent"]),
        ensemble_rounds=int(settings["ensemble_rounds"] if ensemble_rounds is None else ensemble_rounds),
        ensemble_replications=int(settings["ensemble_replications"]),
        runner=runner or Runner(workers=int(settings["workers"])),
        progress=progress,
    )


# --- the overlay -----------------------------------------------------------------------------


def _round(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _round(inner) for key, inner in value.items()}
    if isinstance(value, float):
        return float(f"{value:.6g}")
    return value


def provenance(result: CalibrationResult, all_targets: Sequence[Target] = ()) -> dict[str, Any]:
    from importlib.metadata import version

    import scipy

    fitted_ids = {t.id for t in result.targets}
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "generated_by": "securecomm calibrate",
        "method": (
            "scipy.optimize.least_squares (trf, bounded) over multipliers of the source values, bounded by each "
            "parameter's uncertainty range; loss = mean of |relative error / tolerance|^loss_exponent over the "
            "fitting targets, plus prior_weight * ((multiplier - 1) / half-range)^2 per multiplier; targets evaluated "
            "as expected "
            "values over a saturated simulated population (reweighted), redrawn each outer iteration; one seed "
            "throughout (common random numbers). docs/validation.md"
        ),
        "seed": result.seed,
        "place": result.place,
        "period": [result.start.isoformat(), result.end.isoformat()],
        "outer_iterations": result.outer_iterations,
        "prior_weight": result.prior_weight,
        "loss_exponent": result.loss_exponent,
        "evaluations": result.evaluations,
        "seconds": round(result.seconds, 1),
        "versions": {"securecomm": version("securecomm"), "scipy": scipy.__version__, "numpy": np.__version__},
        "targets_fitted": sorted(fitted_ids),
        "targets_held_out": sorted(t.id for t in all_targets if t.id not in fitted_ids),
        "ensemble": {"rounds": result.ensemble_rounds, "replications": result.ensemble_replications},
        "loss": {
            "start": round(result.loss_start, 6),
            "fitted_expected": round(result.loss_surrogate, 6),
            "fitted_simulated": round(result.loss_fitted, 6),
            "fitted_ensemble_median_expected": (
                None if math.isnan(result.loss_ensemble_expected) else round(result.loss_ensemble_expected, 6)
            ),
        },
        "fit": {
            t.id: {
                "published": t.published,
                "start": round(result.start_values[t.id], 6),
                "fitted": round(result.fitted_values[t.id], 6),
                "relative_error": round((result.fitted_values[t.id] - t.published) / t.published, 4),
                **(
                    {"ensemble_median_over_point": round(result.ensemble_ratios[t.id], 4)}
                    if t.id in result.ensemble_ratios
                    else {}
                ),
            }
            for t in result.targets
        },
        "multipliers": {
            d.name: {
                "value": round(m, 6),
                "low": round(d.low, 6),
                "high": round(d.high, 6),
                "at_bound": bool(math.isclose(m, d.low, rel_tol=1e-4) or math.isclose(m, d.high, rel_tol=1e-4)),
            }
            for d, m in zip(result.dims, result.multipliers, strict=True)
        },
    }


def overlay_document(result: CalibrationResult, all_targets: Sequence[Target] = ()) -> dict[str, Any]:
    """The overlay: fitted values (and their uncertainty, scaled with an absolute range) with provenance."""
    entries: dict[str, Any] = {}
    for name in dict.fromkeys(d.parameter for d in result.dims):
        parameter = result.parameters[name]
        dated = [(start, _round(value)) for start, value in parameter.dated_values]
        uncertainty = {key: _round(float(value)) for key, value in parameter.uncertainty.items()}
        if "low" in uncertainty:  # already moved with the value (apply_multipliers); keep it around the rounded value
            uncertainty = {"low": min(uncertainty["low"], dated[0][1]), "high": max(uncertainty["high"], dated[0][1])}
        entry: dict[str, Any] = {}
        if len(dated) == 1 and dated[0][0] is None:
            entry["value"] = dated[0][1]
        else:
            entry["values"] = [{"from": start, "value": value} for start, value in dated]
        entry["uncertainty"] = uncertainty
        entries[name] = entry
    return {"provenance": provenance(result, all_targets), "parameters": entries}


OVERLAY_HEADER = (
    "# Calibrated parameter values, written by `securecomm calibrate` (docs/validation.md).\n"
    "# load_parameters() applies them over the source files in parameters/*.yaml, which keep the\n"
    "# descriptions and references. Do not edit by hand: change the sources or the targets and rerun.\n"
)


def write_overlay(result: CalibrationResult, path: Path, all_targets: Sequence[Target] = ()) -> Path:
    text = yaml.safe_dump(overlay_document(result, all_targets), sort_keys=False, allow_unicode=True, width=110)
    write_text(path, OVERLAY_HEADER + text)
    load_parameters.cache_clear()
    return path
