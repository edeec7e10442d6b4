"""Sending what ``controller/planner/alerts.py`` found: once per fleet, grouped, never blocking.

Every node keeps the same book of open conditions (key, since when, which targets were told),
so that whichever node is the notifier knows what is new and what has cleared:

- a condition opens when it first appears, and is worth a message once it has been open for
  its ``after`` (an item below its floor, ``notify.below_floor_after``);
- on the notifier, that queues an "open" message per target that wants its kind; on the other
  nodes, while a fresh notifier exists, it is taken as told (so a new notifier does not repeat
  what the old one said, but does send the resolution);
- when a condition disappears, each target told about it gets "resolved"; one that cleared
  before it was sent is dropped with its message;
- news (``ONE_SHOT``: an acquisition) is an entry like the others, keyed by what it is about,
  told once, as it was first seen, and never resolved: when it leaves the window in which it
  is news it is dropped without a word.

Delivery runs in a worker thread: a pass only updates the book and wakes the worker, so a slow,
failing or banned service never delays reconciling. Per target, everything waiting goes out as
one message (a burst is grouped), at most ``max_per_hour`` messages an hour (the rest waits and
groups), nothing during quiet hours, and a failure backs off exponentially (a service's 429 or
500 alike) while the fleet keeps converging. The book lives in ``<node>.notify.json`` in the
state dir, written atomically, so a restart neither repeats nor forgets.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from controller.atomic import write_atomic
from controller.clients.notify import NotifyClient
from controller.display import safe
from controller.errors import TemporaryError, TvaError
from controller.planner.alerts import FleetFacts
from schemas.desired import DesiredState
from schemas.notify import ONE_SHOT, EventKind, NotifyTarget, QuietHours

__all__ = ["MAX_LINES", "Notifier", "in_quiet_hours", "render"]

log = logging.getLogger("tva.notify")

MAX_LINES = 30
"""Lines in one message; the rest is counted ("and 12 more")."""
_HOUR = timedelta(hours=1)
_LABEL = {
    EventKind.below_floor: "below floor", EventKind.floor_unreachable: "floor unreachable",
    EventKind.copy_lost: "copy lost", EventKind.dead_torrent: "dead torrent",
    EventKind.refused_revision: "refused revision", EventKind.vpn_down: "VPN down",
    EventKind.acquired: "acquired", EventKind.search_failing: "search failing",
}


def in_quiet_hours(quiet: QuietHours | None, now: datetime) -> bool:
    if quiet is None:
        return False
    local = now.astimezone(ZoneInfo(quiet.timezone)).strftime("%H:%M")
    if quiet.begin <= quiet.end:
        return quiet.begin <= local < quiet.end
    return local >= quiet.begin or local < quiet.end


def _defuse(text: str) -> str:
    """Shown safely, and without the power to ping a whole Discord server or Matrix room."""
    return safe(text).replace("@", "\uff20")


def render(fleet: str, batch: list[dict[str, str]]) -> tuple[str, str]:
    """(title, body) of one grouped message."""
    opened = [e for e in batch if e["event"] == "open"]
    resolved = [e for e in batch if e["event"] == "resolved"]
    parts = []
    if opened:
        parts.append(f"{len(opened)} new")
    if resolved:
        parts.append(f"{len(resolved)} resolved")
    title = f"tva {_defuse(fleet)}: " + ", ".join(parts or ["test"])
    lines = []
    for e in opened + resolved:
        try:
            label = _LABEL[EventKind(e["kind"])]
        except ValueError:  # a kind this version does not know (a book from a newer tva)
            label = e["kind"]
        mark = "resolved: " if e["event"] == "resolved" else ""
        lines.append(f"- {mark}{label}: {_defuse(e['message'])}")
    if len(lines) > MAX_LINES:
        lines = [*lines[:MAX_LINES], f"... and {len(lines) - MAX_LINES} more"]
    return title, "\n".join(lines)


def _one_shot(kind: str) -> bool:
    try:
        return EventKind(kind) in ONE_SHOT
    except ValueError:
        return False


def _well_formed(data: object) -> bool:
    if not isinstance(data, dict) or data.get("version") != 1:
        return False
    opened, outbox, sent = data.get("open"), data.get("outbox"), data.get("sent")
    if not (isinstance(opened, dict) and isinstance(outbox, dict) and isinstance(sent, dict)):
        return False
    try:
        for entry in opened.values():
            datetime.fromisoformat(entry["since"])
            if not (isinstance(entry["told"], list) and isinstance(entry["kind"], str)
                    and isinstance(entry["message"], str)):
                return False
        for box in outbox.values():
            for e in box:
                if not all(isinstance(e[k], str) for k in ("key", "kind", "event", "message")):
                    return False
        for times in sent.values():
            for t in times:
                datetime.fromisoformat(t)
    except (KeyError, TypeError, ValueError, AttributeError):
        return False
    return True


class Notifier:
    """The node's book of open conditions and its delivery worker."""

    def __init__(self, node: str, state_dir: str, client: NotifyClient | None = None, *,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 backoff: tuple[float, float] = (5.0, 600.0),
                 monotonic: Callable[[], float] = time.monotonic,
                 on_result: Callable[[str, str], object] = lambda target, outcome: None) -> None:
        self.node = node
        self.path = f"{state_dir}/{node}.notify.json"
        self.client = client or NotifyClient()
        self.clock = clock
        self.backoff = backoff
        self.monotonic = monotonic
        self.on_result = on_result
        """Called with (target, "sent" | "failed") after each attempt (the metrics)."""
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._targets: dict[str, NotifyTarget] = {}
        self._quiet: QuietHours | None = None
        self._fleet = ""
        self._retry: dict[str, tuple[int, float]] = {}
        """target -> (failures, monotonic time of the next attempt)."""
        self.book: dict[str, Any] = self._load()
        self.sending = False
        """Whether this node is the notifier, as of the last pass."""

    # ------------------------------------------------------------------ the book

    def _load(self) -> dict[str, Any]:
        """The book as saved; a missing, unreadable or malformed one starts empty (the worst
        case is a repeated message, never a failed pass)."""
        try:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
            if _well_formed(data):
                return dict(data)
            log.warning("the notification book %s is malformed: starting a new one", self.path)
        except (OSError, ValueError):
            pass
        return {"version": 1, "open": {}, "outbox": {}, "sent": {}}

    def _save(self) -> None:
        write_atomic(self.path, json.dumps(self.book, sort_keys=True, indent=1).encode(),
                     mode=0o600)

    def open_conditions(self) -> list[dict[str, Any]]:
        """The open conditions with since when and whom they were told (status, API)."""
        with self._lock:
            return [{"key": k, **v} for k, v in sorted(self.book["open"].items())]

    def update(self, desired: DesiredState, facts: FleetFacts, now: datetime) -> None:
        """After a pass: record what opened and cleared, queue messages if this node sends."""
        notify = desired.fleet.notify
        me = facts.notifier == self.node
        current = {a.key: a for a in facts.alerts}
        with self._lock:
            self._targets = {t.name: t for t in notify.targets}
            self._quiet = notify.quiet_hours
            self._fleet = desired.fleet.name
            self.sending = me
            opened: dict[str, Any] = self.book["open"]
            outbox: dict[str, list[dict[str, str]]] = self.book["outbox"]
            for name in list(outbox):
                if name not in self._targets or not me:
                    del outbox[name]  # another node sends now (or the target is gone)
            for key, a in current.items():
                entry = opened.get(key)
                if entry is None:
                    opened[key] = {"kind": a.kind.value, "subject": a.subject,
                                   "message": a.message, "since": now.isoformat(), "told": []}
                elif a.kind in ONE_SHOT:
                    continue  # news is told as it was first seen
                else:
                    entry["message"] = a.message
                for box in outbox.values():  # a waiting message says how things are now
                    for e in box:
                        if e["key"] == key and e["event"] == "open":
                            e["message"] = a.message
            for key in [k for k in opened if k not in current]:
                entry = opened.pop(key)
                news = _one_shot(entry["kind"])
                for box in outbox.values():
                    if not news:  # news still waiting goes out: it happened all the same
                        box[:] = [e for e in box if e["key"] != key or e["event"] != "open"]
                if not me or news:
                    continue
                for told in entry["told"]:
                    if told in self._targets:
                        outbox.setdefault(told, []).append({
                            "key": key, "kind": entry["kind"], "event": "resolved",
                            "message": entry["message"]})
            for key, entry in opened.items():
                a = current[key]
                if now - datetime.fromisoformat(entry["since"]) < a.after:
                    continue
                for name, t in self._targets.items():
                    if a.kind not in t.events or name in entry["told"]:
                        continue
                    if me:
                        box = outbox.setdefault(name, [])
                        if not any(e["key"] == key and e["event"] == "open" for e in box):
                            box.append({"key": key, "kind": a.kind.value, "event": "open",
                                        "message": a.message})
                    elif facts.notifier is not None:
                        entry["told"].append(name)  # the live notifier tells them
            self._save()
        self._wake.set()

    # ------------------------------------------------------------------ delivery

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"tva-notify-{self.node}",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopped.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                wait = self.deliver()
            except Exception as e:  # the worker outlives any one delivery
                log.error("notification delivery failed: %s: %s", type(e).__name__,
                          safe(str(e)), extra={"event": "notify-error"})
                wait = self.backoff[1]
            self._wake.wait(wait)
            self._wake.clear()

    def deliver(self) -> float:
        """Send what is due to every target; returns how long until something may be due."""
        now = self.clock()
        mono = self.monotonic()
        next_due = 60.0
        with self._lock:
            due: list[tuple[NotifyTarget, list[dict[str, str]]]] = []
            for name, box in self.book["outbox"].items():
                target = self._targets.get(name)
                if not box or target is None:
                    continue
                failures, at = self._retry.get(name, (0, 0.0))
                if at > mono:
                    next_due = min(next_due, at - mono)
                    continue
                if in_quiet_hours(target.quiet_hours or self._quiet, now):
                    continue
                recent = [t for t in self.book["sent"].get(name, [])
                          if now - datetime.fromisoformat(t) < _HOUR]
                self.book["sent"][name] = recent
                if len(recent) >= target.max_per_hour:
                    oldest = min(datetime.fromisoformat(t) for t in recent)
                    next_due = min(next_due, max(1.0, (oldest + _HOUR - now).total_seconds()))
                    continue
                due.append((target, list(box)))
            fleet = self._fleet
        for target, batch in due:
            title, body = render(fleet, batch)
            try:
                self.client.send(target, title, body)
            except TvaError as error:
                failures = self._retry.get(target.name, (0, 0.0))[0] + 1
                base, cap = self.backoff
                delay = min(cap, base * 2 ** (failures - 1))
                if isinstance(error, TemporaryError) and error.delay is not None:
                    delay = min(cap, max(delay, error.delay))
                self._retry[target.name] = (failures, self.monotonic() + delay)
                self.on_result(target.name, "failed")
                next_due = min(next_due, delay)
                log.warning("notification to %s failed (%d in a row), next try in %.3gs: %s",
                            target.name, failures, delay, safe(str(error)),
                            extra={"event": "notify-failed", "target": target.name})
                continue
            self._retry.pop(target.name, None)
            self.on_result(target.name, "sent")
            log.info("notified %s: %s", target.name, title,
                     extra={"event": "notified", "target": target.name})
            with self._lock:
                box = self.book["outbox"].get(target.name, [])
                sent = {(e["key"], e["event"]) for e in batch}
                box[:] = [e for e in box if (e["key"], e["event"]) not in sent]
                for e in batch:
                    if e["event"] != "open":
                        continue
                    entry = self.book["open"].get(e["key"])
                    if entry is None:
                        # it cleared while the message was on its way: say so too
                        if self.sending and not _one_shot(e["kind"]):
                            box.append({**e, "event": "resolved"})
                    elif target.name not in entry["told"]:
                        entry["told"].append(target.name)
                self.book["sent"].setdefault(target.name, []).append(self.clock().isoformat())
                self._save()
        return next_due

    def test(self, target: NotifyTarget, fleet: str) -> None:
        """Send a test message to ``target`` now (``tva notify test``)."""
        self.client.send(target, f"tva {_defuse(fleet)}: test",
                         f"A test message from {_defuse(self.node)}: notifications reach "
                         f"{_defuse(target.name)}.")
