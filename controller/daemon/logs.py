"""Structured logs: one line per event, plain text or JSON (``--log-json``).

Fields passed as ``extra={...}`` go into the JSON object. Nothing that could be a secret is
ever passed to a log call; secret values live only inside the connections that use them. Every
message still goes through ``controller.display.safe`` (controls escaped, URL credentials
redacted): messages quote names and errors that come from the fleet repo or a peer.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from controller.display import safe

__all__ = ["JsonFormatter", "SafeFormatter", "setup"]

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": safe(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["error"] = self.formatException(record.exc_info).splitlines()[-1]
        return json.dumps(data, default=str)


class SafeFormatter(logging.Formatter):
    """The plain-text format, one safe line per record."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = safe(record.message)
        return super().formatMessage(record)


def setup(*, as_json: bool, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if as_json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(SafeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("uvicorn", "uvicorn.error", "httpx", "git", "transmission_rpc", "watchfiles"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
