"""`securecomm validate`: the model against every published figure, as a scorecard."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from securecomm.calibration.targets import TargetError, load_targets
from securecomm.calibration.validate import Scorecard, validate
from securecomm.cli.common import (
    SchedulerOption,
    WorkersOption,
    errors,
    fail,
    format_count,
    output_console,
    runner_or_default,
)


def render(card: Scorecard, console: Console) -> None:
    table = Table(
        title=f"Validation scorecard — {card.replications} replications (seed {card.seed}), parameters: {card.parameters}"
    )
    for column in ("target", "use", "metric", "place", "period", "published", "model median", "90% band", "error", ""):
        justify = "right" if column in ("published", "model median", "90% band", "error") else "left"
        table.add_column(column, justify=justify, overflow="fold")
    for s in card.scores:
        t = s.target
        bound = "≥ " if t.comparison == "at_least" else ""
        mark = "[green]✓[/]" if s.within else "[red]✗[/]"
        table.add_row(
            t.id,
            t.use,
            t.metric + ("" if t.channel == "secure_communities" else f" ({t.channel} routes)"),
            t.place,
            f"{t.start} → {t.end}",
            bound + format_count(t.published),
            format_count(s.model_median),
            f"{format_count(s.low)} – {format_count(s.high)}",
            f"{s.rel_error:+.1%} (±{t.tolerance:.0%})"
            if t.comparison == "approx"
            else f"{s.rel_error:+.1%} (≥ −{t.tolerance:.0%})",
            mark,
        )
    console.print(table)
    for result in card.series:
        mark = "[green]✓[/]" if result.within else "[red]✗[/]"
        console.print(
            f"{mark} {result.check.description}: {result.check.statistic} correlation of the medians with the "
            f"published series {result.value:.3f} (at least {result.check.at_least})",
            highlight=False,
        )
    if card.place_figures is not None and card.program is not None:
        figures = Table(title=f"The model's figures for {card.place}, {card.program[0]} → {card.program[1]}")
        figures.add_column("metric")
        figures.add_column("channel")
        figures.add_column("median", justify="right")
        figures.add_column("90% band", justify="right")
        for key, value in card.place_figures.items():
            metric, channel = key.split(":")
            figures.add_row(
                metric,
                "Secure Communities" if channel == "secure_communities" else "all routes",
                format_count(value["median"]),
                f"{format_count(value['low'])} – {format_count(value['high'])}",
            )
        console.print(figures)
    colour = "green" if card.within == len(card.scores) else "yellow"
    console.print(f"[bold {colour}]{card.summary()}[/]", highlight=False)


def validate_command(
    place: Annotated[
        str | None,
        typer.Option(
            help="Only the targets of this place (US, a state, a county FIPS), and its figures over the program."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    replications: Annotated[
        int | None, typer.Option(help="Replications, each with parameters drawn from their ranges (default: settings).")
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed of the replications (default: calibration/settings.yaml).")
    ] = None,
    vary_parameters: Annotated[
        bool, typer.Option(help="Draw parameters from their uncertainty ranges in each replication.")
    ] = True,
    targets_file: Annotated[
        Path | None, typer.Option("--targets", help="Another targets table (same columns as calibration/targets.csv).")
    ] = None,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
) -> None:
    """Score the model against every published figure (the validation scorecard).

    Per target: published value, model median and 90% band over replications, relative error,
    and whether it is within tolerance. Replications run on calibration/settings.yaml's number of
    local workers unless --workers or --scheduler says otherwise; the numbers do not depend on it.
    """
    runner = runner_or_default(workers, scheduler)
    try:
        targets = load_targets(targets_file)
        with Progress(
            TextColumn("replications"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=errors,
            transient=True,
        ) as bar:
            task = bar.add_task("replications", total=replications)
            card = validate(
                targets,
                place=place,
                replications=replications,
                seed=seed,
                vary_parameters=vary_parameters,
                runner=runner,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    except (TargetError, ValueError, OSError) as error:
        raise fail(str(error)) from None
    if as_json:
        sys.stdout.write(json.dumps(card.to_dict(), indent=2) + "\n")
        return
    render(card, output_console(200))
