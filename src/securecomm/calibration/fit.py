"""Calibration: fit the parameters marked `calibrate: true` to the published figures marked `fit`.

Method (docs/validation.md, "How the fit works"):

1. Each fitted quantity is a *multiplier* of a parameter's source value (one per parameter, per
   dated value, or per key — `calibration/settings.yaml`), bounded by the parameter's uncertainty
   range: [1 − r, 1 + r] for a relative range, [low/value, high/value] for an absolute one — or by
   the dimension's own `range`, where the assumption's range is wider than what replications draw.
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
   sum of |error / tolerance| ** `loss_exponent` over the targets (4: close to minimising the
   worst error, which is what "within tolerance" asks, while every target still counts; a place's
   figures, many and noisy, `place_loss_exponent` and `place_weight` times), plus
   a small pull of every multiplier towards 1 (`prior_weight`, per half-range) that settles what
   the targets do not determine. The population is then redrawn at the fit (`outer_iterations`).
5. What the scorecard and `compare` report is not one run at the fitted values but the median
   over replications that each draw every parameter from its uncertainty range; products of
   uniform draws and probabilities capped at 1 put that median below the point value. So the
   fit is then corrected for the ensemble (`ensemble_rounds`): `ensemble_replications`
   replications at the current fit give each target's median over its point value, and the
   multipliers are refitted so that point value times that ratio meets the target.
6. What the fit learned sets the replications' draws: by the Laplace approximation at the fit (each
   target's misfit a normal error of which its tolerance is two standard deviations, a place's figure
   weighted as in the loss; each multiplier's range a uniform prior), each multiplier's posterior
   standard deviation (`posterior_spread`). A fitted parameter's draw range becomes the uniform range with
   the largest of its multipliers' relative spreads, never wider than its own (`learned_ranges`); the
   ensemble rounds and the overlay use it.
7. The fit is checked against a plain simulation with the same seed.

The same seed is used throughout (common random numbers), so the result is reproducible.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from securecomm.calibration.surrogate import REWEIGHTED, Surrogate, saturated
from securecomm.calibration.targets import (
    Target,
    evaluate_targets,
    load_all_targets,
    load_settings,
    simulation_period,
    simulation_place,
)
from securecomm.core.places import NATION
from securecomm.core.places import counties as county_table
from securecomm.model.parameters import Parameters, load_parameters
from securecomm.model.replications import IN_PROCESS, Runner
from securecomm.model.simulation import Scenario, apply_policies, draw_population
from securecomm.model.stages import ident, removal
from securecomm.model.stages.issuance import FIELD_OFFICE_FACTOR

# A field office's own multipliers, refitted when one of its places is left out.
FIELD_OFFICE_PARAMETERS = (
    FIELD_OFFICE_FACTOR,
    removal.FIELD_OFFICE_CONVICTED,
    removal.FIELD_OFFICE_NON_CRIMINAL,
    ident.FIELD_OFFICE_FACTOR,
)


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
    prior_weight: float | None = None  # the pull towards the source value (None: the settings' prior_weight)


def dimensions(
    sources: Parameters, specs: Sequence[Mapping[str, Any]], start: dt.date, end: dt.date, *, require_all: bool = True
) -> list[Dimension]:
    """The multipliers of a dimension spec (calibration/settings.yaml), for a fit over [start, end]."""
    result = []
    for spec in specs:
        unknown = set(spec) - {"parameter", "each_date", "each_key", "keys", "prior_weight", "range"}
        name = spec.get("parameter")
        if unknown or name not in sources.by_name:
            raise CalibrationError(f"dimension {dict(spec)}: unknown parameter or keys {sorted(unknown)}")
        if not sources[name].calibrate:
            raise CalibrationError(f"dimension {name}: the parameter is not marked 'calibrate: true'")
        if name not in REWEIGHTED:
            raise CalibrationError(
                f"dimension {name}: the calibration does not know how this parameter acts (see docs/validation.md)"
            )
        keys = tuple(spec["keys"]) if spec.get("keys") else None
        try:
            low, high = (float(v) for v in spec["range"]) if "range" in spec else sources[name].bounds().multipliers()
        except (ValueError, TypeError) as error:
            raise CalibrationError(f"dimension {name}: {error}") from None
        key_label = f"[{','.join(keys)}]" if keys else ""
        weight = float(spec["prior_weight"]) if "prior_weight" in spec else None
        if spec.get("each_key"):
            if spec.get("each_date") or keys or len(sources[name].dated_values) != 1:
                raise CalibrationError(f"dimension {name}: each_key needs one undated mapping and no keys or each_date")
            for key in sources[name].value:
                result.append(Dimension(f"{name}[{key}]", name, None, (key,), low, high, weight))
        elif spec.get("each_date"):
            for first, following, value in sources[name].periods():
                if (first is not None and first > end) or (following is not None and following <= start):
                    continue  # this value is not in force during the fitted period
                if keys and not set(keys) & set(value.get("probability", value)):
                    continue  # none of the keys in this value (an era with other labels)
                label = f"{name}{key_label}@{first.isoformat() if first else 'all'}"
                result.append(Dimension(label, name, (first,), keys, low, high, weight))
        else:
            result.append(Dimension(f"{name}{key_label}", name, None, keys, low, high, weight))
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
        probability = sources[name].fraction

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


# --- the fit ---------------------------------------------------------------------------------


def misfits(targets: Sequence[Target], values: Mapping[str, float]) -> np.ndarray:
    """Each target's error in units of its tolerance (Target.misfit)."""
    return np.array([target.misfit(values[target.id]) for target in targets])


