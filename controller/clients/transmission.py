"""The Transmission RPC client: one per node, shared by the observer and the actuator.

It owns what talking to one daemon takes: the URL (``http(s)://host:port/path``, user info
allowed), the credentials (resolved from the device's reference when the client is made), one
transmission-rpc connection made lazily and dropped when the daemon cannot be reached, and the
translation of transmission-rpc's and requests' errors into tva's:

- refused credentials or address -> ``AuthError`` (permanent: a person must fix them);
- no connection, a timeout, or an answer that is not Transmission RPC -> ``UnreachableError``;
- the daemon answered with an error result -> ``ReadRefused`` for a read (temporary: the
  daemon may be starting, a path may appear) or ``WriteRefused`` for a change (permanent: the
  same request will be refused again). Both are ``RequestRefused``.

Messages never carry the password. Before connecting, the node's egress policy is asked
(``controller.egress``): never a link-local or metadata address, and the password only to
loopback or what the node's operator allows.

Versions: the client negotiates by the daemon's ``rpc-version``, never by its version string.
:class:`Capabilities` names what tva uses that a version offers (labels honoured on
``torrent-add``, ``trackerList``, ``total_size`` in ``free-space`` from RPC 17; the ``table``
format from 16), learned from ``session-get`` on each connection and on every
:meth:`TransmissionClient.session` (the observer's, every pass), so a daemon upgraded in place
is seen at the next pass. :data:`KNOWN_RPC_VERSIONS` are those tva is tested against.

HTTP without compression or keep-alive. Gzip costs the daemon more than sending on the
loopback. Transmission 3.00 writes a large answer in pieces without ``TCP_NODELAY``; on a
kept-alive connection Nagle's algorithm and the client's delayed ACK stall most answers over
16 KiB by 40 ms, while a new connection starts in quick-ACK mode.

``torrent-get`` goes through transmission-rpc's HTTP layer (``Client._http_query``: session id,
auth and connection errors) and is parsed by pydantic-core, a third faster than the
``json.loads`` in ``Client._request``. ``free-space`` uses ``Client._request`` because the
public ``free_space`` drops ``total_size``. These private entry points are why the dependency
is pinned below 8; the tests exercise each of them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import transmission_rpc
from pydantic_core import from_json
from transmission_rpc.constants import RpcMethod
from transmission_rpc.error import TransmissionAuthError, TransmissionError

from controller.egress import Secret, check
from controller.errors import AuthError, PermanentError, TemporaryError, TvaError, UnreachableError
from controller.secrets import resolve
from schemas.desired import Device, Service
from schemas.observed import KNOWN_RPC_VERSIONS

__all__ = [
    "DEFAULT_TIMEOUT",
    "KNOWN_RPC_VERSIONS",
    "Capabilities",
    "ReadRefused",
    "RequestRefused",
    "RpcMethod",
    "Torrent",
    "TransmissionClient",
    "WriteRefused",
    "runs_transmission",
]

DEFAULT_TIMEOUT = 30.0

_T = TypeVar("_T")
_Raw = dict[str, Any]

Torrent = transmission_rpc.Torrent
"""A torrent as transmission-rpc returns it (``.fields``, ``.hash_string``)."""


class RequestRefused(TvaError):
    """The daemon answered, but refused the request (a bad argument, a missing path...)."""


class ReadRefused(RequestRefused, TemporaryError):
    """A read was refused: worth asking again later."""


class WriteRefused(RequestRefused, PermanentError):
    """A change was refused: the same request would be refused again."""


@dataclass(frozen=True)
class Capabilities:
    """What one daemon's RPC offers tva, decided by its ``rpc-version`` alone."""

    rpc_version: int

    @property
    def labels_on_add(self) -> bool:
        """``torrent-add`` honours ``labels`` (RPC 17, Transmission 4.0; 3.00 ignores them)."""
        return self.rpc_version >= 17

    @property
    def tracker_list(self) -> bool:
        """``torrent-set`` takes ``trackerList``, the whole list in tiers (RPC 17; 3.00 ignores
        it and answers success)."""
        return self.rpc_version >= 17

    @property
    def table_format(self) -> bool:
        """``torrent-get`` answers ``format: "table"`` (RPC 16)."""
        return self.rpc_version >= 16

    @property
    def known(self) -> bool:
        """Is this an RPC version tva is tested against?"""
        return self.rpc_version in KNOWN_RPC_VERSIONS


