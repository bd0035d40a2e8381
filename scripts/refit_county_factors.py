"""Refit the calibration from the shipped joint fit, its ensemble correction reused (issues 12 and 16).

    .venv/bin/python scripts/refit_county_factors.py OUT_OVERLAY [SHIPPED_OVERLAY]

`securecomm calibrate` draws its population, fits, then runs 2 × 100 replications to correct each
target's point value for the median over replications (docs/validation.md, "How the fit works", step
5): 49 minutes on a quiet machine, some 200 on a loaded one. This script does the fit's steps 2–4 once,
from the shipped overlay's multipliers (a new dimension starts at its source value, 1), with each
target's expected value times the shipped fit's median over point value (`ensemble_median_over_point`
in the overlay's provenance; 1 for a target the shipped fit did not have): `calibration.fit.fit` with
one outer iteration (one saturated population at the shipped multipliers, the least squares of every
dimension of calibration/settings.yaml), no ensemble round, and its plain simulation at the fit. The replications' correction is the shipped
fit's, not recomputed: `securecomm validate` is the check. It writes the overlay to OUT_OVERLAY (the
package default is not touched; copy it to parameters/calibrated/overlay.yaml to ship it).
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from securecomm.calibration import fit as cal
from securecomm.calibration.overlay import OVERLAY_HEADER, overlay_document
from securecomm.calibration.targets import load_all_targets, load_settings, simulation_period
from securecomm.model.parameters import calibrated_overlay_path, load_parameters


def refit(shipped_overlay: Path) -> cal.CalibrationResult:
    """The fit of every dimension from the shipped overlay's multipliers, with its ensemble ratios."""
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
        ftol=float(settings["ftol"]),
        start_multipliers=[shipped["multipliers"].get(d.name, {"value": 1.0})["value"] for d in dims],
        fixed_ratios={
            target_id: entry["ensemble_median_over_point"]
            for target_id, entry in shipped["fit"].items()
            if "ensemble_median_over_point" in entry
        },
    )


def main(out: Path, shipped_overlay: Path) -> None:
    result = refit(shipped_overlay)
    document = overlay_document(result, load_all_targets())
    document["provenance"]["generated_by"] = (
        f"scripts/refit_county_factors.py: one outer iteration from the multipliers of the overlay of "
        f"{yaml.safe_load(shipped_overlay.read_text(encoding='utf-8'))['provenance']['date']} "
        "(its own provenance says how it was made), its ensemble ratios (median over replications / point value) "
        "reused"
    )
    out.write_text(OVERLAY_HEADER + yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=110))
    print(
        f"loss {result.loss_start:.4f} (shipped multipliers) -> {result.loss_ensemble_expected:.4f} "
        f"(fit, ratios); plain simulation at the fit {result.loss_fitted:.4f}; {result.evaluations} evaluations, "
        f"{result.seconds:.0f} s. Wrote {out}"
    )


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) == 3 else calibrated_overlay_path())
