"""The public face's policy: how public items enter the fleet (``policy.public_face``).

Public items enter through the ``public_swarm_face`` (docs/planner.md#the-public-face); this
model holds the one choice the owner has when the face is away past its grace: let a home node
fetch from the public swarm itself (only behind its VPN, while the VPN is up), or wait.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["FacePolicy"]


class FacePolicy(BaseModel):
    # The same configuration as schemas.desired.Model (which imports this module).
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    fallback_behind_vpn: bool = Field(
        default=False,
        description="When the public_swarm_face is away past its grace, a home node whose VPN "
        "profile is up and has its kill switch on may fetch public items from the public swarm "
        "itself. Off: they wait for the face.",
    )
