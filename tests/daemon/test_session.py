"""Each node's Transmission session is desired state (issue 13): a setting changed by hand is
set back on the next pass, or only reported in warn mode; settings the fleet does not name are
left alone."""

from __future__ import annotations

from tests.daemon.conftest import FLEET, SoloFleet, wait_for

OWNED = FLEET + "  transmission: {dht: false, pex: false, encryption: required}\n"


def session(solo: SoloFleet) -> dict[str, object]:
    return dict(solo.daemon.client().get_session().fields)


def test_session_drift_is_corrected_and_unowned_settings_are_left_alone(solo_fleet: SoloFleet) -> None:
    client = solo_fleet.daemon.client()
    client.set_session(dht_enabled=True, encryption="tolerated", lpd_enabled=True)
    solo_fleet.commit({"fleet.yaml": OWNED}, "the fleet owns DHT, PEX and encryption")
    d = solo_fleet.controller()
    d.start()
    try:
        wait_for(lambda: session(solo_fleet)["encryption"] == "required", what="encryption set")
        assert session(solo_fleet)["dht-enabled"] is False
        # By hand again: the next pass sets it back.
        client.set_session(dht_enabled=True)
        passes = d.passes
        d.wake("test")
        wait_for(lambda: d.passes > passes + 1 and session(solo_fleet)["dht-enabled"] is False,
                 what="DHT off again")
    finally:
        d.stop()
    assert session(solo_fleet)["lpd-enabled"] is True, "LPD is not the fleet's: left alone"
    kinds = [e.kind.value for e in d.runtime.journal.entries()]
    assert kinds.count("set-session") >= 2


def test_warn_mode_reports_and_changes_nothing(solo_fleet: SoloFleet) -> None:
    solo_fleet.daemon.client().set_session(dht_enabled=True)
    solo_fleet.commit({"fleet.yaml": OWNED + "  session_drift: warn\n"}, "warn only")
    d = solo_fleet.controller()
    d.start()
    try:
        wait_for(lambda: d.last is not None and any(
            w.code == "session-drift" for w in d.last.plan.warnings), what="the drift warning")
    finally:
        d.stop()
    assert session(solo_fleet)["dht-enabled"] is True
    assert not any(a.kind.value == "set-session" for a in d.last.plan.actions)  # type: ignore[union-attr]
