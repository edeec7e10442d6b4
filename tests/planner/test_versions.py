"""The plan reports a Transmission RPC version tva does not know, and only such a one."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.planner.test_cases import CASES, run_case


def test_only_the_unknown_rpc_version_is_reported(tmp_path: Path) -> None:
    case = yaml.safe_load((CASES / "transmission-version-unknown.yaml").read_text())
    _, p = run_case(case, tmp_path)
    [warning] = [w for w in p.warnings if w.code == "transmission-version-unknown"]
    assert warning.node == "nas" and warning.subject == "19"
    assert "5.0.0" in warning.message


def test_a_status_without_an_rpc_version_is_not_reported(tmp_path: Path) -> None:
    case = yaml.safe_load((CASES / "transmission-version-unknown.yaml").read_text())
    del case["nodes"]["nas"]["rpc"]
    _, p = run_case(case, tmp_path)
    assert [w for w in p.warnings if w.code == "transmission-version-unknown"] == []
