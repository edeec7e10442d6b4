"""The node's own configuration: what the operator of one machine allows, never the fleet repo.

Everything in the fleet repo is written by whoever can push to it. What must not be steered
from there lives in a file the node's operator owns (``/etc/tva/node.toml`` by default, see
docs/security.md): which programs bring a VPN profile up or down, where secret references may
point, where resolved secrets may be sent, and which filesystem roots Transmission may write
into. A node without the file gets the safe defaults below.
"""

from __future__ import annotations

import ipaddress
import posixpath
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from schemas.desired import SecretRef

__all__ = [
    "DEFAULT_REFUSED_ROOTS",
    "AcquirerConfig",
    "EgressConfig",
    "FabricConfig",
    "NodeConfig",
    "PullRequestConfig",
    "RootsConfig",
    "SecretsConfig",
    "TransmissionConfig",
    "TunnelPath",
    "TunnelsConfig",
    "VpnCommands",
]

DEFAULT_REFUSED_ROOTS = (
    "/", "/etc", "/root", "/boot", "/proc", "/sys", "/dev", "/usr", "/bin", "/sbin", "/lib",
    "/var/lib/tva", "/home/*/.ssh", "/root/.ssh",
)
"""Roots a device may never use for storage or downloads, whatever the fleet repo says. A root
is refused when it is one of these or lies inside one, except ``/``, which only refuses itself
(``*`` matches one path element)."""


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _argv(v: list[str] | None) -> list[str] | None:
    if v is None:
        return v
    if not v:
        raise ValueError("a command is a non-empty argument list")
    if not v[0].startswith("/"):
        raise ValueError(f"{v[0]!r}: give the program by its absolute path")
    return v


class VpnCommands(_Config):
    """One VPN profile on this node: the programs that bring it up and down (argument lists),
    the address the tunnel gives this node, and how recent a handshake must be."""

    up: list[str] | None = Field(default=None, description="e.g. [/usr/bin/wg-quick, up, wg0]")
    down: list[str] | None = Field(default=None, description="e.g. [/usr/bin/wg-quick, down, wg0]")
    address: str | None = Field(
        default=None,
        description="The tunnel's address on this node (no prefix length): the tunnel counts "
        "as up only while its interface carries it, and Transmission's peer traffic binds to it.",
    )
    handshake_within: int = Field(
        default=180, ge=10, le=86_400,
        description="Seconds: a WireGuard tunnel whose latest handshake is older counts as down "
        "(WireGuard rekeys every 120 s while traffic flows; give the peer a PersistentKeepalive).",
    )

    interface: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,15}$")] | None = Field(
        default=None,
        description="The interface the up command creates (as the profile says): the guard "
        "routes the tunnel's address through it.",
    )
    guard_table: int | None = Field(
        default=51820, ge=1, le=2**31 - 1,
        description="Routing table of the kill-switch guard set up with the "
        "tunnel: traffic from the tunnel's address goes through the tunnel or nowhere (a "
        "blackhole). Give each profile of a node its own; none: no guard.",
    )

    _check = field_validator("up", "down")(_argv)

    @field_validator("address")
    @classmethod
    def _address(cls, v: str | None) -> str | None:
        if v is not None:
            ipaddress.ip_address(v)  # ValueError names the value
        return v


class SecretsConfig(_Config):
    """Where the fleet repo's secret references may point on this node."""

    env_prefix: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] = Field(
        default="TVA_", description="{env: X} resolves only when X starts with this prefix."
    )
    dirs: list[str] = Field(
        default_factory=lambda: ["/etc/tva"],
        description="{file: P} resolves only when P, symlinks resolved, is inside one of these.",
    )

    @field_validator("dirs")
    @classmethod
    def _absolute(cls, v: list[str]) -> list[str]:
        for d in v:
            if not posixpath.isabs(posixpath.expanduser(d)):
                raise ValueError(f"{d!r} is not an absolute path")
        return v


class EgressConfig(_Config):
    """Where tva may connect, and where it may send a resolved secret."""

    allow: list[str] = Field(
        default_factory=list,
        description="Host names and addresses or networks (CIDR) the operator allows: secrets "
        "may be sent there, and link-local or metadata addresses listed here are reachable.",
    )
    peers_on_private_networks: bool = Field(
        default=True,
        description="Send peers' API tokens to controllers on loopback and private networks "
        "(10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7) without listing them.",
    )

    @field_validator("allow")
    @classmethod
    def _entries(cls, v: list[str]) -> list[str]:
        for entry in v:
            if "/" in entry:
                ipaddress.ip_network(entry, strict=False)  # ValueError names the entry
            elif not entry or any(c.isspace() for c in entry):
                raise ValueError(f"{entry!r} is not a host name, address or network")
        return v


class RootsConfig(_Config):
    """The filesystem roots the fleet repo may give Transmission on this node."""

    allow: list[str] | None = Field(
        default=None,
        description="When set, storage roots and download dirs must lie inside one of these.",
    )
    refuse: list[str] = Field(
        default_factory=lambda: list(DEFAULT_REFUSED_ROOTS),
        description="Never these, nor anything inside them ('/' refuses only itself).",
    )


