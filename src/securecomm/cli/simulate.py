"""`securecomm simulate`: a place and period through the whole pipeline, on the real rollout."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from securecomm.cli.common import ParticipationOption, errors, fail, format_count, output_console
from securecomm.law.loader import UnknownPolicyError
from securecomm.law.timeline import parse_reform
from securecomm.model.metrics import METRICS, REPORTED
from securecomm.model.simulation import Participation, Reform
from securecomm.model.simulation import simulate as run_simulation
from securecomm.model.stages.effects import select as select_effects
from securecomm.model.stages.effects import studies


def simulate(
    place: Annotated[str, typer.Option(help="US, a state code (CT), a county FIPS (09001), or a comma list.")],
    start: Annotated[str, typer.Option(help="First day, YYYY-MM-DD.")],
    end: Annotated[str, typer.Option(help="Last day, YYYY-MM-DD.")],
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same numbers.")] = 0,
    policy: Annotated[
        list[str] | None,
        typer.Option(help="PLACE=POLICY_ID[@DATE]: the place's jails follow that policy from DATE (default: start)."),
    ] = None,
    participation: ParticipationOption = None,
    out: Annotated[Path | None, typer.Option(help="Write county-month counts and records into this folder.")] = None,
    effects: Annotated[
        bool, typer.Option("--effects", help="Add what the program did to communities: the published effects.")
    ] = False,
    scenarios: Annotated[
        str | None,
        typer.Option(help="Add effect scenarios (labelled with their study): 'all' or names, comma separated."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    workers: Annotated[
        int,
        typer.Option(
            min=1, help="Run a place of several states in N threads, each a part of whole states: the same numbers."
        ),
    ] = 1,
) -> None:
    """Simulate Secure Communities over a place and period, on the real activation dates."""

    try:
        first, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
        reforms = tuple(Reform(*parse_reform(spec)) for spec in policy or [])
        participations = tuple(Participation.parse(spec) for spec in participation or [])
        chosen_effects = select_effects(effects, scenarios)
        with Progress(
            SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=errors, transient=True
        ) as progress:
            task = progress.add_task("simulating", total=None)
            result = run_simulation(
                place,
                first,
                last,
                seed=seed,
                reforms=reforms,
                effects=chosen_effects,
                participation=participations,
                progress=lambda stage: progress.update(task, description=f"simulating: {stage}"),
                workers=workers,
            )
    except (ValueError, UnknownPolicyError) as error:
        raise fail(str(error)) from None
    if out is not None:
        for path in result.write(out):
            errors.print(f"wrote {path}")
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
        return
    table = Table(title=f"Secure Communities, {place}, {first} → {last} (seed {seed})")
    table.add_column("metric")
    table.add_column("Secure Communities", justify="right")
    table.add_column("other ICE routes", justify="right")
    table.add_column("all routes", justify="right")
    for name in REPORTED:
        by_channel = [format_count(values[name]) if name in values else "" for values in result.channels.values()]
        table.add_row(METRICS[name].label, *by_channel, format_count(result.total[name]))
    wide = output_console(120)
    wide.print(table)
    counties = set(result.scenario.counties())
    in_period = sorted(
        {
            entry.policy_id
            for entry in result.timeline.entries
            if entry.counties & counties and entry.start <= last and (entry.end is None or entry.end > first)
        }
    )
    wide.print(f"Jail policies in force during the period: {', '.join(in_period)}", highlight=False)
    for participation in result.scenario.participation:
        wide.print(f"Participation: {participation.describe()}", highlight=False)
    if result.effects.height:
        known = studies().effects
        table = Table(title="What it does to communities (published effects applied to this place and period)")
        for column in ("effect", "study · population · status", "value", "note"):
            table.add_column(column, justify="right" if column == "value" else "left")
        for row in result.effects.iter_rows(named=True):
            effect = known[row["effect"]]
            value = "—" if row["value"] is None else format_count(row["value"])
            table.add_row(
                f"{effect.label} ({effect.kind})",
                f"{effect.study}, {effect.table}; {effect.population}; status {effect.status}",
                value,
                row["note"],
            )
        wide.print(table)
