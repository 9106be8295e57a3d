"""Structured JSON logs, one object per line, with secrets redacted.

Log processors (Loki, Elasticsearch, Cloud Logging) parse one JSON object per line;
fields passed through `extra=` become top-level keys. Values under keys that look like
credentials are replaced, so a token can never reach the logs through `extra`.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}
_SECRET_WORDS = ("token", "authorization", "password", "secret", "bearer", "credential")
REDACTED = "[redacted]"
HIDDEN_USERINFO = "***@"
"""What a URL's `user:password@` becomes in every message."""
_URL_USERINFO = re.compile(r"(?<=//)[^/?#\s'\"]*@")
_LEADING_USERINFO = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*://)?([^/?#\s]*@)")


def looks_secret(key: str) -> bool:
    """Whether a key (a field, header or log attribute name) may hold a credential."""
    return any(word in key.lower() for word in _SECRET_WORDS)


def without_userinfo(url: str) -> str:
    """`url` with its `user:password@` hidden, for messages; also for a URL without a scheme or one that does
    not parse."""
    match = _LEADING_USERINFO.match(url)
    return url if match is None else url[: match.start(1)] + HIDDEN_USERINFO + url[match.end(1) :]


def scrub_userinfo(text: str) -> str:
    """`text` with the `user:password@` of every `scheme://` URL in it hidden."""
    return _URL_USERINFO.sub(HIDDEN_USERINFO, text)


def redact(value: object, key: str = "") -> object:
    """`value` with every entry under a credential-like key replaced by REDACTED."""
    if looks_secret(key):
        return REDACTED
    if isinstance(value, dict):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line: time, level, logger, message, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = redact(value, key)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(level: str = "INFO") -> None:
    """Send every log record to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
