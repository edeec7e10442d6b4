"""Fleet status from a directory of saved NodeStatus files (``tva plan --status DIR``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller.errors import PermanentError
from controller.status import DirectoryStatusTransport, StatusTransport, parse_status
from controller.status.transport import MAX_STATUS_BYTES, SkippedStatus
from schemas.observed import NodeStatus, TransmissionStatus
from tests.conftest import REPO_ROOT

AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def status(node: str, version: str = "1") -> NodeStatus:
    return NodeStatus(
        node=node,
        observed_at=AT,
        controller_version=version,
        transmission=TransmissionStatus(reachable=False, error="connection refused"),
    )


def test_published_statuses_read_back(tmp_path: Path) -> None:
    transport: StatusTransport = DirectoryStatusTransport(tmp_path / "status")
    transport.publish(status("tv"))
    transport.publish(status("nas", "1"))
    transport.publish(status("nas", "2"))  # replaces the previous file

    assert transport.read_all() == [status("nas", "2"), status("tv")]
    assert sorted(p.name for p in (tmp_path / "status").iterdir()) == ["nas.json", "tv.json"]
    assert transport.skipped == []


def test_bad_files_are_skipped_and_reported(tmp_path: Path) -> None:
    d = tmp_path / "status"
    DirectoryStatusTransport(d).publish(status("nas"))
    (d / "broken.json").write_text('{"node": "tv"')
    (d / "naive.json").write_text(
        status("seedbox").model_dump_json().replace("+00:00", "").replace("Z", "")
    )
    (d / "notes.txt").write_text("not a status")

    transport = DirectoryStatusTransport(d)
    assert [s.node for s in transport.read_all()] == ["nas"]
    reasons = {Path(s.source).name: s.reason for s in transport.skipped}
    assert set(reasons) == {"broken.json", "naive.json"}
    assert "not a valid tva.status/v1 document" in reasons["broken.json"]
    assert "no UTC offset" in reasons["naive.json"]


def test_a_missing_directory_is_an_error_not_an_empty_fleet(tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match="does not exist"):
        DirectoryStatusTransport(tmp_path / "nowhere").read_all()


def test_a_node_name_that_is_unsafe_as_a_file_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match="not a valid node name"):
        DirectoryStatusTransport(tmp_path).publish(status("../etc"))
    assert list(tmp_path.iterdir()) == []


def test_parse_status_refuses_other_formats_and_oversized_input() -> None:
    other = status("nas").model_dump_json().replace("tva.status/v1", "tva.status/v2").encode()
    result = parse_status(other, source="x")
    assert isinstance(result, SkippedStatus) and "format" in result.reason
    huge = parse_status(b" " * (MAX_STATUS_BYTES + 1), source="y")
    assert isinstance(huge, SkippedStatus) and "larger than" in huge.reason


def test_the_documented_example_is_a_valid_status() -> None:
    doc = (REPO_ROOT / "docs" / "status-format.md").read_text()
    example = re.search(r"## Example\n\n```json\n(.*?)```", doc, re.DOTALL)
    assert example is not None
    parsed = parse_status(example.group(1).encode(), source="docs/status-format.md")
    assert isinstance(parsed, NodeStatus), parsed
    assert parsed.transmission.torrents[0].complete
