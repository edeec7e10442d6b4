"""Entry point: parse arguments, dispatch to a command module, map errors to exit codes.

Exit codes follow Terraform: 0 success / nothing to change, 2 something would change,
1 error. Bad input never produces a traceback; an unexpected exception is a bug and is
reported as one (with the traceback only under ``TVA_DEBUG=1``).
"""

from __future__ import annotations

import os
import traceback
from typing import Annotated, Any

import typer
from typer import _click  # typer vendors click: its Context type
from typer.core import TyperGroup

from controller import __version__
from controller.errors import TvaError, ValidationFailed

__all__ = ["app", "main"]


class _Commands(TyperGroup):
    """The one error handler of the CLI: commands raise tva's errors, this prints them (a fleet
    repo's problems one per line, as ``file:line: field: message``) and exits 1. Anything else
    is a bug: said plainly, with the traceback only under ``TVA_DEBUG=1``."""

    def invoke(self, ctx: _click.Context) -> Any:
        from controller.cli.output import err, print_problems

        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except ValidationFailed as e:
            print_problems(e.problems)
            n = len(e.problems)
            err.print(f"error: {n} problem{'s' if n != 1 else ''} in the fleet repo; "
                      "nothing done", markup=False, style="red")
        except TvaError as e:
            err.print("error: " + str(e), markup=False, style="red")
        except KeyboardInterrupt:
            raise typer.Exit(130) from None
        except Exception as e:  # a bug: say so plainly
            if os.environ.get("TVA_DEBUG"):
                traceback.print_exc()
            err.print(f"internal error: {type(e).__name__}: {e}", markup=False, style="red")
            err.print("This is a bug in tva. Run again with TVA_DEBUG=1 for the traceback.",
                      markup=False)
        raise typer.Exit(1)


app = typer.Typer(
    cls=_Commands,
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
    lab: Annotated[bool, typer.Option("--lab/--no-lab", help="Run the three-node lab part.")] = True,
) -> None:
    """Run the quick-start demo: the reference fleet, then three real nodes moving real data."""
    from controller.cli import demo as cmd

    raise typer.Exit(cmd.run(path, lab=lab))


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
    node_config: NodeConfigOpt = None,
) -> None:
    """Observe a node, show the fleet, or publish a node's status."""
    from controller.cli import status as cmd

    _install_node_config(node_config)
    raise typer.Exit(cmd.run(path, node=node, fleet=fleet, publish=publish, status_dir=status_dir,
                             player_socket=player_socket, as_json=as_json))


StateDirOpt = Annotated[
    str | None,
    typer.Option("--state-dir", help="Where the node keeps its journal, clone and lock "
                 "(default /var/lib/tva as root, else ~/.local/state/tva)."),
]

NodeConfigOpt = Annotated[
    str | None,
    typer.Option("--node-config", help="The node's own configuration: VPN commands, secrets "
                 "directories, egress and storage allow-lists (default ~/.config/tva/node.toml "
                 "when it exists, else /etc/tva/node.toml; see docs/security.md)."),
]


def _install_node_config(path: str | None) -> None:
    from controller.nodeconfig import install, load

    install(load(path))


@app.command()
def run(
    node: Annotated[str, typer.Option("--node", help="This node's device name.")],
    repo: Annotated[str, typer.Option("--repo", help="The fleet repo: a git URL or path.")],
    state_dir: StateDirOpt = None,
    branch: Annotated[str, typer.Option("--branch", help="Branch to follow.")] = "main",
    local: Annotated[
        bool, typer.Option("--local", help="REPO is a local checkout: follow its branch, watch it.")
    ] = False,
    status_dir: Annotated[
        str | None, typer.Option("--status", help="Share statuses in this directory, not in git.")
    ] = None,
    listen: Annotated[
        str | None, typer.Option("--listen", help="API host:port (default: the device's controller_api; 'off').")
    ] = None,
    player_socket: Annotated[str | None, typer.Option("--player-socket")] = None,
    allowed_signers: Annotated[
        str | None,
        typer.Option("--allowed-signers", help="Apply only commits signed by a key in this SSH allowed-signers file."),
    ] = None,
    log_json: Annotated[bool, typer.Option("--log-json", help="One JSON object per log line.")] = False,
    node_config: NodeConfigOpt = None,
    tls_cert: Annotated[
        str | None, typer.Option("--tls-cert", help="Serve the API over TLS with this certificate (PEM).")
    ] = None,
    tls_key: Annotated[str | None, typer.Option("--tls-key", help="The private key of --tls-cert (PEM).")] = None,
) -> None:
    """Run the controller daemon of one node."""
    from controller.cli import run as cmd
    from controller.daemon.daemon import DaemonConfig
    from controller.errors import PermanentError

    _install_node_config(node_config)
    if bool(tls_cert) != bool(tls_key):
        raise PermanentError("--tls-cert and --tls-key go together: give both, or neither")
    config = DaemonConfig(
        node=node, repo=repo, state_dir=state_dir or cmd.default_state_dir(), branch=branch,
        local=local, status_dir=status_dir, listen=listen, player_socket=player_socket,
        allowed_signers=allowed_signers, tls_cert=tls_cert, tls_key=tls_key,
    )
    raise typer.Exit(cmd.run(config, log_json=log_json))


