"""Metainfo and magnets of fleet-only items, stripped of everything that points outside the
fleet before Transmission sees them.

A fleet-only item (provenance not public) may be committed with a private tracker's announce
list, web seeds, or a magnet with ``tr=`` and ``ws=``: added as they are, Transmission would
announce it to those trackers at once. So the add gets a metainfo whose only tracker is this
node's fleet tracker and whose ``info`` dictionary is kept byte for byte (the info-hash is the
hash of those bytes: re-encoding a dictionary that is not in canonical order would change it),
and a magnet with only its ``xt`` and ``dn``.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from fastbencode import bdecode, bencode  # type: ignore[attr-defined]

from controller.errors import PermanentError

__all__ = [
    "BadMetainfo",
    "fleet_only_magnet",
    "fleet_only_metainfo",
    "magnet_with_trackers",
    "magnet_with_webseeds",
    "with_trackers",
    "with_webseeds",
]

MAX_DEPTH = 64
_KEEP = frozenset({"xt", "dn", "xl"})


class BadMetainfo(PermanentError):
    """The .torrent is not bencoded metainfo with an info dictionary."""


def fleet_only_metainfo(data: bytes, announce: str | None) -> bytes:
    """``data`` with ``announce`` as its one tracker (none when None), the ``info`` dictionary
    unchanged, and nothing else (no announce-list, url-list, httpseeds, nodes, comment)."""
    if not data.startswith(b"d"):
        raise BadMetainfo("the .torrent is not a bencoded dictionary")
    info: bytes | None = None
    i = 1
    while i < len(data) and data[i : i + 1] != b"e":
        key, i = _string(data, i)
        end = _skip(data, i, 1)
        if key == b"info":
            info = data[i:end]
        i = end
    if info is None or not info.startswith(b"d"):
        raise BadMetainfo("the .torrent has no info dictionary")
    out = b"d"
    if announce is not None:
        url = announce.encode()
        out += b"8:announce" + str(len(url)).encode() + b":" + url
    return out + b"4:info" + info + b"e"


def _entries(data: bytes) -> dict[bytes, bytes]:
    """The top-level keys of metainfo and the raw bytes of each value."""
    if not data.startswith(b"d"):
        raise BadMetainfo("the .torrent is not a bencoded dictionary")
    entries: dict[bytes, bytes] = {}
    i = 1
    while i < len(data) and data[i : i + 1] != b"e":
        key, i = _string(data, i)
        end = _skip(data, i, 1)
        entries[key] = data[i:end]
        i = end
    if b"info" not in entries or not entries[b"info"].startswith(b"d"):
        raise BadMetainfo("the .torrent has no info dictionary")
    return entries


def _encode(entries: dict[bytes, bytes]) -> bytes:
    return b"d" + b"".join(_bstr(k) + entries[k] for k in sorted(entries)) + b"e"


def with_trackers(data: bytes, urls: list[str]) -> bytes:
    """``data`` with ``urls`` added to its announce list, a tier each (BEP 12; the announce
    list replaces ``announce``, so a lone ``announce`` becomes its first tier), every other key
    byte for byte. Transmission 4.x announces only to the trackers a torrent came in with."""
    if not urls:
        return data
    entries = _entries(data)
    tiers: list[list[bytes]] = []
    if b"announce-list" in entries:
        listed = bdecode(entries[b"announce-list"])
        if isinstance(listed, list):
            tiers = [[u for u in tier if isinstance(u, bytes)] for tier in listed
                     if isinstance(tier, list)]
            tiers = [tier for tier in tiers if tier]
    announce = bdecode(entries[b"announce"]) if b"announce" in entries else None
    if not tiers and isinstance(announce, bytes):
        tiers = [[announce]]
    have = {u for tier in tiers for u in tier}
    missing = [u.encode() for u in dict.fromkeys(urls) if u.encode() not in have]
    if not missing:
        return data
    tiers += [[u] for u in missing]
    entries[b"announce-list"] = bencode(tiers)
    if not isinstance(announce, bytes):
        entries[b"announce"] = _bstr(tiers[0][0])
    return _encode(entries)


def magnet_with_trackers(magnet: str, urls: list[str]) -> str:
    """``magnet`` with a ``tr=`` for each of ``urls`` it lacks."""
    have = {v for k, v in parse_qsl(magnet.partition("?")[2]) if k == "tr"}
    missing = [u for u in dict.fromkeys(urls) if u not in have]
    if not missing:
        return magnet
    joiner = "&" if "?" in magnet else "?"
    return magnet + joiner + urlencode([("tr", u) for u in missing])


def with_webseeds(data: bytes, urls: list[str]) -> bytes:
    """``data`` with ``urls`` as its web seeds (BEP 19 ``url-list``), every other key byte for
    byte (``url-list`` sits outside ``info``: the info-hash does not change)."""
    if not urls:
        return data
    entries = _entries(data)
    entries[b"url-list"] = b"l" + b"".join(_bstr(u.encode()) for u in urls) + b"e"
    return _encode(entries)


def magnet_with_webseeds(magnet: str, urls: list[str]) -> str:
    """``magnet`` with ``ws=`` for each of ``urls``."""
    if not urls:
        return magnet
    joiner = "&" if "?" in magnet else "?"
    return magnet + joiner + urlencode([("ws", u) for u in urls])


def _bstr(value: bytes) -> bytes:
    return str(len(value)).encode() + b":" + value


def fleet_only_magnet(magnet: str) -> str:
    """``magnet`` with only its ``xt``, ``dn`` and ``xl`` (no ``tr``, ``ws``, ``xs``, ``as``...)."""
    head, _, query = magnet.partition("?")
    kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k in _KEEP]
    return f"{head}?{urlencode(kept, safe=':')}"


def _string(data: bytes, i: int) -> tuple[bytes, int]:
    colon = data.find(b":", i, i + 21)
    if colon < 0 or not data[i:colon].isdigit():
        raise BadMetainfo("the .torrent has a malformed string")
    start = colon + 1
    end = start + int(data[i:colon])
    if end > len(data):
        raise BadMetainfo("the .torrent is truncated")
    return data[start:end], end


def _skip(data: bytes, i: int, depth: int) -> int:
    """The index just past the value at ``i`` (iterative depth is bounded: hostile input)."""
    if depth > MAX_DEPTH:
        raise BadMetainfo(f"the .torrent nests deeper than {MAX_DEPTH}")
    head = data[i : i + 1]
    if head == b"i":
        end = data.find(b"e", i)
        if end < 0:
            raise BadMetainfo("the .torrent is truncated")
        return end + 1
    if head in (b"l", b"d"):
        i += 1
        while data[i : i + 1] != b"e":
            if i >= len(data):
                raise BadMetainfo("the .torrent is truncated")
            if head == b"d":
                _, i = _string(data, i)
            i = _skip(data, i, depth + 1)
        return i + 1
    return _string(data, i)[1]