def runs_transmission(device: Device) -> bool:
    """Does this device run a Transmission that tva talks to? (The one place that decides.)"""
    return Service.transmission in device.services and device.addresses.transmission_rpc is not None


@dataclass(frozen=True)
class _Endpoint:
    url: str
    """The URL without user info (safe to show)."""
    protocol: Any
    host: str
    port: int
    path: str
    username: str | None
    password: str | None


def _endpoint(url: str, username: str | None, password: str | None) -> _Endpoint:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PermanentError(
            f"Transmission RPC URL {url!r} is not an http(s) URL with a host, "
            "e.g. http://127.0.0.1:9091/transmission/rpc"
        )
    return _Endpoint(
        url=parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl(),
        protocol=parts.scheme,
        host=parts.hostname,
        port=parts.port or (443 if parts.scheme == "https" else 80),
        path=parts.path or "/transmission/rpc",
        username=username if username is not None else _unquoted(parts.username),
        password=password if password is not None else _unquoted(parts.password),
    )


class TransmissionClient:
    """One Transmission daemon, reached at ``url`` (e.g. ``http://127.0.0.1:9091/transmission/rpc``).

    Credentials are resolved values (or the URL's user info). Thread-safe: the node's loop
    and the API thread (live confirmations) share it; requests are made one at a time.
    """

    def __init__(
        self,
        url: str,
        username: str | None = None,
        password: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._endpoint = _endpoint(url, username, password)
        self.timeout = timeout
        self._client: transmission_rpc.Client | None = None
        self._capabilities: Capabilities | None = None
        self._lock = threading.RLock()

    @classmethod
    def for_device(cls, device: Device, *, timeout: float = DEFAULT_TIMEOUT) -> TransmissionClient | None:
        """The client of the device's Transmission, credentials resolved now; None if it has none."""
        if not runs_transmission(device):
            return None
        assert device.addresses.transmission_rpc is not None
        creds = device.credentials
        password = resolve(creds.transmission_password) if creds.transmission_password else None
        return cls(device.addresses.transmission_rpc, creds.transmission_user, password,
                   timeout=timeout)

    @property
    def url(self) -> str:
        """The daemon's URL, without credentials."""
        return self._endpoint.url

    def reset(self) -> None:
        """Drop the connection: the next call reconnects (and learns a new session id)."""
        self._client = None
        self._capabilities = None

    def session(self) -> transmission_rpc.Session:
        """``session-get`` (version, settings, session id); refreshes :meth:`capabilities`."""
        session: transmission_rpc.Session = self.read(lambda c: c.get_session())
        self._capabilities = Capabilities(int(session.fields.get("rpc-version", 0)))
        return session

    def capabilities(self) -> Capabilities:
        """What the daemon offers, from its ``rpc-version`` (asked once per connection)."""
        with self._lock:
            if self._capabilities is None:
                self.session()
            assert self._capabilities is not None
            return self._capabilities

    # -- calls ----------------------------------------------------------------------------------

    def read(self, call: Callable[[transmission_rpc.Client], _T]) -> _T:
        """A request that changes nothing; a refusal is ``ReadRefused`` (temporary)."""
        return self._call(call, ReadRefused)

    def write(self, call: Callable[[transmission_rpc.Client], _T]) -> _T:
        """A request that changes the daemon; a refusal is ``WriteRefused`` (permanent)."""
        return self._call(call, WriteRefused)

    def torrent_get(self, arguments: _Raw) -> _Raw:
        """``torrent-get`` with raw ``arguments``; returns the answer's arguments."""
        query = {"method": RpcMethod.TorrentGet.value, "arguments": arguments}
        text = self.read(lambda c: c._http_query(query))
        try:
            answer = from_json(text)
        except ValueError as e:
            self.reset()
            raise UnreachableError(
                f"cannot reach Transmission at {self.url}: the answer is not Transmission RPC "
                "(check the URL's path)"
            ) from e
        if not isinstance(answer, dict) or answer.get("result") != "success":
            result = answer.get("result") if isinstance(answer, dict) else None
            raise ReadRefused(f"Transmission at {self.url}: torrent-get failed: {result!r}")
        arguments_out: _Raw = answer.get("arguments") or {}
        return arguments_out

    def session_set(self, arguments: _Raw) -> None:
        """``session-set`` with raw ``arguments`` (Transmission's own names)."""
        self.write(lambda c: c._request(RpcMethod.SessionSet, arguments))

    def session_get(self) -> _Raw:
        """``session-get``: every session setting, by Transmission's names."""
        return self.read(lambda c: dict(c.get_session().fields))

    def request(self, method: RpcMethod, arguments: _Raw,
                ids: str | list[str | int] | None = None) -> _Raw:
        """Any other read, raw (e.g. ``free-space``, whose ``total_size`` the public call drops)."""
        answer: _Raw = self.read(lambda c: c._request(method, arguments, ids))
        return answer

    # -- transport ------------------------------------------------------------------------------

    def _connect(self) -> transmission_rpc.Client:
        if self._client is None:
            e = self._endpoint
            check(e.url, Secret.transmission if e.password is not None else Secret.none)
            client = self._guarded(
                lambda: transmission_rpc.Client(
                    protocol=e.protocol, host=e.host, port=e.port, path=e.path,
                    username=e.username, password=e.password, timeout=self.timeout,
                ),
                ReadRefused,
            )
            # No compression and no keep-alive: see the module docstring.
            client._http_session.headers["Accept-Encoding"] = "identity"
            client._http_session.headers["Connection"] = "close"
            # Transmission never redirects; a redirect could lead past the egress check.
            client._http_session.max_redirects = 0
            self._client = client
        return self._client

    def _call(self, call: Callable[[transmission_rpc.Client], _T],
              refused: type[RequestRefused]) -> _T:
        with self._lock:
            client = self._connect()
            return self._guarded(lambda: call(client), refused)

    def _guarded(self, call: Callable[[], _T], refused: type[RequestRefused]) -> _T:
        try:
            return call()
        except (TransmissionError, OSError) as e:
            error = self._translate(e, refused)
            if isinstance(error, UnreachableError):
                self.reset()
            raise error from e

    def _translate(self, error: TransmissionError | OSError,
                   refused: type[RequestRefused]) -> TvaError:
        password = self._endpoint.password

        def redact(text: str) -> str:
            return text.replace(password, "***") if password else text

        if isinstance(error, TransmissionAuthError):
            code = getattr(error.original, "status_code", None)
            if code == 403:
                return AuthError(
                    f"Transmission at {self.url} refused this controller (HTTP 403): its "
                    "rpc-whitelist must admit the controller's address"
                )
            return AuthError(
                f"Transmission at {self.url} refused the credentials (HTTP {code or 401}): check "
                "the device's credentials reference"
            )
        if isinstance(error, TransmissionError) and error.response is not None:
            return refused(f"Transmission at {self.url}: {redact(error.message)}")  # it answered
        return UnreachableError(
            f"cannot reach Transmission at {self.url}: {_reason(error, self.timeout, redact)}"
        )


def _reason(error: BaseException, timeout: float, redact: Callable[[str], str]) -> str:
    """The most telling cause in an exception chain, without credentials."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        if isinstance(seen, TimeoutError) or "timeout" in type(seen).__name__.lower():
            return f"no answer within {timeout:g}s"
        seen = seen.__cause__ or seen.__context__
    if isinstance(error, TransmissionError) and error.raw_response is not None:
        return "the answer is not Transmission RPC (check the URL's path)"
    return redact(str(error)) or type(error).__name__


def _unquoted(value: str | None) -> str | None:
    return unquote(value) if value else None
