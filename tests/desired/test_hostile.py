"""Hostile input is refused with bounded memory: asserted on memory, never on time.

Two measurements: in-process, ``tracemalloc``'s peak while loading stays a few MiB (a loader
that read the 50 MB file, or expanded an alias bomb, would allocate hundreds); and through a
real ``tva`` process whose address space is capped with ``RLIMIT_AS``, the refusal still comes
out as a located problem (not a MemoryError, not a traceback). The 50 MB file and the
10,000-deep documents are generated here, not committed.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from controller.desired import load_fleet
from controller.desired.loader import INTERNAL
from controller.desired.yamlsafe import MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES
from controller.errors import Problem, ValidationFailed
from tests.desired.test_bad_fleets import BAD, BASE

TVA = Path(sys.executable).parent / "tva"
AS_LIMIT = 128 << 20  # a plain `tva validate` runs in under 64 MiB of address space
PEAK_LIMIT = 6 << 20  # the largest file tva reads is 1 MiB; nothing multiplies it


def _huge(path: Path) -> None:
    """50 MB of innocent-looking YAML: a list of 5-byte entries."""
    chunk = b"- abc\n" * (1 << 18)
    with path.open("wb") as f:
        f.write(b"apiVersion: tva/v1\nkind: Device\nname: huge\nlabels:\n")
        while f.tell() < 50 << 20:
            f.write(chunk)


def _deep_flow(path: Path) -> None:
    path.write_text("[" * 10_000 + "]" * 10_000 + "\n")


def _deep_block(path: Path) -> None:
    path.write_text("- " * 10_000 + "x\n")


def _bomb(path: Path) -> None:
    shutil.copyfile(BAD / "alias-bomb" / "devices" / "lol.yaml", path)


def _amplifier(path: Path) -> None:
    """A 6 KB document that stays under the node budget but expands ~190,000 values deep in
    the tree: memory must follow the text, not the expansion."""
    text = "apiVersion: tva/v1\nkind: Device\nname: amp\nclass: server\n"
    indent = ""
    for i in range(50):
        text += f"{indent}n{i}:\n"
        indent += "  "
    shared = "&x [" + ",".join(["0"] * 1000) + "]"
    text += indent + "[" + ",".join([shared] + ["*x"] * 189) + "]\n"
    path.write_text(text)


def _alias_depth(path: Path) -> None:
    """Each value is shallow where it is written, but the aliases nest 80 levels deep."""
    lines = ["a0: &a0 [x]"] + [f"a{i}: &a{i} [*a{i - 1}]" for i in range(1, 80)]
    path.write_text("\n".join(lines) + "\n")


HOSTILE: dict[str, tuple[Callable[[Path], None], str]] = {
    "huge-file": (_huge, f"file is larger than {MAX_FILE_BYTES // 1024} KiB"),
    "deep-flow": (_deep_flow, f"nesting deeper than {MAX_DEPTH} levels"),
    "deep-block": (_deep_block, f"nesting deeper than {MAX_DEPTH} levels"),
    "alias-bomb": (_bomb, f"file expands to more than {MAX_NODES} values"),
    "alias-depth": (_alias_depth, f"nesting deeper than {MAX_DEPTH} levels once aliases"),
    "amplifier": (_amplifier, "unknown field"),
}


@pytest.fixture(scope="module")
def hostile_fleets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The base fleet plus one hostile file each, made once for the module (50 MB is slow)."""
    made = {}
    for name, (write, _) in HOSTILE.items():
        root = tmp_path_factory.mktemp(name) / "fleet"
        shutil.copytree(BASE, root)
        write(root / "devices" / "hostile.yaml")
        made[name] = root
    return made


def _only_problem(e: ValidationFailed) -> Problem:
    assert len(e.problems) == 1, str(e)
    return e.problems[0]


