"""Live confirmation before a removal: the local player and the holders the floor relies on."""

from __future__ import annotations

from controller.act.confirm import Confirmer
from controller.desired import load_fleet
from tests.conftest import REFERENCE_FLEET

ITEM = "ab" * 20


def confirmer(own: bool, playing: set[str]) -> Confirmer:
    desired = load_fleet(str(REFERENCE_FLEET)).desired
    return Confirmer(desired, "tv", own_holds=lambda ih: own, playing=lambda: playing)


def test_nothing_to_confirm_when_no_floor_relies_on_another_copy() -> None:
    assert confirmer(own=False, playing=set()).unconfirmed(ITEM, []) is None


def test_an_item_the_player_has_open_is_never_removed() -> None:
    why = confirmer(own=True, playing={ITEM}).unconfirmed(ITEM, [])
    assert why is not None and "player has it open" in why


def test_own_copy_must_be_complete_when_relied_on() -> None:
    assert confirmer(own=True, playing=set()).unconfirmed(ITEM, ["tv"]) is None
    why = confirmer(own=False, playing=set()).unconfirmed(ITEM, ["tv"])
    assert why is not None and "tv could not confirm" in why


def test_a_peer_that_cannot_be_asked_makes_the_removal_wait() -> None:
    # nas's token is a file reference (/etc/tva/api-token) that does not exist here.
    why = confirmer(own=True, playing=set()).unconfirmed(ITEM, ["nas"])
    assert why is not None and why.startswith("nas could not confirm")
