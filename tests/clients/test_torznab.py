"""The Torznab client against a fake indexer on a real socket (tests/support/torznab.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from controller.clients.torznab import (
    MAX_ANSWER_BYTES,
    IndexerError,
    Query,
    RateLimited,
    TorznabClient,
)
from controller.egress import EgressRefused
from controller.errors import TemporaryError
from schemas.desired import Indexer, SecretRef
from tests.support.torznab import FakeIndexer, FakeRelease

HASH = "a" * 40


@pytest.fixture
def indexer() -> Iterator[FakeIndexer]:
    fake = FakeIndexer(api_key="s3cret-key").start()
    yield fake
    fake.stop()


@pytest.fixture
def client() -> Iterator[TorznabClient]:
    naps: list[float] = []
    c = TorznabClient(min_interval=0.0, sleep=naps.append)
    yield c
    c.close()


def _ix(fake: FakeIndexer, monkeypatch: pytest.MonkeyPatch, cats: list[int] | None = None) -> Indexer:
    monkeypatch.setenv("TVA_TEST_INDEXER_KEY", "s3cret-key")
    return Indexer(url=fake.url, api_key=SecretRef(env="TVA_TEST_INDEXER_KEY"),
                   categories=cats or [])


def test_caps_and_search_parse_real_torznab(indexer: FakeIndexer, client: TorznabClient,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    indexer.add(FakeRelease("Night.Film.2024.1080p.WEB-GRP", b"d8:announce0:e", HASH, 4 << 30,
                            seeders=42, published=datetime(2026, 10, 1, tzinfo=UTC)))
    indexer.add(FakeRelease("Other Thing 720p", None, "b" * 40, 1 << 30, categories=(5000,)))
    ix = _ix(indexer, monkeypatch)
    caps = client.caps(ix)
    assert caps.modes == {"search", "tvsearch", "movie"} and caps.categories[2000] == "Movies"
    got = client.search("public", ix, Query("movie", "night film"))
    assert len(got) == 1
    r = got[0]
    assert (r.title, r.infohash, r.size, r.seeders, r.source) == (
        "Night.Film.2024.1080p.WEB-GRP", HASH, 4 << 30, 42, "public")
    assert r.published == datetime(2026, 10, 1, tzinfo=UTC)
    assert r.link is not None and r.link.startswith(indexer.base + "/dl/")
    # The key reached the indexer; categories from the source's indexer are sent.
    assert indexer.searches()[-1]["apikey"] == "s3cret-key"
    client.search("public", _ix(indexer, monkeypatch, [5000]), Query("search", "thing"))
    assert indexer.searches()[-1]["cat"] == "5000"


def test_tvsearch_sends_season_and_episode(indexer: FakeIndexer, client: TorznabClient,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    client.search("public", _ix(indexer, monkeypatch), Query("tvsearch", "the show", 2, 5))
    q = indexer.searches()[-1]
    assert (q["t"], q["q"], q["season"], q["ep"]) == ("tvsearch", "the show", "2", "5")


def test_an_indexer_without_tv_search_gets_a_plain_search(
        indexer: FakeIndexer, client: TorznabClient, monkeypatch: pytest.MonkeyPatch) -> None:
    indexer.modes = {"movie-search"}
    client.search("public", _ix(indexer, monkeypatch), Query("tvsearch", "the show", 2, 5))
    q = indexer.searches()[-1]
    assert (q["t"], q["q"]) == ("search", "the show S02E05") and "ep" not in q
    assert sum(1 for r in indexer.requests if r.get("t") == "caps") == 1
    client.search("public", _ix(indexer, monkeypatch), Query("tvsearch", "the show", 2, 6))
    assert sum(1 for r in indexer.requests if r.get("t") == "caps") == 1  # asked once


def test_a_wrong_key_is_a_clear_error_without_the_key(indexer: FakeIndexer, client: TorznabClient,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TVA_TEST_INDEXER_KEY", "wrong-key-value")
    ix = Indexer(url=indexer.url, api_key=SecretRef(env="TVA_TEST_INDEXER_KEY"))
    with pytest.raises(IndexerError) as e:
        client.search("public", ix, Query("search", "x"))
    assert "Torznab error 100" in str(e.value) and "API key" in str(e.value)
    assert "wrong-key-value" not in str(e.value)


def test_http_429_backs_off_for_retry_after(indexer: FakeIndexer, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    c = TorznabClient(min_interval=0.0, clock=lambda: now[0], sleep=lambda s: None)
    ix = _ix(indexer, monkeypatch)
    indexer.throttle("120")
    with pytest.raises(RateLimited) as e:
        c.search("public", ix, Query("search", "x"))
    assert e.value.delay == 120 and isinstance(e.value, TemporaryError)
    asked = len(indexer.requests)
    now[0] += 60  # still inside Retry-After: no request is made at all
    with pytest.raises(RateLimited):
        c.search("public", ix, Query("search", "x"))
    assert len(indexer.requests) == asked
    now[0] += 61
    assert c.search("public", ix, Query("search", "x")) == []
    assert len(indexer.requests) == asked + 1
    c.close()


def test_a_server_error_is_retried(indexer: FakeIndexer, client: TorznabClient,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    indexer.answer(b"oops", 503)
    assert client.search("public", _ix(indexer, monkeypatch), Query("search", "x")) == []
    assert len(indexer.searches()) == 2


def test_requests_to_one_indexer_are_spaced(indexer: FakeIndexer, monkeypatch: pytest.MonkeyPatch) -> None:
    naps: list[float] = []
    c = TorznabClient(min_interval=5.0, clock=lambda: 0.0, sleep=naps.append)
    ix = _ix(indexer, monkeypatch)
    c.search("public", ix, Query("search", "x"))
    c.search("public", ix, Query("search", "y"))
    assert naps == [5.0]
    c.close()


BOMB = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
        b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
        b'<rss><channel><item><title>&lol3;</title></item></channel></rss>')
EXTERNAL = (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b'<rss><channel><item><title>&x;</title></item></channel></rss>')


@pytest.mark.parametrize(("body", "words"), [
    (b"<rss><channel><item><title>unclosed", "not XML"),
    (b"<html><body>login</body></html>", "RSS feed"),
    (BOMB, "DTD or entities"),
    (EXTERNAL, "DTD or entities"),
    (b"<rss>" + b" " * (MAX_ANSWER_BYTES + 10) + b"</rss>", "at most"),
], ids=["malformed", "not-rss", "entity-bomb", "external-entity", "huge"])
def test_hostile_answers_are_clear_errors(indexer: FakeIndexer, client: TorznabClient,
                                          monkeypatch: pytest.MonkeyPatch, body: bytes,
                                          words: str) -> None:
    indexer.answer(body)
    with pytest.raises(IndexerError) as e:
        client.search("public", _ix(indexer, monkeypatch), Query("search", "x"))
    assert words in str(e.value)
    assert "s3cret-key" not in str(e.value)


def test_a_link_local_indexer_is_refused_before_any_request(client: TorznabClient) -> None:
    ix = Indexer(url="http://169.254.169.254/latest/api")
    with pytest.raises(EgressRefused) as e:
        client.search("public", ix, Query("search", "x"))
    assert "link-local or metadata" in str(e.value)


def test_a_key_goes_only_to_private_networks_or_loopback(client: TorznabClient,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TVA_TEST_INDEXER_KEY", "k")
    ix = Indexer(url="http://8.8.8.8/api", api_key=SecretRef(env="TVA_TEST_INDEXER_KEY"))
    with pytest.raises(EgressRefused) as e:
        client.search("public", ix, Query("search", "x"))
    assert "indexer secret" in str(e.value)


def test_torrent_download_checks_its_answer_and_egress(
        indexer: FakeIndexer, client: TorznabClient) -> None:
    indexer.add(FakeRelease("A", b"d4:infod4:name1:xee", HASH, 10))
    assert client.torrent(f"{indexer.base}/dl/0.torrent") == b"d4:infod4:name1:xee"
    with pytest.raises(IndexerError) as e:
        client.torrent(f"{indexer.base}/dl/9.torrent")
    assert "HTTP 404" in str(e.value)
    with pytest.raises(EgressRefused):
        client.torrent("http://169.254.169.254/x.torrent")