class TransmissionConfig(_Config):
    """This node's Transmission as its operator runs it."""

    settings_file: str | None = Field(
        default=None,
        description="Its settings.json (e.g. /var/lib/transmission-daemon/info/settings.json): "
        "tva reads bind-address-ipv4 from it to check that peer traffic is bound to the "
        "tunnel's address (RPC does not report it).",
    )

    @field_validator("settings_file")
    @classmethod
    def _absolute(cls, v: str | None) -> str | None:
        if v is not None and not posixpath.isabs(v):
            raise ValueError(f"{v!r} is not an absolute path")
        return v


class PullRequestConfig(_Config):
    """Propose each acquisition as a pull request on a forge instead of pushing to the branch."""

    api: Annotated[str, StringConstraints(pattern=r"^https?://[^\s]+$")] = Field(
        description="The forge's API root: https://HOST/api/v1 for Forgejo and Gitea, "
        "https://api.github.com for GitHub.")
    repo: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")] = Field(
        description="owner/name of the fleet repo on the forge.")
    token: SecretRef = Field(description="An API token that may open pull requests, by reference.")


class AcquirerConfig(_Config):
    """How this node, as the acquirer, commits what it finds (docs/acquisition.md)."""

    identity: Annotated[str, StringConstraints(pattern=r"^[^<>\n]+ <[^<>\s]+>$")] = Field(
        default="tva acquirer <acquirer@tva.invalid>",
        description="Author and committer of the acquirer's commits, 'Name <email>'.",
    )
    signing_key: str | None = Field(
        default=None,
        description="SSH private key the acquirer signs its commits with (list its public key "
        "in the nodes' allowed-signers file). None: commits are not signed.",
    )
    branch: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._/-]{1,200}$")] | None = (
        Field(default=None, description="Push to this branch instead of the one the daemon "
              "follows (a branch someone merges, as a pull request would be)."))

    pull_request: PullRequestConfig | None = Field(
        default=None,
        description="Open a pull request per acquisition (a branch tva/acquire/<info-hash>) "
        "instead of pushing to the branch.")

    @field_validator("signing_key")
    @classmethod
    def _absolute_key(cls, v: str | None) -> str | None:
        if v is not None and not posixpath.isabs(posixpath.expanduser(v)):
            raise ValueError(f"{v!r} is not an absolute path")
        return v


class TunnelPath(StrEnum):
    """How the controller reaches the privileged step that brings a tunnel up or down."""

    direct = "direct"
    """Run ``[vpn.NAME]`` up/down itself (tva runs as root, or the commands need no privilege)."""
    systemd = "systemd"
    """``systemctl start|stop tva-tunnel@vpn-NAME.service``, allowed by a polkit rule."""
    sudo = "sudo"
    """``sudo -n /usr/sbin/tva-tunnel up|down vpn NAME``, allowed by one sudoers line."""


class TunnelsConfig(_Config):
    """The privileged path for tunnels (docs/operations.md#tunnels)."""

    via: TunnelPath = Field(
        default=TunnelPath.direct,
        description="direct, systemd (a template unit per tunnel, started through polkit) or "
        "sudo (the tva-tunnel helper through one sudoers line).",
    )


class FabricConfig(_Config):
    """What the root helper may do for the fleet fabric on this node (docs/fabric.md)."""

    interface: Annotated[str, StringConstraints(pattern=r"^tva[0-9]{1,2}$")] | None = Field(
        default=None,
        description="The fabric interface tva-tunnel may bring up and down (the fleet repo's "
        "Fabric interface, tva0 by default). None: the helper refuses the fabric; only a "
        "controller that runs the fabric itself (tunnels via direct) has one.",
    )
    spool: str = Field(
        default="/var/lib/tva/fabric",
        description="Where the controller writes the rendered configuration (SPOOL/tvaN.json, "
        "no private key) for the helper, which validates it again before applying it.",
    )
    allow: list[str] = Field(
        default_factory=list,
        description="Networks the fabric subnet must lie inside (CIDR); empty: any private "
        "network the fleet repo's rule allows.",
    )

    @field_validator("spool")
    @classmethod
    def _absolute(cls, v: str) -> str:
        if not posixpath.isabs(v):
            raise ValueError(f"{v!r} is not an absolute path")
        return v

    @field_validator("allow")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        for n in v:
            ipaddress.ip_network(n, strict=False)  # ValueError names the text
        return v


class NodeConfig(_Config):
    """``node.toml``: the operator's word on this node; the fleet repo cannot change it."""

    vpn: dict[str, VpnCommands] = Field(
        default_factory=dict, description="Commands per VPN profile name."
    )
    secrets: SecretsConfig = Field(default_factory=SecretsConfig)
    egress: EgressConfig = Field(default_factory=EgressConfig)
    roots: RootsConfig = Field(default_factory=RootsConfig)
    tunnels: TunnelsConfig = Field(default_factory=TunnelsConfig)
    fabric: FabricConfig = Field(default_factory=FabricConfig)
    transmission: TransmissionConfig = Field(default_factory=TransmissionConfig)
    acquirer: AcquirerConfig = Field(default_factory=AcquirerConfig)
