"""The `securecomm` command line: thin Typer commands over the Python API."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.console import Console
from rich.table import Table

from securecomm.calibration.calibrate import calibrate_command
from securecomm.calibration.validate import validate_command
from securecomm.cli.desk import desk_app, serve
from securecomm.cli.replay import replay_command
from securecomm.core.cases import CaseTables, InputError, to_tables
from securecomm.core.yamlfiles import PolicyFileError
from securecomm.law.compiler import compile_policy
from securecomm.law.decide import record_kind
from securecomm.law.explain import describe_condition
from securecomm.law.loader import UnknownPolicyError, load_library, load_policy
from securecomm.law.model import Policy
from securecomm.law.policy_cases import run_all

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
policies_app = typer.Typer(help="The library of policies: list, show, test.")
app.add_typer(policies_app, name="policies")
app.add_typer(desk_app, name="desk")
app.command("replay")(replay_command)
app.command("serve")(serve)
app.command("calibrate")(calibrate_command)
app.command("validate")(validate_command)

console = Console()
errors = Console(stderr=True)

ISO_SECONDS = "%Y-%m-%dT%H:%M:%S"


def fail(message: str) -> typer.Exit:
    errors.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code=2)


def _load(policy_id: str) -> Policy:
    try:
        return load_policy(policy_id)
    except (UnknownPolicyError, PolicyFileError) as error:
        raise fail(str(error)) from None


def _serialisable(frame: pl.DataFrame) -> pl.DataFrame:
    if "hold_until" in frame.columns:
        frame = frame.with_columns(pl.col("hold_until").dt.strftime(ISO_SECONDS))
    return frame.with_columns(pl.col(pl.Enum).cast(pl.String))


def _write_atomically(frame: pl.DataFrame, out: Path) -> None:
    """Write the whole file or nothing: to a temporary file, then rename."""
    suffix = out.suffix.lower()
    writers = {
        ".jsonl": lambda f, p: f.write_ndjson(p),
        ".ndjson": lambda f, p: f.write_ndjson(p),
        ".csv": lambda f, p: f.write_csv(p),
        ".parquet": lambda f, p: f.write_parquet(p),
    }
    if suffix not in writers:
        raise fail(f"--out {out}: unknown file type {suffix!r}; use .jsonl, .csv or .parquet")
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=suffix)
    os.close(handle)
    try:
        writers[suffix](frame if suffix == ".parquet" else _serialisable(frame), temporary)
        os.replace(temporary, out)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _offense_text(offense: dict) -> str:
    grade = offense["level"] + (f" {offense['felony_class']}" if offense["felony_class"] else "")
    when = f", {offense['years_ago']:g} y ago" if "years_ago" in offense else ""
    return f"{offense['category'].replace('_', ' ')} ({grade}{when})"


def _case_summaries(tables: CaseTables) -> list[str]:
    """A short line of the facts of each case, for people reading the table."""
    summaries = []
    offenses: dict[str, dict[int, list[str]]] = {"current_charges": {}, "convictions": {}}
    for name, by_row in offenses.items():
        for item in getattr(tables, name).to_dicts():
            by_row.setdefault(item["row"], []).append(_offense_text(item))
    for record in tables.records.to_dicts():
        parts = [f"age {record['age']}"] if record.get("age") is not None else []
        for name, label in (("current_charges", "charged"), ("convictions", "convicted")):
            if record["row"] in offenses[name]:
                parts.append(f"{label}: {', '.join(offenses[name][record['row']])}")
        flags = [key.replace("_", " ") for key, value in record.items() if value is True]
        if record.get("public_safety_risk") is None and "public_safety_risk" in record:
            flags.append("risk not determined")
        summaries.append("; ".join(parts + flags) or "—")
    return summaries


def _decision_table(tables: CaseTables, results: dict[str, pl.DataFrame]) -> Table:
    table = Table(title="Decisions by policy", show_lines=True)
    table.add_column("case")
    table.add_column("facts", overflow="fold", ratio=2)
    for policy_id in results:
        table.add_column(policy_id, overflow="fold", ratio=1)
    first = next(iter(results.values()))
    colours = {"honor": "red", "decline": "green", "review": "yellow"}
    summaries = _case_summaries(tables)
    for index, case_id in enumerate(first.get_column("case_id")):
        cells = [case_id, summaries[index]]
        for frame in results.values():
            row = frame.row(index, named=True)
            if "decision" in row:
                colour = colours.get(row["decision"], "white")
                hold = f"\nuntil {row['hold_until']:%a %Y-%m-%d %H:%M}" if row["hold_until"] else ""
                cells.append(f"[{colour}]{row['decision']}[/] [dim]{row['rule']}{hold}[/]")
            else:
                cells.append(" · ".join(f"{key}: {row[key]}" for key in row if key.endswith(("status", "hit"))))
        table.add_row(*cells)
    totals = ["all", f"{first.height} cases"]
    for frame in results.values():
        if "decision" not in frame.columns:
            totals.append("")
            continue
        counts = frame.get_column("decision").cast(pl.String).value_counts(sort=True).rows()
        totals.append(" · ".join(f"{decision} {count}" for decision, count in counts))
    table.add_row(*totals, style="bold")
    return table


@app.command()
def decide(
    policy_ids: Annotated[str, typer.Argument(help="A policy id, or several separated by commas.")],
    file: Annotated[Path, typer.Argument(help="Cases: .jsonl, .parquet or .csv (list fields as JSON).")],
    out: Annotated[Path | None, typer.Option(help="Write the decisions to .jsonl, .csv or .parquet.")] = None,
    table: Annotated[bool, typer.Option(help="Print a table of decisions instead of JSON lines.")] = False,
) -> None:
    """Decide every case in FILE under each policy: one JSON object per case and policy."""
    policies = [_load(policy_id.strip()) for policy_id in policy_ids.split(",") if policy_id.strip()]
    if not policies:
        raise fail("no policy id given")
    kinds = {record_kind(policy) for policy in policies}
    if len(kinds) > 1:
        raise fail("field policies read field records and the others read detainer cases: decide them separately")
    try:
        tables = to_tables(file, kinds.pop())
    except InputError as error:
        raise fail(str(error)) from None
    results = {policy.id: compile_policy(policy).evaluate(tables) for policy in policies}
    if table:
        # Off a terminal (a pipe, `make demo` in CI) Rich assumes 80 columns; this table needs more.
        wide = console if console.is_terminal else Console(width=180)
        wide.print(_decision_table(tables, results))
        return
    combined = pl.concat([_serialisable(frame) for frame in results.values()], how="vertical")
    if out is not None:
        _write_atomically(combined, out)
        errors.print(f"wrote {combined.height} decisions to {out}")
        return
    sys.stdout.write(combined.write_ndjson())


@policies_app.callback(invoke_without_command=True)
def policies(context: typer.Context) -> None:
    """With no subcommand, list the library."""
    if context.invoked_subcommand is None:
        list_policies(as_json=False)


@policies_app.command("list")
def list_policies(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Every policy: id, title, jurisdiction, effective date, status."""
    try:
        library = load_library()
    except PolicyFileError as error:
        raise fail(str(error)) from None
    rows = [
        {
            "id": policy.id,
            "title": policy.title,
            "jurisdiction": policy.jurisdiction.name,
            "kind": policy.kind,
            "effective": policy.effective.isoformat() if policy.effective else None,
            "status": policy.status,
        }
        for policy in library
    ]
    if as_json:
        sys.stdout.write(json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
        return
    table = Table(title=f"securecomm policy library ({len(rows)} policies)")
    table.add_column("id", no_wrap=True)
    for column in ("jurisdiction", "kind", "effective", "status", "title"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(
            *(row[column] or "—" for column in ("id", "jurisdiction", "kind", "effective", "status", "title"))
        )
    console.print(table)


@policies_app.command("show")
def show_policy(policy_id: Annotated[str, typer.Argument(help="A policy id, e.g. ct/trust-act-2013.")]) -> None:
    """A policy's rules in plain English, with citations."""
    policy = _load(policy_id)
    console.print(f"[bold]{policy.title}[/]  ({policy.id})", highlight=False)
    dates = f"enacted {policy.enacted or 'unknown'}, effective {policy.effective or '—'}"
    console.print(f"{policy.jurisdiction.name} · {policy.kind} · {policy.status} · {dates}", highlight=False)
    for question in policy.questions:
        heading = "" if question.name == "decision" else f"[bold]{question.name.replace('_', ' ')}[/]\n"
        console.print(
            f"\n{heading}Default: [bold]{question.default.decision}[/] — {question.default.text}", highlight=False
        )
        console.print(f"  [dim]{question.default.citation}[/]", highlight=False)
        subject = "" if policy.kind == "field" else "the person "
        for number, rule in enumerate(question.rules, start=1):
            console.print(
                f"\n{number}. [bold]{rule.decision}[/] if {subject}{rule.text}  [dim]({rule.id})[/]", highlight=False
            )
            console.print(f"   [dim]{rule.citation}[/]", highlight=False)
            console.print(f"   reads as: {describe_condition(rule.when, policy)}", highlight=False)
            if rule.unless is not None:
                console.print(f"   unless: {describe_condition(rule.unless, policy)}", highlight=False)
    if policy.hold is not None:
        console.print(f"\nMaximum hold: {policy.hold.describe()} ({policy.hold.citation})", highlight=False)
    if policy.notice is not None:
        decisions = " and ".join(sorted(policy.notice.decisions))
        console.print(
            f"Notice to ICE of each {decisions}: {policy.notice.text} ({policy.notice.citation})", highlight=False
        )
    for category_set in policy.sets:
        console.print(
            f"\nSet [bold]{category_set.name}[/]: {category_set.description}. Approximates {category_set.approximates}.",
            highlight=False,
        )
    if policy.notes:
        console.print(f"\n[bold]Notes[/]: {policy.notes}", highlight=False)
    if policy.dates_note:
        console.print(f"[bold]Dates[/]: {policy.dates_note}", highlight=False)
    console.print("\n[bold]References[/]")
    for reference in policy.references:
        console.print(f"- {reference.cite}: {reference.title} <{reference.url}>", highlight=False)


@policies_app.command("test")
def test_policies(
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="A policy library with <id>.cases.yaml files (default: the installed library)."),
    ] = None,
) -> None:
    """Run every policy's YAML cases (beside each policy file) through both evaluators."""
    if directory is not None and not directory.is_dir():
        raise fail(f"{directory}: no such directory")
    results = run_all(directory)
    failed = [result for result in results if not result.passed]
    for result in failed:
        console.print(f"[red]FAIL[/] {result.file}:{result.line} {result.name}", highlight=False)
        for problem in result.problems:
            console.print(f"     {problem}", highlight=False)
    policies = len({result.policy_id for result in results})
    colour = "red" if failed else "green"
    console.print(
        f"[{colour}]{len(results) - len(failed)} of {len(results)} cases passed[/] across {policies} policies",
        highlight=False,
    )
    if failed:
        raise typer.Exit(code=1)


