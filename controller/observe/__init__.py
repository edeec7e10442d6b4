"""Observers: the thin, read-only adapters that turn what a node really has into observed-state
models (``schemas.observed``). One module per outside system, each tested against the real thing;
nothing here decides anything (the planner's job) or changes anything (the actuator's).

- ``transmission``: torrents, session rates and free space, over Transmission's RPC.
- ``player``: what mpv has open, over its JSON IPC socket.
- ``host``: free space per storage root, VPN interfaces, mains power.
- ``node``: one look at one node, the above joined into a ``NodeStatus``.
"""
