"""The client of Torznab indexers (Prowlarr, Jackett) over httpx: the one place tva searches.

Everything an indexer sends is hostile: its URL comes from the fleet repo, its answers from
whoever runs it. So, before any request, the URL passes the node's egress policy
(``controller.egress``: no link-local or metadata address; the API key only to loopback, a
private network or what the operator lists); answers are read up to a size cap before anything
parses them; the XML goes through ``defusedxml`` (no DTD, no entities, no external references)
and at most ``MAX_ITEMS`` results are kept. The API key is resolved at the moment of use and
never appears in an error (messages name the indexer by its URL without the query).

Temporary failures (unreachable, HTTP 5xx) are retried a few times here with a short backoff;
HTTP 429 is not: the indexer is left alone for its Retry-After (capped), remembered per
indexer, and the error (a ``TemporaryError`` with that delay) says so. Requests to one indexer
are spaced by ``min_interval`` (a per-indexer rate limit).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit
from xml.etree.ElementTree import Element, ParseError

import httpx
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from controller.egress import Secret, check
from controller.errors import PermanentError, TemporaryError, UnreachableError
from controller.secrets import resolve
from schemas.acquisition import Release
from schemas.desired import Indexer, infohash_from_magnet

__all__ = [
    "MAX_ANSWER_BYTES",
    "MAX_ITEMS",
    "MAX_TORRENT_BYTES",
    "Caps",
    "IndexerError",
    "Query",
    "RateLimited",
    "TorznabClient",
    "parse_caps",
    "parse_results",
]

MAX_ANSWER_BYTES = 2 * 1024 * 1024
"""An answer larger than this is refused before parsing (a search page is tens of KiB)."""
MAX_TORRENT_BYTES = 10 * 1024 * 1024
MAX_ITEMS = 500
MAX_RETRY_AFTER = 3600.0
TIMEOUT = httpx.Timeout(20.0, connect=5.0)
TORZNAB_NS = "http://torznab.com/schemas/2015/feed"
_ATTR = f"{{{TORZNAB_NS}}}attr"


class IndexerError(PermanentError):
    """The indexer answered with something tva cannot use (an error, malformed or huge XML)."""


class RateLimited(TemporaryError):
    """The indexer said HTTP 429, or its Retry-After has not passed yet."""


@dataclass(frozen=True)
class Query:
    """One search: ``mode`` is Torznab's ``t`` (search, tvsearch, movie)."""

    mode: str
    q: str
    season: int | None = None
    episode: int | None = None
    categories: tuple[int, ...] = ()

    def params(self) -> dict[str, str]:
        out = {"t": self.mode, "q": self.q}
        if self.season is not None:
            out["season"] = str(self.season)
        if self.episode is not None:
            out["ep"] = str(self.episode)
        if self.categories:
            out["cat"] = ",".join(str(c) for c in self.categories)
        return out


@dataclass(frozen=True)
class Caps:
    """What ``t=caps`` said: the search modes offered, and the categories."""

    modes: frozenset[str]
    categories: dict[int, str] = field(default_factory=dict)


def _where(url: str) -> str:
    """The indexer's URL as shown in messages: no query, no credentials."""
    p = urlsplit(url)
    host = p.hostname or "?"
    netloc = f"{host}:{p.port}" if p.port else host
    return urlunsplit((p.scheme, netloc, p.path, "", ""))


