"""What every command shares: the consoles, the error exit, number formatting."""

from __future__ import annotations

import math

import typer
from rich.console import Console

from securecomm.core.yamlfiles import PolicyFileError
from securecomm.law.loader import UnknownPolicyError, load_policy
from securecomm.law.model import Policy

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
