"""`securecomm replay`: real records decided under policies, beside what actually happened."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from securecomm.cli.common import errors, fail
from securecomm.core.files import TABLE_TYPES, OutputError, check_out_path, write_frame
from securecomm.core.yamlfiles import PolicyFileError
from securecomm.law.loader import UnknownPolicyError
from securecomm.law.timeline import parse_date
from securecomm.model.profiling import IRVING
from securecomm.replay.qa import CheckResult, QaReport, QaStop
from securecomm.replay.report import reading_notes, to_json
from securecomm.replay.run import DECISIONS, Replay, ReplayError, replay
from securecomm.replay.source import SourceError

STATUS_STYLE = {"ok": "green", "info": "cyan", "warn": "yellow", "stop": "bold red"}
LISTED_ROWS = 12


def replay_command(
    source: Annotated[Path, typer.Argument(help="The records: a DDP detainer table or a jail extract (.csv).")],
    source_format: Annotated[
        str, typer.Option("--format", help="ddp, pierce, or mapping:FILE.yaml (your own jail's mapping file).")
    ],
    policies: Annotated[str, typer.Option("--policies", help="Policy ids separated by commas.")],
    out: Annotated[Path | None, typer.Option(help="Write every case's decisions to .csv or .parquet.")] = None,
    place: Annotated[
        str | None,
        typer.Option(
            help="Where the records come from: a county FIPS (53053) or a state (default: the mapping's place)."
        ),
    ] = None,
    activation: Annotated[
        str | None,
        typer.Option(
            help="YYYY-MM-DD: the profiling indicator counts months from this day (default: the place's real "
            "activation date in the shipped county table)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output (the same numbers).")] = False,
) -> None:
    """Decide real records under policies: what would each policy have done with these people?

    Every source row is accounted for (mapped, or reported with the reason) and every case is decided under every policy.

    Where the source records what happened, it is set beside each policy's decisions; the profiling indicator
    shows the detainers on people booked only for minor charges by month around activation (docs/replay.md).
    """
    try:
        if out is not None:
            check_out_path(out, TABLE_TYPES)
        day = None if activation is None else _activation_day(activation)
        result = replay(source_format, source, policies.split(","), activation=day, place=place)
    except QaStop as stop:
        # Show the whole quality report: it says which rows to fix.
        Console(stderr=True, width=160).print(quality_table(stop.report))
        raise fail(str(stop)) from None
    except (ReplayError, SourceError, UnknownPolicyError, PolicyFileError, OutputError) as error:
        raise fail(str(error)) from None
    if out is not None:
        write_frame(result.decisions, out, TABLE_TYPES)
        errors.print(
            f"wrote {result.decisions.height} decisions ({result.imported.case_count} cases × "
            f"{len(result.policies)} policies) to {out}",
            highlight=False,
        )
    if as_json:
        sys.stdout.write(json.dumps(to_json(result), indent=2, ensure_ascii=False) + "\n")
        return
    console = Console() if sys.stdout.isatty() else Console(width=160)
    render(result, console)


def _activation_day(text: str) -> dt.date:
    try:
        return parse_date(text, "--activation")
    except ValueError as error:
        raise ReplayError(str(error)) from None


def _share(result: CheckResult) -> str:
    return f"{result.count} of {result.total} {result.check.unit}"


def _thresholds(result: CheckResult) -> str:
    check = result.check
    if check.warn is None and check.stop is None:
        return "—"
    warn = "—" if check.warn is None else f">{check.warn:.0%}"
    stop = "—" if check.stop is None else f">{check.stop:.0%}"
    return f"{warn} / {stop}"


def _rows_text(rows: list[int]) -> str:
    shown = ", ".join(str(row) for row in rows[:LISTED_ROWS])
    more = f", … ({len(rows)} rows; all with --json)" if len(rows) > LISTED_ROWS else ""
    return f"rows {shown}{more}" if rows else ""


def quality_table(report: QaReport) -> Table:
    """Every check run, with what it found; every row that could not be mapped is listed."""
    table = Table(title="Quality checks", title_justify="left", show_lines=False)
    table.add_column("check")
    table.add_column("found", justify="right")
    table.add_column("status")
    table.add_column("warn / stop", justify="right")
    for result in report.results():
        style = STATUS_STYLE[result.status]
        table.add_row(result.check.description, _share(result), f"[{style}]{result.status}[/]", _thresholds(result))
        issues = report.for_check(result.check.name)
        if issues.is_empty():
            continue
        if result.check.unmapped:
            # Rows that could not be mapped are each named, however many there are.
            for row, message in issues.select("row", "message").iter_rows():
                table.add_row(f"  [dim]row {row}: {message}[/]", "", "", "")
        elif result.status in ("warn", "stop"):
            rows = issues.get_column("row").drop_nulls().to_list()
            example = issues.get_column("message").first()
            table.add_row(f"  [dim]{_rows_text(rows)}[/]", "", "", "")
            table.add_row(f"  [dim]e.g. {example}[/]", "", "", "")
        else:
            grouped = issues.group_by("message", maintain_order=True).len().sort("len", descending=True)
            for message, count in grouped.iter_rows():
                table.add_row(f"  [dim]{count} × {message}[/]", "", "", "")
    return table


def _hours(value: float | None) -> str:
    return "—" if value is None else f"{value:,.1f}"


def summary_table(replay: Replay) -> Table:
    table = Table(title="Decisions by policy", title_justify="left")
    table.add_column("policy")
    table.add_column("cases", justify="right")
    for decision in DECISIONS:
        table.add_column(decision, justify="right")
    table.add_column("honored with release time known", justify="right")
    table.add_column("hold-hours allowed", justify="right")
    for row in replay.summary.iter_rows(named=True):
        table.add_row(
            f"{row['policy_id']}\n[dim]{row['title']}[/]",
            str(row["cases"]),
            *[str(row[decision]) for decision in DECISIONS],
            str(row["honored_with_release_time"]),
            _hours(row["hold_hours"]) if row["honored_with_release_time"] else "—",
        )
    return table


def versus_table(replay: Replay) -> Table | None:
    if replay.actual is None or replay.versus is None:
        return None
    table = Table(title="What actually happened, and what each policy would have decided", title_justify="left")
    table.add_column("actual outcome (source)")
    table.add_column("cases", justify="right")
    table.add_column("held past release eligibility (records)", justify="right")
    for policy in replay.policies:
        table.add_column(f"{policy.id}\nhonor · decline · review", justify="right")
    versus = {(row["policy_id"], row["actual_outcome"]): row for row in replay.versus.iter_rows(named=True)}
    for row in replay.actual.iter_rows(named=True):
        outcome = row["actual_outcome"]
        held = "release time unknown"
        if row["release_time_known"]:
            count = row["held_after_eligibility"]
            held = f"{count} of {row['release_time_known']}"
            if count:
                total, median = row["hours_after_eligibility"], row["median_hours_after_eligibility"]
                held += f": {_hours(total)} h (median {_hours(median)} h)"
        cells = []
        for policy in replay.policies:
            counts = versus[(policy.id, outcome)]
            cells.append(" · ".join(str(counts[decision]) for decision in DECISIONS))
        table.add_row(row["label"], str(row["cases"]), held, *cells)
    return table


def _percent(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "—"


def profiling_table(replay: Replay) -> Table | None:
    """The profiling indicator by month of booking: detainers, those with a current charge in the records,
    those booked only for minor charges and their share, with the months from activation and Irving's
    pattern beside them; a last row sums every month. None when no case has a booking time."""
    by_month = replay.profiling
    if by_month.is_empty():
        return None
    activation = replay.activation
    around = (
        f"; months counted from activation on {activation.day} ({activation.source})"
        if activation
        else "; no activation date (give --place or --activation)"
    )
    table = Table(
        title=f"Detainers on people booked only for minor charges, by month of booking{around}",
        title_justify="left",
    )
    table.add_column("month booked")
    table.add_column("months from activation", justify="right")
    table.add_column("detainers", justify="right")
    table.add_column("with a current charge", justify="right")
    table.add_column("minor charges only", justify="right")
    table.add_column("share minor only", justify="right")
    table.add_column(f"Irving, TX ({IRVING.share:.0%})", justify="right")
    for row in by_month.iter_rows(named=True):
        offset = row["months_from_activation"]
        table.add_row(
            f"{row['month']:%Y-%m}",
            "—" if offset is None else f"{offset:+d}" if offset else "0",
            str(row["detainers"]),
            str(row["with_charges"]),
            str(row["minor_only"]),
            _percent(row["minor_only"], row["with_charges"]),
            f"{row['irving_share']:.0%}",
        )
    totals = by_month.select("detainers", "with_charges", "minor_only").sum().row(0, named=True)
    table.add_section()
    table.add_row(
        "all months",
        "",
        str(totals["detainers"]),
        str(totals["with_charges"]),
        str(totals["minor_only"]),
        _percent(totals["minor_only"], totals["with_charges"]),
        f"{IRVING.share:.0%}",
    )
    return table


def source_lines(replay: Replay) -> list[str]:
    imported = replay.imported
    roles = dict(imported.rows.group_by("role").len().iter_rows())
    parts = [f"{roles.get('charge', 0)} charge rows"] if imported.format != "ddp" else []
    names = {"detainer": "detainer rows", "hold": "other agencies' holds", "not_mapped": "rows not mapped"}
    if imported.format == "ddp":
        names["detainer"] = "detainer records"
    parts += [f"{roles[role]} {label}" for role, label in names.items() if roles.get(role)]
    provenance = imported.provenance
    known = provenance.get_column("release_eligible_at").is_not_null().sum()
    incomplete = (~provenance.get_column("complete")).sum()
    duplicates = provenance.get_column("likely_duplicate").sum()
    return [
        f"[bold]{imported.source.name}[/] (format {imported.format}) — {imported.title}",
        f"{imported.rows.height} source rows → {imported.case_count} cases ({', '.join(parts)})",
        f"{known} of {imported.case_count} cases have a known release-eligibility time; {incomplete} decided on "
        f"incomplete records; {duplicates} flagged as likely duplicates.",
    ]


def render(replay: Replay, console: Console) -> None:
    for line in source_lines(replay):
        console.print(line, highlight=False)
    console.print(quality_table(replay.imported.qa))
    console.print(summary_table(replay))
    versus = versus_table(replay)
    if versus is not None:
        console.print(versus)
    profiling = profiling_table(replay)
    if profiling is not None:
        console.print(profiling)
    console.print("[bold]Reading the numbers[/]", highlight=False)
    for note in reading_notes(replay):
        console.print(f"- {note}", highlight=False)
    if replay.imported.limitations:
        console.print("[bold]What the source does not record[/]", highlight=False)
        for limitation in replay.imported.limitations:
            console.print(f"- {limitation}", highlight=False)
