"""The fabric's privileged path: this process, or the root helper through a spool file.

node.toml's ``[tunnels] via`` decides, as for VPN tunnels: with ``direct`` (tva runs as root,
or in a lab namespace) the controller runs ``wireguard-go``, ``ip`` and ``wg`` itself
(``LocalFabricLink``). With ``systemd`` or ``sudo`` it never does: it writes the rendered
configuration, without the private key, to ``SPOOL/tvaN.json`` (``[fabric] spool``) and asks
the root helper ``tva-tunnel up fabric tvaN`` to apply it. The helper takes nothing from its
caller but the kind and the name; it validates the spool again (``schemas.fabric_spool``)
against what node.toml declares, probes for collisions, reads the private key from the node's
secrets directory and writes the ``wg syncconf`` file itself (docs/fabric.md#the-privileged-path).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from controller.atomic import write_atomic
from controller.clients import tunnel
from controller.clients import wireguard as wg
from controller.errors import PermanentError
from controller.nodeconfig import current
from schemas.fabric_spool import FabricSpool
from schemas.node import NodeConfig, TunnelPath

__all__ = ["HelperFabricLink", "default_link", "spool_path"]


def spool_path(config: NodeConfig, interface: str) -> str:
    """Where the controller leaves ``interface``'s configuration for the helper."""
    return os.path.join(config.fabric.spool, f"{interface}.json")


class HelperFabricLink:
    """The fabric through ``tva-tunnel``: write the spool, then run the helper by the node's
    path (``up``, ``down``, and the read-only ``show``). ``invoke`` (verb, interface) -> what
    the helper printed replaces running it, for tests that call the helper's code in-process."""

    def __init__(self, config: NodeConfig,
                 invoke: Callable[[str, str], str] | None = None) -> None:
        self.config = config
        self._invoke = invoke or self._run

    def apply(self, spool: FabricSpool, private_key: str) -> None:
        # The private key is not handed over: the helper reads it from the secrets directory.
        del private_key
        path = spool_path(self.config, spool.interface)
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        write_atomic(path, spool.model_dump_json(indent=1).encode(), mode=0o600)
        self._invoke("up", spool.interface)

    def down(self, interface: str) -> None:
        self._invoke("down", interface)

    def show(self, interface: str) -> wg.WgDump | None:
        return wg.show(interface, helper=lambda iface: self._invoke("show", iface))

    def _run(self, verb: str, interface: str) -> str:
        if verb == "show":
            return tunnel.helper_show(self.config, "fabric", interface) or ""
        argv = tunnel.fabric_argv(self.config, interface, verb == "up")
        if argv is None:
            raise PermanentError(
                f"node.toml declares no fabric interface {interface} for the helper; its "
                f"operator sets [fabric] interface = \"{interface}\"")
        tunnel.run_command(argv, f"tva-tunnel {verb} fabric {interface}")
        return ""


def default_link() -> wg.FabricLink:
    """The link node.toml asks for (``[tunnels] via``)."""
    config = current()
    if config.tunnels.via is TunnelPath.direct:
        return wg.LocalFabricLink()
    return HelperFabricLink(config)