@dataclass(frozen=True)
class Loss:
    """The fit's loss: the mean over targets of |error / tolerance| ** exponent, where a place's target
    (not the nation's) takes `place_exponent` (None: the same) and counts `place_weight` times."""

    exponent: float = 2
    place_exponent: float | None = None
    place_weight: float = 1.0

    def residuals(self, targets: Sequence[Target], values: Mapping[str, float]) -> np.ndarray:
        """Signed |misfit| ** (exponent / 2), weighted: their squares are the terms of the loss."""
        misfit = misfits(targets, values)
        place = np.array([t.place != NATION for t in targets], dtype=bool)
        exponent = np.where(place, self.exponent if self.place_exponent is None else self.place_exponent, self.exponent)
        weight = np.where(place, math.sqrt(self.place_weight), 1.0)
        return weight * np.sign(misfit) * np.abs(misfit) ** (exponent / 2)

    def __call__(self, targets: Sequence[Target], values: Mapping[str, float]) -> float:
        return float(np.mean(self.residuals(targets, values) ** 2))


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
    objective: Loss = Loss()
    ensemble_rounds: int = 0
    ensemble_replications: int = 0
    ensemble_ratios: dict[str, float] = field(default_factory=dict)  # median over replications / point value
    ensemble_values: dict[str, float] = field(default_factory=dict)  # medians of the last round, before its refit
    spread: list[float] = field(default_factory=list)  # each multiplier's posterior standard deviation
    loss_ensemble_expected: float = math.nan  # the loss of point value × ratio at the final fit
    surrogate: Surrogate | None = None  # the last population's reweighting, for predictions at other multipliers


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
    objective: Loss = Loss(),
    ensemble_rounds: int = 0,
    ensemble_replications: int = 0,
    runner: Runner = IN_PROCESS,
    progress: Callable[[str], None] | None = None,
    ftol: float = 1e-8,
    start_multipliers: Sequence[float] | None = None,
    fixed_ratios: Mapping[str, float] | None = None,
) -> CalibrationResult:
    """Fit the dimensions' multipliers to the targets (all of which are used: pass the `fit` ones).

    `start_multipliers` (default: 1, the source values) is where the fit starts; `fixed_ratios`, a
    target's median over replications / point value from an earlier fit (1 for a target it lacks),
    corrects the point values when no ensemble round is run (scripts/refit_county_factors.py)."""
    report = progress or (lambda message: None)
    began = time.perf_counter()
    targets = list(targets)
    if not targets:
        raise CalibrationError("no targets to fit")
    place = simulation_place(targets)
    start, end = simulation_period(targets)
    initial = np.ones(len(dims)) if start_multipliers is None else np.asarray(start_multipliers, dtype=np.float64)
    multipliers = np.clip(initial, [d.low for d in dims], [d.high for d in dims])
    ratios: dict[str, float] = {t.id: fixed_ratios.get(t.id, 1.0) for t in targets} if fixed_ratios else {}
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
            surrogate, sources, targets, dims, multipliers, prior_weight, objective, ratios or None, ftol
        )
        evaluations += used
        surrogate_values = surrogate.values(apply_multipliers(sources, dims, multipliers, "candidate"))
    spread = posterior_spread(surrogate, sources, targets, dims, multipliers, objective, ratios or None)
    ensemble_values: dict[str, float] = {}
    if ensemble_rounds and ensemble_replications:
        from securecomm.calibration.validate import validate

        for round_number in range(ensemble_rounds):
            current = learned_ranges(
                apply_multipliers(sources, dims, multipliers, "calibration"), dims, multipliers, spread
            )
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
                surrogate, sources, targets, dims, multipliers, prior_weight, objective, ratios, ftol
            )
            evaluations += used
        surrogate_values = surrogate.values(apply_multipliers(sources, dims, multipliers, "candidate"))
    fitted = learned_ranges(apply_multipliers(sources, dims, multipliers, "calibrated"), dims, multipliers, spread)
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
        loss_start=objective(targets, start_values),
        loss_fitted=objective(targets, fitted_values),
        loss_surrogate=objective(targets, surrogate_values),
        evaluations=evaluations,
        seconds=time.perf_counter() - began,
        seed=seed,
        place=place,
        start=start,
        end=end,
        prior_weight=prior_weight,
        outer_iterations=outer_iterations,
        objective=objective,
        ensemble_rounds=ensemble_rounds,
        ensemble_replications=ensemble_replications,
        ensemble_ratios=ratios,
        ensemble_values=ensemble_values,
        spread=[float(value) for value in spread],
        loss_ensemble_expected=(
            objective(targets, {t.id: surrogate_values[t.id] * ratios[t.id] for t in targets}) if ratios else math.nan
        ),
        surrogate=surrogate,
    )