def _number(value: float) -> str:
    return f"{value:,.0f}"


@app.command()
def simulate(
    place: Annotated[str, typer.Option(help="US, a state code (CT), a county FIPS (09001), or a comma list.")],
    start: Annotated[str, typer.Option(help="First day, YYYY-MM-DD.")],
    end: Annotated[str, typer.Option(help="Last day, YYYY-MM-DD.")],
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same numbers.")] = 0,
    policy: Annotated[
        list[str] | None,
        typer.Option(help="PLACE=POLICY_ID[@DATE]: the place's jails follow that policy from DATE (default: start)."),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write county-month counts and records into this folder.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Simulate Secure Communities over a place and period, on the real activation dates."""
    import datetime as dt

    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from securecomm.law.timeline import parse_reform
    from securecomm.model.metrics import ALL_METRIC_LABELS
    from securecomm.model.simulation import Reform
    from securecomm.model.simulation import simulate as run_simulation

    try:
        first, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
        reforms = tuple(Reform(*parse_reform(spec)) for spec in policy or [])
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
                progress=lambda stage: progress.update(task, description=f"simulating: {stage}"),
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
    sc, other = result.channels["secure_communities"], result.channels["other_routes"]
    for name, label in ALL_METRIC_LABELS.items():
        if name in sc:
            table.add_row(label, _number(sc[name]), _number(other[name]), _number(result.total[name]))
        else:
            table.add_row(label, "", "", _number(result.total[name]))
    wide = console if console.is_terminal else Console(width=120)
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


@app.command()
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
    workers: Annotated[
        int | None, typer.Option(min=1, help="Run replications on a local Dask cluster of N workers.")
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="Run replications on an existing Dask scheduler (tcp://host:port).")
    ] = None,
    report: Annotated[Path | None, typer.Option(help="Write a self-contained HTML report here.")] = None,
    csv: Annotated[Path | None, typer.Option(help="Write the table (policy × metric, with bands) as CSV.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Compare policies on the same bookings and draws: medians, 90% bands, differences from the baseline."""
    import datetime as dt

    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from securecomm.comparison.compare import compare as run_comparison
    from securecomm.comparison.report import render_report, write_report
    from securecomm.model.metrics import ALL_METRIC_LABELS
    from securecomm.model.parameters import load_parameters
    from securecomm.model.replications import run_in_process, run_on_dask

    if workers is not None and scheduler is not None:
        raise fail("give --workers or --scheduler, not both")
    runner = run_on_dask(scheduler, workers) if (workers or scheduler) else run_in_process
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
    except (ValueError, UnknownPolicyError) as error:
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
    for metric, label in ALL_METRIC_LABELS.items():
        cells = []
        for policy_id in summary.levels:
            level, difference = summary.levels[policy_id][metric], summary.differences[policy_id][metric]
            text = _number(level["median"])
            if replications > 1:
                text += f"\n[dim]{_number(level['low'])}–{_number(level['high'])}[/]"
            if policy_id != summary.baseline:
                colour = "red" if difference["median"] > 0 else "green" if difference["median"] < 0 else "dim"
                text += f"\n[{colour}]{difference['median']:+,.0f}[/]"
            cells.append(text)
        table.add_row(label, *cells)
    wide = console if console.is_terminal else Console(width=max(120, 24 * (len(summary.levels) + 1)))
    wide.print(table)