@app.command()
def apply(
    path: PathArg = ".",
    node: Annotated[str, typer.Option("--node", help="The node to apply for (this machine).")] = "",
    state_dir: StateDirOpt = None,
    status_dir: Annotated[
        str | None, typer.Option("--status", help="Other nodes' statuses from this directory.")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Apply destructive actions without asking.")] = False,
    player_socket: Annotated[str | None, typer.Option("--player-socket")] = None,
    as_json: JsonOpt = False,
    node_config: NodeConfigOpt = None,
) -> None:
    """One pass by hand: observe this node, plan, show, apply."""
    from controller.cli import apply as cmd
    from controller.cli.run import default_state_dir

    _install_node_config(node_config)
    if not node:
        raise typer.BadParameter("give --node NAME", param_hint="--node")
    raise typer.Exit(cmd.run(path, node=node, state_dir=state_dir or default_state_dir(),
                             status_dir=status_dir, yes=yes, as_json=as_json,
                             player_socket=player_socket))


@app.command()
def history(
    node: Annotated[str, typer.Option("--node", help="The node whose journal to show.")],
    state_dir: StateDirOpt = None,
    limit: Annotated[int, typer.Option("--limit", help="Newest N entries (0: all).")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """The node's journal: every action applied, with outcome and error."""
    from controller.cli import history as cmd
    from controller.cli.run import default_state_dir

    raise typer.Exit(cmd.run(node, state_dir or default_state_dir(), limit=limit, as_json=as_json))


@app.command()
def review(
    base: Annotated[str, typer.Argument(help="Where the change starts (e.g. origin/main).")],
    head: Annotated[str, typer.Argument(help="The change to review.")] = "HEAD",
    repo: Annotated[str, typer.Option("--repo", help="The fleet repo's git checkout.")] = ".",
    status_dir: Annotated[
        str | None, typer.Option("--status", help="Plan against the statuses in this directory.")
    ] = None,
    fleet_ref: Annotated[
        bool, typer.Option("--fleet-ref", help="Plan against the status refs of the fleet repo.")
    ] = False,
    fetch: Annotated[
        bool, typer.Option("--fetch/--no-fetch", help="With --fleet-ref: fetch the refs first.")
    ] = True,
    markdown: Annotated[bool, typer.Option("--markdown", help="A pull-request comment.")] = False,
    as_json: JsonOpt = False,
    now: Annotated[
        str | None, typer.Option("--now", help="Plan as of this ISO time (default: the newest status read, else the clock).")
    ] = None,
) -> None:
    """What merging HEAD would do: semantic diff, duty moves, plan delta, risk flags."""
    from controller.cli import review as cmd

    raise typer.Exit(cmd.run(base, head, repo=repo, status_dir=status_dir, fleet_ref=fleet_ref,
                             fetch=fetch, as_json=as_json, markdown=markdown, now=now))


StatusDirOpt = Annotated[
    str | None, typer.Option("--status", help="Observed state: a directory of NodeStatus JSON files.")
]
FleetRefOpt = Annotated[
    bool, typer.Option("--fleet-ref", help="Observed state: the status refs of the fleet repo (git).")
]
NowOpt = Annotated[
    str | None,
    typer.Option("--now", help="Plan as of this ISO time (default: the newest status read, "
                 "else the clock)."),
]


@app.command()
def plan(
    path: PathArg = ".",
    node: Annotated[str | None, typer.Option("--node", help="Only this node's actions.")] = None,
    all_nodes: Annotated[bool, typer.Option("--all", help="Every node's actions (the default).")] = False,
    status_dir: StatusDirOpt = None,
    fleet_ref: FleetRefOpt = False,
    now: NowOpt = None,
    as_json: JsonOpt = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="GitHub-flavoured Markdown.")] = False,
) -> None:
    """What each node would do, and why (exit 0: no changes, 2: changes, 1: error)."""
    from controller.cli import plan as cmd

    raise typer.Exit(cmd.run(path, node=node, all_nodes=all_nodes, status_dir=status_dir,
                             fleet_ref=fleet_ref, now=now, as_json=as_json, markdown=markdown))


fleet_app = typer.Typer(help="Fleet views: duties, custody, reaper, peers, acquisitions.",
                        no_args_is_help=True)
app.add_typer(fleet_app, name="fleet")


def _fleet_view(view: str, path: str, item: str | None, node: str | None, status_dir: str | None,
                fleet_ref: bool, now: str | None, as_json: bool) -> None:
    from controller.cli import fleet as cmd

    raise typer.Exit(cmd.run(view, path, item=item, node=node, status_dir=status_dir,
                             fleet_ref=fleet_ref, now=now, as_json=as_json))


FleetPathOpt = Annotated[str, typer.Option("--repo", help="The fleet repo (a directory).")]


@fleet_app.command("duties")
def fleet_duties(path: FleetPathOpt = ".", status_dir: StatusDirOpt = None,
                 fleet_ref: FleetRefOpt = False, now: NowOpt = None, as_json: JsonOpt = False) -> None:
    """Who holds each duty, and why."""
    _fleet_view("duties", path, None, None, status_dir, fleet_ref, now, as_json)


@fleet_app.command("custody")
def fleet_custody(
    item: Annotated[str | None, typer.Argument(help="Only this item (info-hash or name).")] = None,
    path: FleetPathOpt = ".", status_dir: StatusDirOpt = None, fleet_ref: FleetRefOpt = False,
    now: NowOpt = None, as_json: JsonOpt = False,
) -> None:
    """Per rule and item: copies counted, held, order, next step."""
    _fleet_view("custody", path, item, None, status_dir, fleet_ref, now, as_json)


@fleet_app.command("reaper")
def fleet_reaper(path: FleetPathOpt = ".", status_dir: StatusDirOpt = None,
                 fleet_ref: FleetRefOpt = False, now: NowOpt = None, as_json: JsonOpt = False) -> None:
    """Health of every torrent on live nodes, and the recovery steps planned."""
    _fleet_view("reaper", path, None, None, status_dir, fleet_ref, now, as_json)


@fleet_app.command("peers")
def fleet_peers(
    item: Annotated[str, typer.Argument(help="The item (info-hash or name).")],
    path: FleetPathOpt = ".",
    node: Annotated[str | None, typer.Option("--for", help="The node asking (gates apply).")] = None,
    status_dir: StatusDirOpt = None, fleet_ref: FleetRefOpt = False, now: NowOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fleet holders of an item, with provenance and gates (what the tracker answers)."""
    _fleet_view("peers", path, item, node, status_dir, fleet_ref, now, as_json)


fabric_app = typer.Typer(help="The fleet's WireGuard fabric.", no_args_is_help=True)
app.add_typer(fabric_app, name="fabric")


@fabric_app.command("keys")
def fabric_keys(
    node: Annotated[str, typer.Argument(help="This node's device name.")],
    path: FleetPathOpt = ".",
    rotate: Annotated[bool, typer.Option(
        "--rotate", help="Make the next key; the node uses it once its public key is committed.")
    ] = False,
    as_json: JsonOpt = False,
    node_config: NodeConfigOpt = None,
) -> None:
    """Print this node's fabric public key (making its private key when absent)."""
    from controller.cli import fabric as cmd

    _install_node_config(node_config)
    raise typer.Exit(cmd.run(node, path, rotate=rotate, as_json=as_json))


@fleet_app.command("acquisitions")
def fleet_acquisitions(
    path: FleetPathOpt = ".", status_dir: StatusDirOpt = None, fleet_ref: FleetRefOpt = False,
    now: NowOpt = None, as_json: JsonOpt = False,
    state_dir: Annotated[str | None, typer.Option(
        "--state-dir", help="On the acquirer: its state dir, for its journal (backoff) and the "
        "last result of each search (default /var/lib/tva as root, else ~/.local/state/tva)."),
    ] = None,
) -> None:
    """Watchlist entries: satisfied, searching or waiting; proposed items; last search results."""
    from controller.cli import fleet as cmd
    from controller.cli.run import default_state_dir

    raise typer.Exit(cmd.run("acquisitions", path, status_dir=status_dir, fleet_ref=fleet_ref,
                             now=now, as_json=as_json,
                             state_dir=state_dir or default_state_dir()))


notify_app = typer.Typer(help="Notifications: send a test message.", no_args_is_help=True)
app.add_typer(notify_app, name="notify")


@notify_app.command("test")
def notify_test(
    target: Annotated[str | None, typer.Argument(help="Only this target (default: all).")] = None,
    path: FleetPathOpt = ".",
    as_json: JsonOpt = False,
    node_config: NodeConfigOpt = None,
) -> None:
    """Send a test message to a notification target, from this machine."""
    from controller.cli import notify as cmd

    _install_node_config(node_config)
    raise typer.Exit(cmd.run(path, target, as_json=as_json))


@app.command()
def version() -> None:
    """Print tva's version."""
    typer.echo(__version__)


def main(argv: list[str] | None = None) -> None:
    """Run ``tva`` with ``argv`` (default: the process's arguments) and exit with its code."""
    app(args=argv)


if __name__ == "__main__":
    main()