@dataclass(frozen=True)
class HeldOutPrediction:
    """A place figure predicted by the joint fit and by a fit that left its place out."""

    target: Target
    office: str
    fitted: float  # expected value at the joint fit (times the ensemble ratio, if any)
    held_out: float  # expected value when its place's figures are left out of the fit

    def to_dict(self) -> dict[str, Any]:
        t = self.target
        return {
            **t.identity(),
            "office": self.office,
            "published": t.published,
            "fitted": round(self.fitted, 4),
            "held_out": round(self.held_out, 4),
            "within_held_out": t.within(self.held_out),
        }


def leave_one_place_out(sources: Parameters, result: CalibrationResult) -> list[HeldOutPrediction]:
    """Each place's fitted figures predicted without them: its field office's own multipliers (its factor
    on detainers, its two on removals and its factor on IDENT matches) refitted to the other targets (every other multiplier kept at the
    joint fit, which one place's figures barely move), from the fit's own population. Places spanning
    several field offices are left out."""
    from scipy.optimize import least_squares

    if result.surrogate is None:
        raise CalibrationError("the calibration result carries no population to predict from")
    surrogate, dims, joint = result.surrogate, result.dims, np.array(result.multipliers)
    ratios = result.ensemble_ratios
    office_of = dict(county_table().select("fips", "aor").iter_rows())
    own_multipliers: dict[str, list[int]] = {}
    for i, d in enumerate(dims):
        if d.parameter in FIELD_OFFICE_PARAMETERS and d.keys:
            own_multipliers.setdefault(d.keys[0], []).append(i)

    def values(multipliers: np.ndarray) -> dict[str, float]:
        expected = surrogate.values(apply_multipliers(sources, dims, multipliers, "held out"))
        return {key: value * ratios.get(key, 1.0) for key, value in expected.items()}

    by_place: dict[str, list[Target]] = {}
    for target in result.targets:
        if target.place != NATION:
            by_place.setdefault(target.place, []).append(target)
    fitted_values = values(joint)
    predictions = []
    for place, own in by_place.items():
        offices = {office_of[county] for target in own for county in target.counties()}
        if len(offices) != 1 or next(iter(offices)) not in own_multipliers:
            continue
        office = next(iter(offices))
        positions = own_multipliers[office]
        office_dims = [dims[i] for i in positions]
        rest = [t for t in result.targets if t.place != place]
        weights = np.sqrt([result.prior_weight if d.prior_weight is None else d.prior_weight for d in office_dims])
        half_ranges = np.array([(d.high - d.low) / 2 for d in office_dims])

        def residuals(
            x: np.ndarray,
            positions: list[int] = positions,
            rest: list = rest,
            weights: np.ndarray = weights,
            half_ranges: np.ndarray = half_ranges,
        ) -> np.ndarray:
            multipliers = joint.copy()
            multipliers[positions] = x
            misfit = result.objective.residuals(rest, values(multipliers))
            return np.concatenate([np.nan_to_num(misfit, nan=1e3), weights * (x - 1) / half_ranges])

        bounds = ([d.low for d in office_dims], [d.high for d in office_dims])
        solution = least_squares(residuals, joint[positions], bounds=bounds, method="trf")
        held_out = joint.copy()
        held_out[positions] = solution.x
        predicted = values(held_out)
        predictions += [HeldOutPrediction(t, office, fitted_values[t.id], predicted[t.id]) for t in own]
    return predictions


