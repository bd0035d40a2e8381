"""The `securecomm` command line: thin Typer commands over the Python API, one module per command group.

Typer and Rich are used here and nowhere below.
"""

from __future__ import annotations

import typer

from securecomm.cli.calibrate import calibrate_command
from securecomm.cli.compare import compare
from securecomm.cli.decide import decide
from securecomm.cli.desk import desk_app, serve
from securecomm.cli.policies import policies_app
from securecomm.cli.replay import replay_command
from securecomm.cli.simulate import simulate
from securecomm.cli.validate import validate_command

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__.split("\n")[0])
app.command("decide")(decide)
app.add_typer(policies_app, name="policies")
app.command("simulate")(simulate)
app.command("compare")(compare)
app.command("calibrate")(calibrate_command)
app.command("validate")(validate_command)
app.command("replay")(replay_command)
app.add_typer(desk_app, name="desk")
app.command("serve")(serve)
