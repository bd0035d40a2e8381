"""Print docs/validation.md's leave-one-place-out table from a calibrated overlay (issue 16).

    .venv/bin/python scripts/leave_one_out_table.py [OVERLAY]

The overlay (the shipped one by default) must carry the predictions of `securecomm calibrate
--leave-one-out` or `scripts/refit_county_factors.py --leave-one-out` in its provenance. One row per place:
its field office's fitted factors, its fitted figures, how many are within tolerance at the joint fit and
with the place left out, and the median absolute error of its counts left out; then the totals.
"""

from __future__ import annotations

import argparse
from itertools import groupby
from pathlib import Path

import yaml

from securecomm.calibration.targets import load_all_targets
from securecomm.calibration.validate import HeldOutFigure, held_out_figures, median_count_error
from securecomm.model.parameters import Parameters, apply_overlay, calibrated_overlay_path, load_parameters
from securecomm.model.stages import ident, issuance, removal

HEADER = (
    "| place | field office (IDENT factor; detainer factor; removal factors with, without a conviction) "
    "| figures | within, joint fit | within, place left out "
    "| median abs. error of counts, left out |\n|---|---|---:|---:|---:|---:|"
)


def office_text(office: str, parameters: Parameters) -> str:
    def factor(name: str) -> float:
        return parameters.value(name)[office]

    return (
        f"{office} (IDENT ×{factor(ident.FIELD_OFFICE_FACTOR):.2f}; ×{factor(issuance.FIELD_OFFICE_FACTOR):.2f}; "
        f"removals ×{factor(removal.FIELD_OFFICE_CONVICTED):.2f}, ×{factor(removal.FIELD_OFFICE_NON_CRIMINAL):.2f})"
    )


def table(overlay: Path) -> str:
    targets = {t.id: t for t in load_all_targets()}
    rows = yaml.safe_load(overlay.read_text(encoding="utf-8"))["provenance"].get("leave_one_place_out", [])
    if not rows:
        raise SystemExit(
            f"{overlay}: no leave-one-place-out predictions in its provenance (rerun with --leave-one-out)"
        )
    offices = {row["id"]: row["office"] for row in rows}
    parameters = apply_overlay(load_parameters(calibrated=False), overlay)
    figures = held_out_figures([targets[row["id"]] for row in rows], overlay)
    lines = [HEADER]
    everything: list[HeldOutFigure] = []
    joint_within = 0

    def place_of(figure: HeldOutFigure) -> tuple[str, str]:
        return figure.target.place_name, figure.target.place

    for (name, code), group in groupby(sorted(figures, key=place_of), key=place_of):
        own = list(group)
        within = sum(f.target.within(f.fitted) for f in own)
        error = median_count_error(own)
        lines.append(
            f"| {name} ({code}) | {office_text(offices[own[0].target.id], parameters)} | {len(own)} | {within} | "
            f"{sum(f.within_held_out for f in own)} | {'–' if error is None else f'{error:.0%}'} |"
        )
        everything += own
        joint_within += within
    counts = [f for f in everything if f.target.tolerance_unit == "factor"]
    lines.append(
        f"\n{len(everything)} figures: {joint_within} within at the joint fit, "
        f"{sum(f.within_held_out for f in everything)} with the place left out; median absolute error of the "
        f"{len(counts)} counts left out {median_count_error(everything):.0%}."
    )
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overlay", type=Path, nargs="?", default=calibrated_overlay_path())
    print(table(parser.parse_args().overlay))
