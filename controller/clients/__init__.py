"""One client per outside system: the only code that speaks its protocol.

- ``transmission``: Transmission's RPC (transmission-rpc), shared by the observer and the
  actuator of a node.
- ``git``: every git command and every read of a repository's objects (gitpython).
- ``peers``: other controllers' HTTP API (httpx).

mpv is the exception: python-mpv embeds the player in-process, so it lives in
``controller.player.host``, which hosts it. Each client owns its connection, URL and
credential handling, and translates its library's errors into tva's temporary/permanent
errors (``controller.errors``) at this edge.
"""
