"""``tva schema``: the committed files are current; regeneration is byte-identical; --check names stale files."""

from __future__ import annotations

import shutil
from pathlib import Path

from typer.testing import CliRunner

from controller.cli.main import app
from controller.cli.schema import Targets, default_targets, differences, expected
from controller.generate.json_schema import render_all
from tests.conftest import REPO_ROOT

runner = CliRunner()


def test_check_passes_on_the_committed_tree() -> None:
    result = runner.invoke(app, ["schema", "--check"])
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output


def test_default_targets_are_the_source_tree() -> None:
    targets = default_targets()
    assert targets.schema_dir == REPO_ROOT / "schemas" / "json"
    assert targets.reference == REPO_ROOT / "docs" / "reference.md"
    assert differences(targets) == []


def test_out_writes_schemas_and_regeneration_is_byte_identical(tmp_path: Path) -> None:
    out = tmp_path / ".tva" / "schemas"
    first = runner.invoke(app, ["schema", "--out", str(out)])
    assert first.exit_code == 0, first.output
    written = {p.name: p.read_bytes() for p in out.iterdir()}
    assert set(written) == set(render_all())
    assert not (out / "reference.md").exists()  # --out is for a fleet repo's schema copies

    second = runner.invoke(app, ["schema", "--out", str(out)])
    assert second.exit_code == 0
    assert "0 written" in second.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == written

    check = runner.invoke(app, ["schema", "--check", "--out", str(out)])
    assert check.exit_code == 0, check.output


def test_check_names_stale_missing_and_obsolete_files(tmp_path: Path) -> None:
    out = tmp_path / "schemas"
    assert runner.invoke(app, ["schema", "--out", str(out)]).exit_code == 0
    device = out / "device.schema.json"
    device.write_text(device.read_text().replace('"class"', '"klass"'))
    (out / "plan.schema.json").unlink()
    (out / "gadget.schema.json").write_text("{}\n")

    result = runner.invoke(app, ["schema", "--check", "--out", str(out)])
    assert result.exit_code == 1
    assert "device.schema.json: stale" in result.output
    assert "plan.schema.json: missing" in result.output
    assert "gadget.schema.json: obsolete" in result.output
    assert "3 generated file(s) out of date" in result.output
    assert '"klass"' in device.read_text()  # --check writes nothing

    fixed = runner.invoke(app, ["schema", "--out", str(out)])
    assert fixed.exit_code == 0
    assert not (out / "gadget.schema.json").exists()
    assert runner.invoke(app, ["schema", "--check", "--out", str(out)]).exit_code == 0


def test_stale_reference_is_detected(tmp_path: Path) -> None:
    """What happens in CI when a model changes but docs/reference.md was not regenerated."""
    schema_dir = tmp_path / "schemas" / "json"
    shutil.copytree(REPO_ROOT / "schemas" / "json", schema_dir)
    reference = tmp_path / "docs" / "reference.md"
    reference.parent.mkdir()
    reference.write_text(expected(default_targets())[default_targets().reference])  # type: ignore[index]
    targets = Targets(schema_dir, reference)
    assert differences(targets) == []

    reference.write_text(reference.read_text().replace("Free space a custodian", "Space"))
    assert [(d.path.name, d.why) for d in differences(targets)] == [("reference.md", "stale")]
