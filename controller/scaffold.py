"""What ``tva init`` puts in a new fleet repo: the templates, and the facts about this machine.

A new repo should validate straight away and teach by example: one device (this machine),
a collection, a custody rule that keeps one copy, an empty duty-pin file, a README, and
copies of the JSON Schemas in ``.tva/schemas/`` so that editors complete and check the files
through their ``# yaml-language-server: $schema=...`` modelines without network access. The
loader skips dot-folders, so ``.tva/`` is never read as fleet state.

``render`` is pure (facts in, file texts out); ``probe_machine`` is the only part that looks
at the machine, and it only reads.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import socket
from dataclasses import dataclass

from controller.generate.json_schema import render_all, schema_filename

__all__ = ["SCHEMA_DIR", "Machine", "probe_machine", "render", "slug"]

SCHEMA_DIR = ".tva/schemas"
"""Where a fleet repo keeps its copies of tva's JSON Schemas (a dot-folder: never loaded)."""

_GIB = 1 << 30
_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$")


@dataclass(frozen=True)
class Machine:
    """What the scaffold says about the machine ``tva init`` runs on."""

    name: str
    device_class: str
    storage_path: str
    capacity_gib: int


def slug(text: str, fallback: str) -> str:
    """``text`` as a resource name (lower case, ``[a-z0-9._-]``, at most 64), or ``fallback``."""
    name = re.sub(r"[^a-z0-9._-]+", "-", text.lower())
    name = name[:64].strip("._-")
    return name if _NAME_RE.match(name) else fallback


def probe_machine(device: str | None = None) -> Machine:
    """This machine's name, a guess at its class, and a storage root under the home folder."""
    name = device if device is not None else slug(socket.gethostname().split(".")[0], "this-machine")
    laptop = bool(glob.glob("/sys/class/power_supply/BAT*"))
    home = os.path.abspath(os.path.expanduser("~"))
    storage = os.path.join(home, "Media") if home != "/" else "/srv/media"
    free = shutil.disk_usage(_existing_ancestor(storage)).free
    return Machine(
        name=name,
        device_class="laptop" if laptop else "desktop",
        storage_path=os.path.normpath(storage),
        capacity_gib=max(1, free // 2 // _GIB),
    )


def _existing_ancestor(path: str) -> str:
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def _modeline(rel_path: str, kind: str) -> str:
    depth = rel_path.count("/")
    prefix = "../" * depth
    return f"# yaml-language-server: $schema={prefix}{SCHEMA_DIR}/{schema_filename(kind)}\n"


def _quote(value: str) -> str:
    """A YAML scalar for ``value``: plain when safe, else double-quoted."""
    if re.fullmatch(r"[A-Za-z0-9/_.-]+", value) and not value[0].isdigit():
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(fleet: str, machine: Machine) -> dict[str, str]:
    """Every file of a new fleet repo, by path relative to the repo root."""
    dev = machine.name
    storage = machine.storage_path
    files: dict[str, str] = {}

    files["fleet.yaml"] = _modeline("fleet.yaml", "Fleet") + f"""\
apiVersion: tva/v1
kind: Fleet
name: {fleet}
description: My media fleet.
# Every policy has a default (see docs/reference.md in tva); a few common ones:
policy:
  suspend: false       # true: controllers observe and plan but apply nothing
  freshness:
    stale_after: 10m   # no status for this long: a node's copies stop counting
    grace: 2h          # gone for this long: its items are re-pinned elsewhere
"""

    files["duties.yaml"] = _modeline("duties.yaml", "Duties") + """\
apiVersion: tva/v1
kind: Duties
# Duties are assigned automatically; pin one to a device only when you must, e.g.
#   public_swarm_face: seedbox   # the only node that joins public swarms
#   acquirer: nas                # runs the watchlists' searches
pins: {}
"""

    device_path = f"devices/{dev}.yaml"
    files[device_path] = _modeline(device_path, "Device") + f"""\
apiVersion: tva/v1
kind: Device
name: {dev}
description: The machine this fleet repo was created on.
class: {machine.device_class}    # server, desktop, laptop, tv, seedbox or phone
always_on: false
labels: [home]
services: [transmission, player, controller]
storage:
  - path: {_quote(storage)}
    capacity: {machine.capacity_gib}GiB    # how much of it tva may fill
download_dir: {_quote(storage + "/torrents")}
addresses:
  transmission_rpc: http://127.0.0.1:9091/transmission/rpc
  controller_api: http://127.0.0.1:8765
player:
  options:
    volume: 80
    save-position-on-quit: true
# Credentials only by reference, never the secret itself:
# credentials:
#   transmission_user: tva
#   transmission_password: {{env: TVA_RPC_PASSWORD}}
"""

    files["items/library.yaml"] = _modeline("items/library.yaml", "Collection") + """\
apiVersion: tva/v1
kind: Collection
name: library
description: Things to keep. Add items by info-hash, magnet link or committed .torrent file.
provenance: fleet
items: []
# items:
#   - name: "Big Buck Bunny"
#     infohash: 5163d9dbf3ddee5427caca72cb015f6d3eea9b9b
#     size: 885MiB
"""

    files["custody/library.yaml"] = _modeline("custody/library.yaml", "CustodyRule") + """\
apiVersion: tva/v1
kind: CustodyRule
name: library
description: Keep at least one complete copy of everything in the library.
select:
  collections: [library]
min: 1      # raise it as the fleet grows: copies on different devices
"""

    files[".gitignore"] = """\
# Secrets never belong in the fleet repo: devices refer to them as {env: ...},
# {file: ...} or {keyring: ...}.
*.key
*.pem
.env
secrets/
# Editor and OS leftovers.
*.swp
*~
.DS_Store
"""

    files["README.md"] = f"""\
# {fleet}

The desired state of a media fleet, managed by tva: every node's controller pulls this repo,
compares it with what is really there, and acts until the two agree. Edit, commit, push.

| Path | What |
|---|---|
| `fleet.yaml` | The fleet's name and policies |
| `duties.yaml` | Duties pinned to devices (optional) |
| `devices/` | One file per machine |
| `items/` | Collections of torrents |
| `custody/` | How many copies to keep of what, and where |
| `watchlists/`, `vpn/`, `sources/` | Add them when needed |
| `.tva/schemas/` | JSON Schemas for editors (refresh with `tva schema --out .tva/schemas`) |

Check a change before pushing, and see what it would do:

```sh
tva validate .
tva plan .
```

Each YAML file starts with a `# yaml-language-server: $schema=...` line, so editors with the
YAML language server complete fields and flag mistakes. Credentials are given only by
reference (`{{env: VAR}}`, `{{file: /path}}`, `{{keyring: service/user}}`), never inline.
"""

    for name, text in render_all().items():
        files[f"{SCHEMA_DIR}/{name}"] = text
    return files
