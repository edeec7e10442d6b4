"""Entry point: parse arguments, dispatch to a command module, map errors to exit codes.

Exit codes follow Terraform: 0 success / nothing to change, 2 something would change,
1 error. Bad input never produces a traceback; an unexpected exception is a bug and is
reported as one (with the traceback only under ``TVA_DEBUG=1``).
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Annotated

import typer

from controller import __version__
from controller.errors import TvaError

app = typer.Typer(
    name="tva",
    help="GitOps controller for personal media fleets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

PathArg = Annotated[str, typer.Argument(help="The fleet repo (a directory).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]


@app.command()
def validate(path: PathArg = ".", as_json: JsonOpt = False) -> None:
    """Check a fleet repo: every problem, with file, line and field."""
    from controller.cli import validate as cmd

    raise typer.Exit(cmd.run(path, as_json))


@app.command()
def demo(
    path: Annotated[str, typer.Argument(help="The fleet repo.")] = "fleet-state",
) -> None:
    """Run the quick-start demo on the reference fleet."""
    from controller.cli import demo as cmd

    raise typer.Exit(cmd.run(path))


@app.command()
def schema(
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 if a generated file is stale.")
    ] = False,
    out_dir: Annotated[
        str | None,
        typer.Option("--out", help="Write only the JSON Schemas, into this directory."),
    ] = None,
) -> None:
    """Write the JSON Schemas (schemas/json/) and docs/reference.md from the models."""
    from controller.cli import schema as cmd

    raise typer.Exit(cmd.run(check, out_dir))


@app.command()
def init(
    directory: Annotated[str, typer.Argument(help="A new or empty directory.")],
    name: Annotated[
        str | None, typer.Option("--name", help="The fleet's name (default: the directory's).")
    ] = None,
    device: Annotated[
        str | None,
        typer.Option("--device", help="Name of this machine's device (default: its host name)."),
    ] = None,
) -> None:
    """Scaffold a new fleet repo (git-initialised, one commit) that validates."""
    from controller.cli import init as cmd

    raise typer.Exit(cmd.run(directory, name, device))


@app.command()
def status(
    path: PathArg = ".",
    node: Annotated[str | None, typer.Option("--node", help="Observe this node now.")] = None,
    fleet: Annotated[bool, typer.Option("--fleet", help="The fleet view from published statuses.")] = False,
    publish: Annotated[bool, typer.Option("--publish", help="Publish the node's status.")] = False,
    status_dir: Annotated[
        str | None, typer.Option("--status", help="Read/write statuses in this directory instead of git.")
    ] = None,
    player_socket: Annotated[
        str | None, typer.Option("--player-socket", help="The node's mpv IPC socket.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Observe a node, show the fleet, or publish a node's status."""
    from controller.cli import status as cmd

    raise typer.Exit(cmd.run(path, node=node, fleet=fleet, publish=publish, status_dir=status_dir,
                             player_socket=player_socket, as_json=as_json))


@app.command()
def version() -> None:
    """Print tva's version."""
    typer.echo(__version__)


def main() -> None:
    try:
        app()
    except TvaError as e:
        from controller.cli.output import err

        err.print("error: " + str(e), markup=False, style="red")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as e:  # a bug: say so plainly
        from controller.cli.output import err

        if os.environ.get("TVA_DEBUG"):
            traceback.print_exc()
        err.print(f"[red]internal error:[/red] {type(e).__name__}: {e}", markup=False)
        err.print("This is a bug in tva. Run again with TVA_DEBUG=1 for the traceback.")
        sys.exit(1)


if __name__ == "__main__":
    main()
