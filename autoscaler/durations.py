"""Go-style durations ("30s", "1h30m", "2d") as used in Kubernetes and Prometheus configs.

Config authors write durations the way they do everywhere else in the cluster; the
models store plain seconds so the decision core never parses strings.
"""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(value: object) -> float:
    """Seconds in `value`: a number of seconds, or a string such as '30s', '1h30m', '2d'."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as '30s' or '1h', got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            raise ValueError("expected a duration such as '30s' or '1h', got an empty string")
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            seconds = float(text)
        else:
            pos, seconds = 0, 0.0
            for match in _PART.finditer(text):
                if match.start() != pos:
                    break
                seconds += float(match.group(1)) * _UNITS[match.group(2)]
                pos = match.end()
            if pos != len(text):
                raise ValueError(f"expected a duration such as '30s' or '1h', got {value!r}")
    else:
        raise ValueError(f"expected a duration such as '30s' or '1h', got {value!r}")
    if seconds < 0:
        raise ValueError(f"duration must not be negative, got {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """'90s' -> '1m30s': the inverse of `parse_duration` for whole seconds."""
    seconds = int(round(seconds))
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in (("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