@pytest.mark.parametrize("name", list(HOSTILE))
def test_refused_in_process_with_small_peak_memory(name: str, hostile_fleets: dict[str, Path]) -> None:
    root = hostile_fleets[name]
    load_fleet(str(BASE))  # lazy imports and caches first: measure the loading only
    tracemalloc.start()
    try:
        with pytest.raises(ValidationFailed) as info:
            load_fleet(str(root))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    p = _only_problem(info.value)
    assert p.file == str(root / "devices" / "hostile.yaml")
    assert p.line >= 1
    assert HOSTILE[name][1] in p.message
    assert peak < PEAK_LIMIT, f"peak {peak / 2**20:.1f} MiB"


def test_the_huge_file_is_really_50_mb(hostile_fleets: dict[str, Path]) -> None:
    assert (hostile_fleets["huge-file"] / "devices" / "hostile.yaml").stat().st_size >= 50 << 20


def _limit_address_space() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))


def _tva_capped(root: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TVA_")}
    return subprocess.run(
        [str(TVA), "validate", str(root)], env=env, capture_output=True, text=True,
        timeout=120, preexec_fn=_limit_address_space,
    )


def test_capped_tva_still_validates_a_good_fleet() -> None:
    """The control for the test below: the cap leaves room for ordinary work."""
    proc = _tva_capped(BASE)
    assert proc.returncode == 0, proc.stderr
    assert "valid" in proc.stdout


@pytest.mark.parametrize("name", ["huge-file", "alias-bomb", "deep-flow", "amplifier"])
def test_refused_by_a_memory_capped_tva(name: str, hostile_fleets: dict[str, Path]) -> None:
    root = hostile_fleets[name]
    proc = _tva_capped(root)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    assert "MemoryError" not in proc.stderr
    first = proc.stderr.splitlines()[0]
    assert first.startswith(f"{root / 'devices' / 'hostile.yaml'}:")
    assert HOSTILE[name][1] in first


def test_symlink_out_of_the_repo_is_not_followed(tmp_path: Path) -> None:
    secret = tmp_path / "secret.yaml"
    secret.write_text("apiVersion: tva/v1\nkind: Source\nname: leaked\nprovenance: public\n")
    root = tmp_path / "fleet"
    shutil.copytree(BASE, root)
    (root / "sources" / "leak.yaml").symlink_to(secret)
    with pytest.raises(ValidationFailed) as info:
        load_fleet(str(root))
    p = _only_problem(info.value)
    assert p.file.endswith("sources/leak.yaml")
    assert "points outside the repo" in p.message


def test_symlink_inside_the_repo_is_read(tmp_path: Path) -> None:
    root = tmp_path / "fleet"
    shutil.copytree(BASE, root)
    (root / "templates").mkdir()
    (root / "devices" / "seedbox.yaml").rename(root / "templates" / "seedbox.txt")
    (root / "devices" / "seedbox.yaml").symlink_to(Path("..") / "templates" / "seedbox.txt")
    assert "seedbox" in load_fleet(str(root)).desired.devices


@pytest.mark.timeout(60)
def test_a_fifo_is_refused_not_waited_on(tmp_path: Path) -> None:
    root = tmp_path / "fleet"
    shutil.copytree(BASE, root)
    os.mkfifo(root / "devices" / "pipe.yaml")
    with pytest.raises(ValidationFailed) as info:
        load_fleet(str(root))
    p = _only_problem(info.value)
    assert p.file.endswith("devices/pipe.yaml")
    assert "not a regular file" in p.message


@pytest.mark.parametrize(
    "payload",
    [b"l" * 100_000 + b"e" * 100_000, b"d" * 5000, b"i" + b"9" * 5000 + b"e", b""],
    ids=["deep-list", "open-dicts", "huge-int", "empty"],
)
def test_hostile_torrent_is_a_problem_not_a_crash(payload: bytes, tmp_path: Path) -> None:
    root = tmp_path / "fleet"
    shutil.copytree(BASE, root)
    (root / "torrents" / "sample.torrent").write_bytes(payload)
    with pytest.raises(ValidationFailed) as info:
        load_fleet(str(root))
    p = _only_problem(info.value)
    assert p.field == "items[2].torrent"
    assert "is not a valid .torrent file" in p.message
    assert INTERNAL not in p.message