def posterior_spread(
    surrogate: Surrogate,
    sources: Parameters,
    targets: Sequence[Target],
    dims: Sequence[Dimension],
    multipliers: np.ndarray,
    objective: Loss,
    ratios: Mapping[str, float] | None,
) -> np.ndarray:
    """Each multiplier's posterior standard deviation at the fit, by the Laplace approximation: a target's
    misfit is a normal error of which its tolerance is two standard deviations (a place's figure weighted
    as in the loss), a multiplier's range a uniform prior (variance half-range² / 3). The covariance is the
    inverse of JᵀJ plus the prior's precision, J the residuals' Jacobian by forward differences on the
    surrogate; the spread is its diagonal's square root."""
    low = np.array([d.low for d in dims])
    high = np.array([d.high for d in dims])
    half_range = (high - low) / 2
    place = np.array([t.place != NATION for t in targets], dtype=bool)
    weight = 2 * np.where(place, math.sqrt(objective.place_weight), 1.0)

    def residuals(x: np.ndarray) -> np.ndarray:
        values = surrogate.values(apply_multipliers(sources, dims, x, "candidate"))
        if ratios is not None:
            values = {key: value * ratios.get(key, 1.0) for key, value in values.items()}
        return weight * np.nan_to_num(misfits(targets, values))

    at = np.clip(np.asarray(multipliers, dtype=np.float64), low, high)
    base = residuals(at)
    jacobian = np.empty((len(targets), len(dims)))
    for index in range(len(dims)):
        step = 1e-3 * half_range[index]
        if at[index] + step > high[index]:  # step inwards at the upper bound
            step = -step
        moved = at.copy()
        moved[index] += step
        jacobian[:, index] = (residuals(moved) - base) / step
    precision = jacobian.T @ jacobian + np.diag(3 / half_range**2)
    return np.sqrt(np.diag(np.linalg.inv(precision)))


def learned_ranges(
    parameters: Parameters, dims: Sequence[Dimension], multipliers: Sequence[float], spread: Sequence[float]
) -> Parameters:
    """The parameters with each fitted one's draw range narrowed to what the fit learned: a relative range of
    √3 × the largest relative spread (posterior standard deviation ÷ multiplier) among its multipliers — a
    uniform draw with that standard deviation — and never wider than its own range."""
    widest: dict[str, float] = {}
    for dim, multiplier, deviation in zip(dims, multipliers, spread, strict=True):
        relative = math.sqrt(3) * deviation / multiplier if multiplier > 0 else math.inf
        widest[dim.parameter] = max(widest.get(dim.parameter, 0.0), relative)
    by_name = dict(parameters.by_name)
    for name, relative in widest.items():
        parameter = by_name[name]
        uncertainty = parameter.uncertainty
        if "relative" in uncertainty:
            narrowed = {"relative": min(float(uncertainty["relative"]), relative)}
        else:  # an absolute range (single scalars only), around the value
            value = float(parameter.value)
            narrowed = {
                "low": max(float(uncertainty["low"]), value * (1 - relative)),
                "high": min(float(uncertainty["high"]), value * (1 + relative)),
            }
        by_name[name] = replace(parameter, uncertainty=narrowed)
    return Parameters(by_name, parameters.label)


def _least_squares(
    surrogate: Surrogate,
    sources: Parameters,
    targets: Sequence[Target],
    dims: Sequence[Dimension],
    start: np.ndarray,
    prior_weight: float,
    objective: Loss,
    ratios: Mapping[str, float] | None,
    ftol: float = 1e-8,
) -> tuple[np.ndarray, int]:
    """Multipliers minimising the loss of the surrogate's values (times `ratios`, if given), within bounds:
    the objective's loss, as least squares of its residuals (Loss.residuals); it stops when an
    iteration lowers the loss by less than `ftol` of itself."""
    from scipy.optimize import least_squares

    low = np.array([d.low for d in dims])
    high = np.array([d.high for d in dims])
    half_range = (high - low) / 2
    pull = np.sqrt([prior_weight if d.prior_weight is None else d.prior_weight for d in dims])

    def residuals(x: np.ndarray) -> np.ndarray:
        values = surrogate.values(apply_multipliers(sources, dims, x, "candidate"))
        if ratios is not None:
            values = {key: value * ratios.get(key, 1.0) for key, value in values.items()}
        misfit = objective.residuals(targets, values)
        return np.concatenate([np.nan_to_num(misfit, nan=1e3), pull * (x - 1) / half_range])

    solution = least_squares(residuals, np.clip(start, low, high), bounds=(low, high), method="trf", ftol=ftol)
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
    chosen = [t for t in (targets if targets is not None else load_all_targets()) if t.fitted]
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
        objective=Loss(
            float(settings["loss_exponent"]), float(settings["place_loss_exponent"]), float(settings["place_weight"])
        ),
        ensemble_rounds=int(settings["ensemble_rounds"] if ensemble_rounds is None else ensemble_rounds),
        ensemble_replications=int(settings["ensemble_replications"]),
        runner=runner or Runner(workers=int(settings["workers"])),
        progress=progress,
        ftol=float(settings.get("ftol", 1e-8)),
    )
