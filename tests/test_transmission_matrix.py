"""The Transmission version matrix: a version that cannot run here skips, except in CI."""

from __future__ import annotations

import pytest

from controller.lab.transmission import system_root, unavailable
from tests.support import transmission as support


def test_a_missing_version_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(support, "unavailable", lambda version: "no root here")
    with pytest.raises(pytest.skip.Exception, match="no root here"):
        support.require_version("4.1")


def test_a_missing_version_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    monkeypatch.setattr(support, "unavailable", lambda version: "no root here")
    with pytest.raises(pytest.fail.Exception, match="required in CI: no root here"):
        support.require_version("4.1")


def test_an_available_version_is_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    monkeypatch.setattr(support, "unavailable", lambda version: None)
    assert support.require_version("4.1") == "4.1"


def test_versions_are_known_by_name() -> None:
    assert system_root("3.00") is None and system_root("4.1") is not None
    with pytest.raises(ValueError, match="unknown Transmission version"):
        system_root("2.94")
    assert unavailable("3.00") is None  # the host's daemon (scripts/setup installs it)
