"""What every command shares: the consoles, the error exit, number formatting, where replications run."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from securecomm.calibration.targets import Target
from securecomm.core.yamlfiles import PolicyFileError
from securecomm.law.loader import UnknownPolicyError, load_policy
from securecomm.law.model import Policy
from securecomm.model.replications import Runner

console = Console()
errors = Console(stderr=True)


def fail(message: str) -> typer.Exit:
    """Print the error and exit with code 2 (bad input), as every command does."""
    errors.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code=2)


def output_console(width: int) -> Console:
    """The terminal's console; off a terminal (a pipe, CI) Rich assumes 80 columns, too few for wide tables."""
    return console if console.is_terminal else Console(width=width)


def policy_or_fail(policy_id: str) -> Policy:
    try:
        return load_policy(policy_id)
    except (UnknownPolicyError, PolicyFileError) as error:
        raise fail(str(error)) from None


def format_count(value: float) -> str:
    """A count with thousands separators; a small fraction (a share, a rate) to three decimals."""
    if not math.isfinite(value):
        return "—"
    return f"{value:,.0f}" if abs(value) >= 10 or float(value).is_integer() else f"{value:.3f}"


def published_text(target: Target) -> str:
    """A published figure, with "≥ " before one that is a lower bound."""
    bound = "≥ " if target.comparison == "at_least" else ""
    return bound + format_count(target.published)


def within_mark(within: bool) -> str:
    """A figure within its tolerance (green ✓) or not (red ✗)."""
    return "[green]✓[/]" if within else "[red]✗[/]"


# The options of every command that runs replications (compare, validate, calibrate).
WorkersOption = Annotated[
    int | None,
    typer.Option(
        "--workers", min=1, help="Run replications on a local Dask cluster of N workers (1: in this process)."
    ),
]
SchedulerOption = Annotated[
    str | None, typer.Option("--scheduler", help="Run replications on an existing Dask cluster (tcp://host:port).")
]
# The targets table of validate and calibrate.
TargetsOption = Annotated[
    Path | None, typer.Option("--targets", help="Another targets table (same columns as calibration/targets.csv).")
]
# Simulate's and compare's participation reforms (securecomm.model.simulation.Participation).
ParticipationOption = Annotated[
    list[str] | None,
    typer.Option(
        help="PLACE=never|delayed|no-detainers[@DATE]: the place's part in the program — not activated from DATE "
        "(default: the start), activation delayed to DATE, or prints sent but every detainer declined from DATE. "
        "In compare, under every policy compared."
    ),
]


def runner_or_default(workers: int | None, scheduler: str | None) -> Runner | None:
    """The runner that --workers or --scheduler ask for; None (the command's default) if neither is given."""
    if workers is not None and scheduler is not None:
        raise fail("give --workers or --scheduler, not both")
    if scheduler is not None:
        return Runner(scheduler=scheduler)
    return None if workers is None else Runner(workers=workers)
