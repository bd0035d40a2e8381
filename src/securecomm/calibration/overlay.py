"""The calibration overlay: the fitted values, with the fit's provenance, in
`parameters/calibrated/overlay.yaml`, which `load_parameters()` applies over the source files."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from securecomm.calibration.fit import CalibrationResult, HeldOutPrediction
from securecomm.calibration.targets import Target
from securecomm.core.files import write_text
from securecomm.model.parameters import load_parameters


def _round(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _round(inner) for key, inner in value.items()}
    if isinstance(value, float):
        return float(f"{value:.6g}")
    return value


def provenance(
    result: CalibrationResult, all_targets: Sequence[Target] = (), held_out: Sequence[HeldOutPrediction] = ()
) -> dict[str, Any]:
    """How the fit was made, what it reached and, when `held_out` is given, each place's figures predicted
    with the place left out (`validate --place` shows them)."""
    from importlib.metadata import version

    import scipy

    fitted_ids = {t.id for t in result.targets}
    document = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "generated_by": "securecomm calibrate",
        "method": (
            "scipy.optimize.least_squares (trf, bounded) over multipliers of the source values, bounded by each "
            "parameter's uncertainty range; loss = mean of |error / tolerance|^loss_exponent over the "
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
        "loss_exponent": result.objective.exponent,
        "place_loss_exponent": result.objective.place_exponent,
        "place_weight": result.objective.place_weight,
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
                **({"posterior_sd": round(result.spread[index], 6)} if result.spread else {}),
            }
            for index, (d, m) in enumerate(zip(result.dims, result.multipliers, strict=True))
        },
    }
    if held_out:
        document["leave_one_place_out"] = [prediction.to_dict() for prediction in held_out]
    return document


def overlay_document(
    result: CalibrationResult, all_targets: Sequence[Target] = (), held_out: Sequence[HeldOutPrediction] = ()
) -> dict[str, Any]:
    """The overlay: fitted values (and their uncertainty, scaled with an absolute range) with provenance."""
    entries: dict[str, Any] = {}
    for name in dict.fromkeys(d.parameter for d in result.dims):
        parameter = result.parameters[name]
        dated = [(start, _round(value)) for start, value in parameter.dated_values]
        (first_start, first_value), *later = dated
        uncertainty = {key: _round(float(value)) for key, value in parameter.uncertainty.items()}
        if "low" in uncertainty:  # already moved with the value (apply_multipliers); keep it around the rounded value
            uncertainty = {"low": min(uncertainty["low"], first_value), "high": max(uncertainty["high"], first_value)}
        entry: dict[str, Any] = {}
        if not later and first_start is None:
            entry["value"] = first_value
        else:
            entry["values"] = [{"from": start, "value": value} for start, value in dated]
        entry["uncertainty"] = uncertainty
        entries[name] = entry
    return {"provenance": provenance(result, all_targets, held_out), "parameters": entries}


OVERLAY_HEADER = (
    "# Calibrated parameter values, written by `securecomm calibrate` (docs/validation.md).\n"
    "# load_parameters() applies them over the source files in parameters/*.yaml, which keep the\n"
    "# descriptions and references. Do not edit by hand: change the sources or the targets and rerun.\n"
)


def write_overlay(
    result: CalibrationResult,
    path: Path,
    all_targets: Sequence[Target] = (),
    held_out: Sequence[HeldOutPrediction] = (),
) -> Path:
    document = overlay_document(result, all_targets, held_out)
    text = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=110)
    write_text(path, OVERLAY_HEADER + text)
    load_parameters.cache_clear()
    return path
