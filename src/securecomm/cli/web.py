"""`securecomm web`: the lab and the policy library in a browser (docs/web.md)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from securecomm.cli.common import SchedulerOption, WorkersOption, errors, runner_or_default
from securecomm.model.replications import IN_PROCESS


def _default_data_dir() -> Path:
    """The user's cache directory: the lab's results can always be computed again."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "securecomm" / "web"


def web(
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Where the lab keeps its job queue (SQLite) and results [default: ~/.cache/securecomm/web].",
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = False,
) -> None:
    """Serve the lab (compare policies for any place; no sign-in) and the policy library with "try a case"."""
    import uvicorn

    from securecomm.web import create_app

    runner = runner_or_default(workers, scheduler) or IN_PROCESS
    data_dir = data_dir or _default_data_dir()
    app = create_app(data_dir, runner)
    errors.print(f"the lab and the policy library on http://{host}:{port}/ (data in {data_dir})", highlight=False)
    uvicorn.run(app, host=host, port=port, access_log=access_log, log_level="info")
