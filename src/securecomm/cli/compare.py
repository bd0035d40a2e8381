"""`securecomm compare`: a baseline and reforms on the same bookings and draws."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from securecomm.cli.common import (
    SchedulerOption,
    WorkersOption,
    errors,
    fail,
    format_count,
    output_console,
    runner_or_default,
)
from securecomm.comparison.compare import compare as run_comparison
from securecomm.comparison.report import render_report, write_report
from securecomm.law.loader import UnknownPolicyError
from securecomm.model.metrics import METRICS, REPORTED
from securecomm.model.parameters import load_parameters
from securecomm.model.replications import IN_PROCESS


def compare(
    place: Annotated[str, typer.Option(help="US, a state code, a county FIPS, or a comma list.")],
    start: Annotated[str, typer.Option(help="First day, YYYY-MM-DD.")],
    end: Annotated[str, typer.Option(help="Last day, YYYY-MM-DD.")],
    policies: Annotated[str, typer.Option(help="Policy ids separated by commas; 'historical' = the real timeline.")],
    baseline: Annotated[
        str | None, typer.Option(help="The policy the others are compared with (default: the first).")
    ] = None,
    replications: Annotated[int, typer.Option(min=1, help="Runs, each drawing parameters from their ranges.")] = 1,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same numbers.")] = 0,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
    report: Annotated[Path | None, typer.Option(help="Write a self-contained HTML report here.")] = None,
    csv: Annotated[Path | None, typer.Option(help="Write the table (policy × metric, with bands) as CSV.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Compare policies on the same bookings and draws: medians, 90% bands, differences from the baseline."""

    runner = runner_or_default(workers, scheduler) or IN_PROCESS
    try:
        first, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
        policy_ids = tuple(policy_id.strip() for policy_id in policies.split(",") if policy_id.strip())
        with Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=errors, transient=True
        ) as progress:
            progress.add_task(f"comparing {len(policy_ids)} policies × {replications} replications", total=None)
            comparison = run_comparison(
                place, first, last, policy_ids, baseline=baseline, replications=replications, seed=seed, runner=runner
            )
    except (ValueError, UnknownPolicyError, OSError) as error:  # OSError: a scheduler out of reach
        raise fail(str(error)) from None
    if report is not None:
        write_report(report, render_report(comparison.plan, comparison.summary, comparison.counties, load_parameters()))
        errors.print(f"wrote {report}")
    if csv is not None:
        csv.parent.mkdir(parents=True, exist_ok=True)
        comparison.table().write_csv(csv)
        errors.print(f"wrote {csv}")
    if as_json:
        sys.stdout.write(json.dumps(comparison.to_dict(), indent=2) + "\n")
        return
    summary = comparison.summary
    table = Table(title=f"Policies compared, {place}, {first} → {last} ({replications} replications, seed {seed})")
    table.add_column("metric")
    for policy_id in summary.levels:
        table.add_column(policy_id + (" (baseline)" if policy_id == summary.baseline else ""), justify="right")
    for metric in REPORTED:
        cells = []
        for policy_id in summary.levels:
            level, difference = summary.levels[policy_id][metric], summary.differences[policy_id][metric]
            text = format_count(level["median"])
            if replications > 1:
                text += f"\n[dim]{format_count(level['low'])}–{format_count(level['high'])}[/]"
            if policy_id != summary.baseline:
                colour = "red" if difference["median"] > 0 else "green" if difference["median"] < 0 else "dim"
                text += f"\n[{colour}]{difference['median']:+,.0f}[/]"
            cells.append(text)
        table.add_row(METRICS[metric].label, *cells)
    wide = output_console(max(120, 24 * (len(summary.levels) + 1)))
    wide.print(table)
