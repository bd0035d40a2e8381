"""`securecomm calibrate`: fit the flagged parameters to the published figures marked `fit`."""

from __future__ import annotations

import json
import math
import statistics
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from securecomm.calibration.fit import CalibrationError, HeldOutPrediction, calibrate, leave_one_place_out
from securecomm.calibration.overlay import provenance, write_overlay
from securecomm.calibration.targets import TargetError, load_all_targets
from securecomm.cli.common import (
    SchedulerOption,
    TargetsOption,
    WorkersOption,
    errors,
    fail,
    format_count,
    output_console,
    published_text,
    runner_or_default,
    within_mark,
)
from securecomm.model.parameters import calibrated_overlay_path, load_parameters


def render_held_out(predictions: list[HeldOutPrediction], console: Console) -> None:
    """Leave-one-place-out: each place figure fitted with and without its place."""
    table = Table(title="Leave one place out: each place's figures predicted without them")
    for column in ("place", "office", "figure", "published", "joint fit", "place left out", "error left out", ""):
        table.add_column(column, justify="left" if column in ("place", "office", "figure") else "right")
    for p in predictions:
        t = p.target
        table.add_row(
            escape(t.place_name),
            p.office,
            t.metric,
            published_text(t),
            format_count(p.fitted),
            format_count(p.held_out),
            f"{p.held_out / t.published - 1:+.0%}",
            within_mark(t.within(p.held_out)),
        )
    console.print(table)
    counts = [abs(p.held_out / p.target.published - 1) for p in predictions if p.target.tolerance_unit == "factor"]
    if counts:
        console.print(
            f"Median absolute error of place counts, place left out: {statistics.median(counts):.0%} "
            f"({len(counts)} counts); within tolerance: {sum(p.target.within(p.held_out) for p in predictions)} "
            f"of {len(predictions)} place figures",
            highlight=False,
        )


def calibrate_command(
    out: Annotated[
        Path | None,
        typer.Option(help="Write the overlay here instead of the package default (parameters/calibrated/)."),
    ] = None,
    targets_file: TargetsOption = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed of the simulated population (default: calibration/settings.yaml).")
    ] = None,
    ensemble_rounds: Annotated[
        int | None, typer.Option(help="Rounds of correction for the median over replications (default: settings).")
    ] = None,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the fit's provenance as JSON.")] = False,
    leave_one_out: Annotated[
        bool,
        typer.Option(
            "--leave-one-out",
            help="Also predict each place's figures with its field office refitted without them (leave-one-place-out), "
            "kept in the overlay's provenance for `validate --place`.",
        ),
    ] = False,
) -> None:
    """Fit the parameters marked `calibrate: true` to the published figures marked `fit`.

    The fitted values become the package default (parameters/calibrated/overlay.yaml, or --out).
    The ensemble's replications run on calibration/settings.yaml's number of local workers unless
    --workers or --scheduler says otherwise; the numbers do not depend on it.
    """
    runner = runner_or_default(workers, scheduler)
    try:
        all_targets = load_all_targets(targets_file)
        result = calibrate(
            all_targets,
            seed=seed,
            ensemble_rounds=ensemble_rounds,
            runner=runner,
            progress=lambda message: errors.print(f"[dim]{message}[/]"),
        )
    except (TargetError, CalibrationError, ValueError, OSError) as error:
        raise fail(str(error)) from None
    held_out = leave_one_place_out(load_parameters(calibrated=False), result) if leave_one_out else []
    path = write_overlay(result, out or calibrated_overlay_path(), all_targets, held_out)
    document = provenance(result, all_targets, held_out)
    if as_json:
        sys.stdout.write(json.dumps(document, indent=2, default=str) + "\n")
        errors.print(f"wrote {path}")
        return
    console = output_console(140)
    table = Table(
        title=f"Calibration: {len(result.targets)} targets, {len(result.dims)} multipliers (seed {result.seed})"
    )
    ensemble = bool(result.ensemble_ratios)
    columns = ["target", "published", "source values", "fitted values"]
    columns += ["median over replications (expected)", "its error"] if ensemble else ["error"]
    for column in columns:
        table.add_column(column, justify="left" if column == "target" else "right")
    for target in result.targets:
        after = result.fitted_values[target.id]
        cells = [
            target.id,
            format_count(target.published),
            format_count(result.start_values[target.id]),
            format_count(after),
        ]
        if ensemble:
            after = result.surrogate_values[target.id] * result.ensemble_ratios[target.id]
            cells.append(format_count(after))
        table.add_row(*cells, f"{(after - target.published) / target.published:+.1%}")
    console.print(table)
    multipliers = Table(title="Multipliers of the source values")
    for column in ("dimension", "multiplier", "range"):
        multipliers.add_column(column, justify="left" if column == "dimension" else "right")
    for dim, value in zip(result.dims, result.multipliers, strict=True):
        flag = " (at bound)" if document["multipliers"][dim.name]["at_bound"] else ""
        multipliers.add_row(escape(dim.name), f"{value:.3f}{flag}", f"{dim.low:.2f}–{dim.high:.2f}")
    console.print(multipliers)
    ensemble = (
        ""
        if math.isnan(result.loss_ensemble_expected)
        else f"; median over {result.ensemble_replications} replications, expected: {result.loss_ensemble_expected:.3f}"
    )
    if leave_one_out:
        render_held_out(held_out, console)
    console.print(
        f"loss {result.loss_start:.3f} → {result.loss_fitted:.3f} (one simulation at the fit; "
        f"{result.loss_surrogate:.3f} expected{ensemble}) in {result.evaluations} evaluations, "
        f"{result.seconds:.0f} s. Wrote {path}",
        highlight=False,
    )
