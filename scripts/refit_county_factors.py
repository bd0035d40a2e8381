"""Refit the calibration from the shipped joint fit, its ensemble correction reused or rerun (issues 12 and 16).

    .venv/bin/python scripts/refit_county_factors.py OUT_OVERLAY [SHIPPED_OVERLAY]
        [--ensemble-replications N] [--workers W] [--leave-one-out]

`securecomm calibrate` draws its population, fits, then runs 2 × 100 replications to correct each target's
point value for the median over replications (docs/validation.md, "How the fit works", step 5): 13–19 minutes
on a quiet machine, much longer on a loaded one; the shipped overlay is its output. This script does the fit's
steps 2–4 once, from the shipped overlay's multipliers (a new dimension starts at its source value, 1), with
each target's expected value times the shipped fit's median over point value (`ensemble_median_over_point` in
the overlay's provenance; 1 for a target the shipped fit did not have): `calibration.fit.fit` with one outer
iteration (one saturated population at the shipped multipliers, the least squares of every dimension of
calibration/settings.yaml) and its plain simulation at the fit. Without `--ensemble-replications` the
replications' correction is the shipped fit's, not recomputed; with it, one ensemble round of N replications
(the fit's own seed, on W local workers) at that fit replaces the shipped ratios by the current model's and
refits (step 5 once, with fewer replications than `calibrate`'s 100: the ratios are noisier, but a model
change since the shipped fit no longer leaves them stale). `securecomm validate` is the check. With
`--leave-one-out`, each place's figures are also predicted with its field office refitted without them
(`calibrate --leave-one-out`; kept in the overlay's provenance, where `validate --place` finds them). It
writes the overlay to OUT_OVERLAY (the package default is not touched; copy it to
parameters/calibrated/overlay.yaml to ship it).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml
from rich.console import Console

from securecomm.calibration import fit as cal
from securecomm.calibration.overlay import OVERLAY_HEADER, overlay_document
from securecomm.calibration.targets import load_all_targets, load_settings, simulation_period
from securecomm.cli.calibrate import render_held_out
from securecomm.model.parameters import calibrated_overlay_path, load_parameters
from securecomm.model.replications import Runner


def refit(shipped_overlay: Path, ensemble_replications: int = 0, workers: int = 1) -> cal.CalibrationResult:
    """The fit of every dimension from the shipped overlay's multipliers, with its ensemble ratios, or with
    ratios of one ensemble round of `ensemble_replications` replications at the fit (0: none)."""
    settings = load_settings().calibrate
    shipped = yaml.safe_load(shipped_overlay.read_text(encoding="utf-8"))["provenance"]
    targets = [t for t in load_all_targets() if t.fitted]
    sources = load_parameters(calibrated=False)
    dims = cal.dimensions(sources, settings["dimensions"], *simulation_period(targets))
    return cal.fit(
        sources,
        targets,
        dims,
        seed=int(settings["seed"]),
        outer_iterations=1,
        prior_weight=float(settings["prior_weight"]),
        objective=cal.Loss(
            float(settings["loss_exponent"]), float(settings["place_loss_exponent"]), float(settings["place_weight"])
        ),
        ensemble_rounds=1 if ensemble_replications else 0,
        ensemble_replications=ensemble_replications,
        runner=Runner(workers=workers),
        progress=print,
        ftol=float(settings["ftol"]),
        start_multipliers=[shipped["multipliers"].get(d.name, {"value": 1.0})["value"] for d in dims],
        fixed_ratios={
            target_id: entry["ensemble_median_over_point"]
            for target_id, entry in shipped["fit"].items()
            if "ensemble_median_over_point" in entry
        },
    )


def main(out: Path, shipped_overlay: Path, ensemble_replications: int, workers: int, leave_one_out: bool) -> None:
    result = refit(shipped_overlay, ensemble_replications, workers)
    held_out = cal.leave_one_place_out(load_parameters(calibrated=False), result) if leave_one_out else []
    if held_out:
        render_held_out(held_out, Console(width=160))
    document = overlay_document(result, load_all_targets(), held_out)
    correction = (
        f"its ensemble ratios (median over replications / point value) from one round of {ensemble_replications} "
        "replications at the fit"
        if ensemble_replications
        else "its ensemble ratios (median over replications / point value) reused"
    )
    document["provenance"]["generated_by"] = (
        f"scripts/refit_county_factors.py: one outer iteration from the multipliers of the overlay of "
        f"{yaml.safe_load(shipped_overlay.read_text(encoding='utf-8'))['provenance']['date']} "
        f"(its own provenance says how it was made), {correction}"
    )
    out.write_text(OVERLAY_HEADER + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=110))
    print(
        f"loss {result.loss_start:.4f} (shipped multipliers) -> {result.loss_ensemble_expected:.4f} "
        f"(fit, ratios); plain simulation at the fit {result.loss_fitted:.4f}; {result.evaluations} evaluations, "
        f"{result.seconds:.0f} s. Wrote {out}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("shipped", type=Path, nargs="?", default=calibrated_overlay_path())
    parser.add_argument("--ensemble-replications", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--leave-one-out", action="store_true")
    arguments = parser.parse_args()
    main(arguments.out, arguments.shipped, arguments.ensemble_replications, arguments.workers, arguments.leave_one_out)