class TorznabClient:
    """Searches Torznab indexers; one ``httpx.Client`` (connection pool) for all."""

    def __init__(
        self,
        client: httpx.Client | None = None,
        *,
        min_interval: float = 1.0,
        attempts: int = 3,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self.http = client or httpx.Client(timeout=TIMEOUT, follow_redirects=False)
        self.min_interval = min_interval
        self.attempts = attempts
        self.clock = clock
        self.sleep = sleep
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._blocked: dict[str, float] = {}
        self._caps: dict[str, frozenset[str]] = {}

    # -- the API ---------------------------------------------------------------------------------

    def caps(self, indexer: Indexer) -> Caps:
        return parse_caps(self._api(indexer, {"t": "caps"}), _where(indexer.url))

    def search(self, source: str, indexer: Indexer, query: Query) -> list[Release]:
        """Search with ``query``'s mode when the indexer's caps offer it, else a plain
        ``t=search`` (an episode then as ``SxxEyy`` in the query)."""
        cats = query.categories or tuple(indexer.categories)
        q = Query(query.mode, query.q, query.season, query.episode, cats)
        if q.mode != "search" and q.mode not in self._modes(indexer):
            words = q.q
            if q.episode is not None:
                words += f" S{q.season or 1:02d}E{q.episode:02d}"
            q = Query("search", words, None, None, cats)
        return parse_results(self._api(indexer, q.params()), source, _where(indexer.url))

    def _modes(self, indexer: Indexer) -> frozenset[str]:
        """The indexer's search modes, asked once per client (``t=caps``)."""
        with self._lock:
            known = self._caps.get(indexer.url)
        if known is None:
            known = self.caps(indexer).modes
            with self._lock:
                self._caps[indexer.url] = known
        return known

    def torrent(self, url: str, *, hops: int = 3) -> bytes | str:
        """The ``.torrent`` at ``url`` (an enclosure), or the magnet link it redirects to (as
        Prowlarr does for magnet-only releases). Each hop passes the egress policy."""
        for _ in range(hops + 1):
            if not url.startswith(("http://", "https://")):
                raise IndexerError(f"the release's link is not http(s): {_where(url)}")
            check(url)
            r = self._get(url, {}, _where(url))
            try:
                if r.status_code in (301, 302, 303, 307, 308):
                    target = str(urljoin(url, str(r.headers.get("location", ""))))
                    if target.startswith("magnet:"):
                        if infohash_from_magnet(target) is None:
                            raise IndexerError(f"{_where(url)} redirected to a magnet without info-hash")
                        return target
                    url = target
                    continue
                self._status(r, _where(url))
                body: bytes = self._body(r, MAX_TORRENT_BYTES, _where(url))
                return body
            finally:
                r.close()
        raise IndexerError(f"{_where(url)}: more than {hops} redirects")

    def close(self) -> None:
        self.http.close()

    # -- requests --------------------------------------------------------------------------------

    def _api(self, indexer: Indexer, params: dict[str, str]) -> bytes:
        where = _where(indexer.url)
        check(indexer.url, Secret.indexer if indexer.api_key is not None else Secret.none)
        query = dict(params)
        if indexer.api_key is not None:
            query["apikey"] = resolve(indexer.api_key)
        sep = "&" if urlsplit(indexer.url).query else "?"
        url = indexer.url + sep + urlencode(query)
        last: TemporaryError | None = None
        for attempt in range(self.attempts):
            if attempt:
                self.sleep(min(0.5 * 2 ** (attempt - 1), 4.0))
            try:
                r = self._get(url, {"Accept": "application/rss+xml, application/xml"}, where)
            except RateLimited:
                raise
            except TemporaryError as e:
                last = e
                continue
            try:
                self._status(r, where)
                return self._body(r, MAX_ANSWER_BYTES, where)
            except RateLimited:
                raise
            except TemporaryError as e:
                last = e
            finally:
                r.close()
        assert last is not None
        raise last

    def _get(self, url: str, headers: dict[str, str], where: str) -> httpx.Response:
        key = _host(url)
        with self._lock:
            now = self.clock()
            until = self._blocked.get(key)
            if until is not None and now < until:
                raise RateLimited(f"{where} asked to be left alone for {until - now:.0f}s more "
                                  "(HTTP 429)", delay=until - now)
            wait = self._last.get(key, -1e18) + self.min_interval - now
        if wait > 0:
            self.sleep(wait)
        with self._lock:
            self._last[key] = self.clock()
        try:
            request = self.http.build_request("GET", url, headers=headers)
            return self.http.send(request, stream=True)
        except httpx.HTTPError as e:
            raise UnreachableError(f"{where} is unreachable ({type(e).__name__})") from None

    def _status(self, r: httpx.Response, where: str) -> None:
        if r.status_code == 429:
            delay = _retry_after(r.headers.get("retry-after"), self.min_interval)
            with self._lock:
                self._blocked[_host(str(r.url))] = self.clock() + delay
            raise RateLimited(f"{where} answered HTTP 429 (too many requests); trying again in "
                              f"{delay:.0f}s", delay=delay)
        if r.status_code >= 500:
            raise TemporaryError(f"{where} answered HTTP {r.status_code}")
        if r.status_code != 200:
            raise IndexerError(f"{where} answered HTTP {r.status_code}")

    @staticmethod
    def _body(r: httpx.Response, limit: int, where: str) -> bytes:
        declared = r.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise IndexerError(f"{where} sent {int(declared)} bytes; at most {limit} are read")
        out = bytearray()
        try:
            for chunk in r.iter_bytes():
                out += chunk
                if len(out) > limit:
                    raise IndexerError(f"{where} sent more than {limit} bytes; refused")
        except httpx.HTTPError as e:
            raise UnreachableError(f"{where}: the answer broke off ({type(e).__name__})") from None
        return bytes(out)


def _host(url: str) -> str:
    """Rate limits and backoff are per host and port (one indexer, however many paths)."""
    p = urlsplit(url)
    return f"{p.hostname}:{p.port or (443 if p.scheme == 'https' else 80)}"


def _retry_after(value: str | None, floor: float) -> float:
    """Seconds from a Retry-After header (seconds or an HTTP date), within [floor, 1 h]."""
    seconds = 60.0
    if value:
        v = value.strip()
        if v.isdigit():
            seconds = float(v)
        else:
            try:
                when = parsedate_to_datetime(v)
                seconds = (when - datetime.now(UTC)).total_seconds()
            except (TypeError, ValueError):
                seconds = 60.0
    return min(max(seconds, floor, 1.0), MAX_RETRY_AFTER)


# -- parsing -------------------------------------------------------------------------------------


def _xml(data: bytes, where: str) -> Element:
    try:
        return fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)  # type: ignore[no-any-return]
    except DefusedXmlException as e:
        raise IndexerError(f"{where} answered XML with a DTD or entities, which tva refuses "
                           f"({type(e).__name__})") from None
    except (ParseError, ValueError) as e:
        raise IndexerError(f"{where} answered something that is not XML ({e})") from None


