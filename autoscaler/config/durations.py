"""Go-style durations ("30s", "1h30m", "2d") as used in Kubernetes and Prometheus configs.

Config authors write durations the way they do everywhere else in the cluster; the
models store plain seconds so the decision core never parses strings. Every duration
is finite and non-negative; each config field adds its own range on top.
"""

from __future__ import annotations

import math
import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_EXPECTED = "expected a duration such as '30s' or '1h'"


class DurationError(ValueError):
    """Not a usable duration. `reason` says why without repeating the value (the config shows it itself)."""

    def __init__(self, reason: str, value: object) -> None:
        super().__init__(f"{reason}, got {value!r}")
        self.reason = reason


def parse_duration(value: object) -> float:
    """Seconds in `value`: a number of seconds, or a string such as '30s', '1h30m', '2d'."""
    if isinstance(value, bool):
        raise DurationError(_EXPECTED, value)
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_text(value)
    else:
        raise DurationError(_EXPECTED, value)
    if not math.isfinite(seconds):
        raise DurationError("must be a finite duration", value)
    if seconds < 0:
        raise DurationError("duration must not be negative", value)
    return seconds


def _parse_text(value: str) -> float:
    text = value.strip()
    if not text:
        raise DurationError(_EXPECTED, value)
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    pos, seconds = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        seconds += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text):
        raise DurationError(_EXPECTED, value)
    return seconds


def format_duration(seconds: float) -> str:
    """'90s' -> '1m30s', 0.01 -> '10ms': the inverse of `parse_duration`, to the second above 1 s."""
    if 0 < seconds < 1:
        return f"{seconds * 1000:g}ms"
    seconds = int(round(seconds))
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
