"""`securecomm compare`: a baseline and reforms on the same bookings and draws."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from securecomm.cli.common import (
    ParticipationOption,
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
from securecomm.model.simulation import Participation
from securecomm.model.stages.effects import select as select_effects
from securecomm.model.stages.effects import studies


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
    effects: Annotated[
        bool,
        typer.Option("--effects", help="Add what the program did to communities: the published effects, with bands."),
    ] = False,
    scenarios: Annotated[
        str | None,
        typer.Option(help="Add effect scenarios (labelled with their study): 'all' or names, comma separated."),
    ] = None,
    participation: ParticipationOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Compare policies on the same bookings and draws: medians, 90% bands, differences from the baseline."""

    runner = runner_or_default(workers, scheduler) or IN_PROCESS
    try:
        first, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
        policy_ids = tuple(policy_id.strip() for policy_id in policies.split(",") if policy_id.strip())
        chosen_effects = select_effects(effects, scenarios)
        participations = tuple(Participation.parse(spec) for spec in participation or [])
        with Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=errors, transient=True
        ) as progress:
            progress.add_task(f"comparing {len(policy_ids)} policies × {replications} replications", total=None)
            comparison = run_comparison(
                place,
                first,
                last,
                policy_ids,
                baseline=baseline,
                replications=replications,
                seed=seed,
                runner=runner,
                effects=chosen_effects,
                participation=participations,
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
            text = metric_text(metric, level["median"])
            if replications > 1:
                text += f"\n[dim]{metric_text(metric, level['low'])}–{metric_text(metric, level['high'])}[/]"
            if policy_id != summary.baseline:
                colour = "red" if difference["median"] > 0 else "green" if difference["median"] < 0 else "dim"
                text += f"\n[{colour}]{difference['median']:+,.0f}[/]"
            cells.append(text)
        table.add_row(METRICS[metric].label, *cells)
    wide = output_console(max(120, 24 * (len(summary.levels) + 1)))
    wide.print(table)
    if chosen_effects:
        wide.print(effects_table(summary.effects, summary.baseline, replications))


def metric_text(name: str, value: float) -> str:
    """A metric's value as its outputs round it: a band's percentile of a count is a whole count, not 2.050."""
    return format_count(METRICS[name].rounded(value))


def effects_table(by_policy: dict[str, dict[str, dict[str, Any]]], baseline: str, replications: int) -> Table:
    """What it does to communities: each effect's study, population and status, and per policy its
    median with the 90% band over replications (study and model uncertainty) — for a single run, the study's
    own 90% interval — and the note."""
    known = studies().effects
    table = Table(title="What it does to communities (published effects applied to this place and period)")
    table.add_column("effect · study · population · status")
    for policy_id in by_policy:
        table.add_column(policy_id + (" (baseline)" if policy_id == baseline else ""), justify="right")
    for name in next(iter(by_policy.values())):
        effect = known[name]
        head = (
            f"{effect.label} [dim]({effect.kind}; {effect.unit})[/]\n[dim]{effect.study}, {effect.table}; "
            f"{effect.population}; {effect.period}; status {effect.status}[/]"
        )
        cells = []
        for policy_id in by_policy:
            row = by_policy[policy_id][name]
            value = row["band"]
            text = "—" if value is None else format_count(value["median"])
            if value is not None and (replications > 1 or row.get("band_from") == "study"):
                interval = "the study's 90% interval" if row.get("band_from") == "study" else "90% band"
                text += f"\n[dim]{format_count(value['low'])}–{format_count(value['high'])} ({interval})[/]"
            cells.append(f"{text}\n[dim]{row['note']}[/]")
        table.add_row(head, *cells)
    return table