def _error(root: Element, where: str) -> None:
    if root.tag == "error":
        code = root.get("code", "?")
        desc = (root.get("description") or "")[:200]
        raise IndexerError(f"{where} answered Torznab error {code}: {desc}"
                           + (" (check the API key reference)" if code in ("100", "101") else ""))


def parse_caps(data: bytes, where: str) -> Caps:
    root = _xml(data, where)
    _error(root, where)
    if root.tag != "caps":
        raise IndexerError(f"{where}: a caps answer starts with <caps>, not <{root.tag[:40]}>")
    modes = {"search"}
    searching = root.find("searching")
    if searching is not None:
        for el in searching:
            if el.get("available", "no") == "yes":
                modes.add({"tv-search": "tvsearch", "movie-search": "movie"}.get(el.tag, el.tag))
    cats: dict[int, str] = {}
    for cat in root.iter("category"):
        cid = cat.get("id", "")
        if cid.isdigit():
            cats[int(cid)] = (cat.get("name") or "")[:100]
    return Caps(frozenset(modes), cats)


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    v = value.strip()
    return int(v) if v.isdigit() and len(v) < 20 else None


def parse_results(data: bytes, source: str, where: str) -> list[Release]:
    """The releases of a Torznab (RSS) answer; items without a usable link are left out."""
    root = _xml(data, where)
    _error(root, where)
    channel = root.find("channel")
    if root.tag != "rss" or channel is None:
        raise IndexerError(f"{where}: a search answer is an RSS feed (<rss><channel>)")
    out: list[Release] = []
    for item in channel.iter("item"):
        if len(out) >= MAX_ITEMS:
            break
        release = _release(item, source)
        if release is not None:
            out.append(release)
    return out


def _release(item: Element, source: str) -> Release | None:
    attrs: dict[str, str] = {}
    cats: list[int] = []
    for a in item.iter(_ATTR):
        name, value = a.get("name", ""), a.get("value", "")
        if name == "category":
            c = _int(value)
            if c is not None:
                cats.append(c)
        elif name not in attrs:
            attrs[name] = value
    title = (item.findtext("title") or "").strip()[:512]
    enclosure = item.find("enclosure")
    link = enclosure.get("url") if enclosure is not None else None
    link = link or (item.findtext("link") or "").strip() or None
    magnet = attrs.get("magneturl")
    if link is not None and link.startswith("magnet:"):
        magnet, link = magnet or link, None
    if link is not None and not link.startswith(("http://", "https://")):
        link = None
    if magnet is not None and infohash_from_magnet(magnet) is None:
        magnet = None
    infohash = (attrs.get("infohash") or "").strip().lower() or None
    if infohash is None and magnet is not None:
        infohash = infohash_from_magnet(magnet)
    if infohash is not None and (len(infohash) != 40 or any(c not in "0123456789abcdef" for c in infohash)):
        infohash = None
    if not title or (link is None and magnet is None):
        return None
    size = _int(attrs.get("size")) or _int(item.findtext("size"))
    if size is None and enclosure is not None:
        size = _int(enclosure.get("length"))
    published: datetime | None = None
    date = item.findtext("pubDate")
    if date:
        try:
            published = parsedate_to_datetime(date.strip())
            if published.tzinfo is None:
                published = published.replace(tzinfo=UTC)
        except (TypeError, ValueError):
            published = None
    fields: dict[str, Any] = {
        "source": source, "title": title, "infohash": infohash, "size": size,
        "seeders": _int(attrs.get("seeders")), "published": published, "link": link,
        "magnet": magnet[:8192] if magnet else None, "categories": cats[:16],
    }
    return Release.model_validate(fields)
