"""`securecomm decide`: cases decided under one policy or several."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.table import Table

from securecomm.cli.common import errors, fail, output_console, policy_or_fail
from securecomm.core.cases import CaseTables, InputError, to_tables
from securecomm.core.files import DECISION_TYPES, OutputError, text_columns, write_frame
from securecomm.law.compiler import compile_policy
from securecomm.law.decide import record_kind
from securecomm.law.layers import decide_layers
from securecomm.law.model import Policy


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


def _decisions(layers: list[Policy], tables: CaseTables) -> pl.DataFrame:
    if len(layers) == 1:
        return compile_policy(layers[0]).evaluate(tables)
    return decide_layers(layers, tables)


def decide(
    policy_ids: Annotated[
        str,
        typer.Argument(
            help="A policy id, or several separated by commas (compared side by side); join ids with '+' for "
            "policies that bind the jail at once, broadest first (ct/trust-act-2013+ct/doc-2014: the stricter "
            "outcome governs)."
        ),
    ],
    file: Annotated[Path, typer.Argument(help="Cases: .jsonl, .parquet or .csv (list fields as JSON).")],
    out: Annotated[Path | None, typer.Option(help="Write the decisions to .jsonl, .csv or .parquet.")] = None,
    table: Annotated[bool, typer.Option(help="Print a table of decisions instead of JSON lines.")] = False,
) -> None:
    """Decide every case in FILE under each policy: one JSON object per case and policy."""
    specs = [spec.strip() for spec in policy_ids.split(",") if spec.strip()]
    if not specs:
        raise fail("no policy id given")
    layered = {spec: [policy_or_fail(part.strip()) for part in spec.split("+")] for spec in specs}
    kinds = {record_kind(policy) for layers in layered.values() for policy in layers}
    if len(kinds) > 1:
        raise fail("field policies read field records and the others read detainer cases: decide them separately")
    try:
        tables = to_tables(file, kinds.pop())
    except InputError as error:
        raise fail(str(error)) from None
    try:
        results = {spec: _decisions(layers, tables) for spec, layers in layered.items()}
    except ValueError as error:  # layers that cannot combine (a field policy among them, say)
        raise fail(str(error)) from None
    if table:
        # Off a terminal (a pipe, `make demo` in CI) Rich assumes 80 columns; this table needs more.
        output_console(180).print(_decision_table(tables, results))
        return
    # Each policy has its own rule enum: as text, the policies' decisions stack into one table; a
    # layered decision adds the `layers` column, which single policies leave empty.
    combined = pl.concat(
        [frame.with_columns(pl.col(pl.Enum).cast(pl.String)) for frame in results.values()], how="diagonal"
    )
    if out is not None:
        try:
            write_frame(combined, out, DECISION_TYPES)
        except OutputError as error:
            raise fail(str(error)) from None
        errors.print(f"wrote {combined.height} decisions to {out}")
        return
    sys.stdout.write(text_columns(combined).write_ndjson())
