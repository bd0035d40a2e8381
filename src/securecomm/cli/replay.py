"""The `securecomm replay` command (registered in securecomm/cli.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from securecomm.core.yamlfiles import PolicyFileError
from securecomm.law.loader import UnknownPolicyError
from securecomm.replay.output import OutputError, check_out_path, write_atomically
from securecomm.replay.qa import QaStop
from securecomm.replay.report import quality_table, render, to_json
from securecomm.replay.run import ReplayError, replay
from securecomm.replay.source import SourceError

errors = Console(stderr=True)


def _fail(message: str) -> typer.Exit:
    errors.print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code=2)


def replay_command(
    source: Annotated[Path, typer.Argument(help="The records: a DDP detainer table or a jail extract (.csv).")],
    source_format: Annotated[
        str, typer.Option("--format", help="ddp, pierce, or mapping:FILE.yaml (your own jail's mapping file).")
    ],
    policies: Annotated[str, typer.Option("--policies", help="Policy ids separated by commas.")],
    out: Annotated[Path | None, typer.Option(help="Write every case's decisions to .csv or .parquet.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output (the same numbers).")] = False,
) -> None:
    """Decide real records under policies: what would each policy have done with these people?

    Every source row is accounted for (mapped, or reported with the reason) and every case is decided under every policy.

    Where the source records what happened, it is set beside each policy's decisions (docs/replay.md).
    """
    try:
        if out is not None:
            check_out_path(out)
        result = replay(source_format, source, policies.split(","))
    except QaStop as stop:
        # Show the whole quality report: it says which rows to fix.
        Console(stderr=True, width=160).print(quality_table(stop.report))
        raise _fail(str(stop)) from None
    except (ReplayError, SourceError, UnknownPolicyError, PolicyFileError, OutputError) as error:
        raise _fail(str(error)) from None
    if out is not None:
        write_atomically(result.decisions, out)
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
