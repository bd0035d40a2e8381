"""How a replay is shown: tables a reader can check, and the same numbers as JSON."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
from rich.console import Console
from rich.table import Table

from securecomm.replay.actual import ACTUAL_OUTCOMES
from securecomm.replay.qa import CheckResult, QaReport
from securecomm.replay.run import DECISIONS, Replay

STATUS_STYLE = {"ok": "green", "info": "cyan", "warn": "yellow", "stop": "bold red"}
LISTED_ROWS = 12

DECISION_NOTE = (
    "honor: the policy allows the jail to hold the person for ICE; decline: it requires release; review: the "
    "policy turns on a determination the records do not contain (such as an official's finding of a public-safety "
    "risk), so the case cannot be decided from them."
)
HOLD_NOTE = (
    "hold-hours allowed: for honored cases whose release-eligibility time is known, the clock hours from that time "
    "to the policy's hold deadline (48 hours excluding weekends and federal holidays can span 96 clock hours). It is "
    "the most the policy permits, not what ICE would have used."
)
NO_HOLD_NOTE = "hold-hours: no case has a known release-eligibility time, so no hold deadline can be computed."
HELD_NOTE = (
    "held past release eligibility (records): of the cases whose release-eligibility time is known, those whose "
    "booking ended later than that moment, with the total and median of those hours, as the source's own times show."
)
TRANSFER_NOTE = (
    "moved to another agency's custody: the person went to a prison, another jail or a federal agency and the "
    "detainer went with them; a policy's decision shows what it would have allowed had the person been released here."
)


def reading_notes(replay: Replay) -> list[str]:
    """The notes that explain the numbers shown, and only those."""
    notes = [DECISION_NOTE]
    known = replay.imported.provenance.get_column("release_eligible_at").is_not_null().any()
    notes.append(HOLD_NOTE if known else NO_HOLD_NOTE)
    if replay.actual is not None:
        outcomes = set(replay.actual.get_column("actual_outcome").to_list())
        if replay.actual.get_column("release_time_known").sum():
            notes.append(HELD_NOTE)
        if "transferred" in outcomes:
            notes.append(TRANSFER_NOTE)
    return notes


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
    console.print("[bold]Reading the numbers[/]", highlight=False)
    for note in reading_notes(replay):
        console.print(f"- {note}", highlight=False)
    if replay.imported.limitations:
        console.print("[bold]What the source does not record[/]", highlight=False)
        for limitation in replay.imported.limitations:
            console.print(f"- {limitation}", highlight=False)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    return value


def _records(frame: pl.DataFrame | None) -> list[dict[str, Any]] | None:
    return None if frame is None else _jsonable(frame.to_dicts())


def to_json(replay: Replay) -> dict[str, Any]:
    """The same numbers as the tables, plus every quality issue."""
    imported = replay.imported
    provenance = imported.provenance
    report = imported.qa
    return {
        "source": {
            "file": imported.source.name,
            "format": imported.format,
            "title": imported.title,
            "rows": imported.rows.height,
            "cases": imported.case_count,
            "row_roles": dict(imported.rows.group_by("role").len().sort("role").iter_rows()),
            "release_time_known": int(provenance.get_column("release_eligible_at").is_not_null().sum()),
            "incomplete_cases": int((~provenance.get_column("complete")).sum()),
            "likely_duplicates": int(provenance.get_column("likely_duplicate").sum()),
        },
        "quality": [
            {
                "check": result.check.name,
                "description": result.check.description,
                "unit": result.check.unit,
                "count": result.count,
                "total": result.total,
                "status": result.status,
                "warn": result.check.warn,
                "stop": result.check.stop,
            }
            for result in report.results()
        ],
        "issues": _records(report.issues),
        "policies": _records(replay.summary),
        "actual": _records(replay.actual),
        "actual_vs_policy": _records(replay.versus),
        "actual_outcome_labels": ACTUAL_OUTCOMES,
        "notes": reading_notes(replay),
        "limitations": list(imported.limitations),
    }
