"""The read-only web dashboard each controller serves under ``/ui`` (docs/dashboard.md)."""

from controller.dashboard.app import PAGE_SIZE, PREFIX, DashboardSource, install_dashboard
from controller.dashboard.auth import Sessions
from controller.dashboard.snapshot import Inputs, Snapshot, SourceRef, build_snapshot

__all__ = [
    "PAGE_SIZE",
    "PREFIX",
    "DashboardSource",
    "Inputs",
    "Sessions",
    "Snapshot",
    "SourceRef",
    "build_snapshot",
    "install_dashboard",
]
