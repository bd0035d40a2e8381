"""`securecomm policies`: the library — list, show, test."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from securecomm.cli.common import console, fail, policy_or_fail
from securecomm.core.yamlfiles import PolicyFileError
from securecomm.law.explain import clause_table, describe_condition
from securecomm.law.loader import layered_with, load_library
from securecomm.law.model import Policy
from securecomm.law.policy_cases import run_all

policies_app = typer.Typer(help="The library of policies: list, show, test.")


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
    policy = policy_or_fail(policy_id)
    console.print(f"[bold]{policy.title}[/]  ({policy.id})", highlight=False)
    dates = f"enacted {policy.enacted or 'unknown'}, effective {policy.effective or '—'}"
    console.print(f"{policy.jurisdiction.name} · {policy.kind} · {policy.status} · {dates}", highlight=False)
    _print_layers(policy)
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
    _print_clauses(policy)
    if policy.notes:
        console.print(f"\n[bold]Notes[/]: {policy.notes}", highlight=False)
    if policy.dates_note:
        console.print(f"[bold]Dates[/]: {policy.dates_note}", highlight=False)
    console.print("\n[bold]References[/]")
    for reference in policy.references:
        console.print(f"- {reference.cite}: {reference.title} <{reference.url}>", highlight=False)


def _print_layers(policy: Policy) -> None:
    """Which layers decide with this policy: those it narrows (it applies on top of them) and those narrowing it."""
    beneath, above = layered_with(policy)
    line = f"Layer: {policy.layer.level}"
    if policy.layer.narrows is not None:
        line += f", narrowing {policy.layer.narrows}"
    console.print(line, highlight=False)
    if beneath:
        listed = ", ".join(f"{narrowed.id} (from {narrowed.effective})" for narrowed in beneath)
        console.print(
            f"  Decided on top of {listed}: the stricter outcome governs (decline beats review beats honor;"
            " the earliest hold deadline wins).",
            highlight=False,
        )
    if above:
        listed = ", ".join(
            f"{narrowing.id} ({narrowing.layer.level}, from {narrowing.effective})" for narrowing in above
        )
        console.print(f"  Narrowed by {listed}, which applies on top of it.", highlight=False)


def _print_clauses(policy: Policy) -> None:
    """The clauses of the policy's text with their status: what the code covers, at a glance."""
    colours = {"modelled": "green", "approximated": "yellow", "not_modelled": "red", "reconstructed": "magenta"}
    console.print("\n[bold]Clauses[/]")
    for row in clause_table(policy):
        text = f"“{row.text}”" if row.quoted else f"(paraphrase) {row.text}"
        applied = f" → {', '.join(row.applied_by)}" if row.applied_by else ""
        console.print(
            f"- [bold]{row.citation}[/] [{colours[row.status]}]{row.status_phrase}[/]{applied}", highlight=False
        )
        console.print(f"  {text}", highlight=False)
        console.print(f"  [dim]{row.note}[/]", highlight=False)


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
