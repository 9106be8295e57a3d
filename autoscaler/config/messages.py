"""What a config error may show: where `${VAR}` values landed, the error type, values cut short.

Config errors reach the CLI, the JSON log and a Kubernetes Event, so they never show a
value that came from `${VAR}` expansion, a credential-like field or URL userinfo, and
long values are cut short. Every module of the config layer raises `ConfigError`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from autoscaler.logs import scrub_userinfo

SHOWN_CHARACTERS = 80
"""A value longer than this is cut short in an error message."""
MAX_ERROR_LINE = 500
"""Any one error line is cut to this many characters (errors reach Events and logs)."""


@dataclass
class EnvValues:
    """What in a config came from `${VAR}` expansion, so that no message ever shows it.

    `expand_env` records each substituted value and where it landed in the expanded
    text; reading the YAML maps those places to config paths. An error at such a path
    shows the variable's name instead of the value, and the value itself is removed
    from every error line (in case a message quotes it elsewhere).
    """

    values: dict[str, str] = field(default_factory=dict)
    """Each substituted (non-empty) value → the variable it came from."""
    spans: list[tuple[int, int, str]] = field(default_factory=list)
    """(start, end, VAR): where each substituted value sits in the expanded text."""
    paths: dict[str, set[str]] = field(default_factory=dict)
    """Config path → the variables that went into its value."""

    def note_scalar(self, path: str, start: int, end: int) -> None:
        """Record that the YAML scalar at `path` spans [start, end) of the expanded text."""
        names = {name for lo, hi, name in self.spans if lo < end and start < hi}
        if names:
            self.paths.setdefault(path, set()).update(names)

    def note_value(self, path: str, value: str, name: str) -> None:
        """Record that the value at `path` is `value`, taken from the variable `name` without `${...}` in the text."""
        self.values[value] = name
        self.paths.setdefault(path, set()).add(name)

    def variables_in(self, path: str) -> list[str]:
        """The variables that went into the value at `path` or anywhere inside it."""
        names: set[str] = set()
        for where, found in self.paths.items():
            if where == path or where.startswith((f"{path}.", f"{path}[")) or not path:
                names |= found
        return sorted(names)

    def scrub(self, line: str) -> str:
        """`line` with every substituted value (raw, repr- or JSON-escaped) replaced by its variable's name."""
        for value in sorted(self.values, key=len, reverse=True):
            hidden = f"(value from ${{{self.values[value]}}} not shown)"
            for form in {value, repr(value)[1:-1], json.dumps(value)[1:-1]}:
                # short values only as whole words: a "2" must not eat the 2 of "targets[2]"
                pattern = re.escape(form) if len(form) >= 4 else rf"(?<![\w\[]){re.escape(form)}(?![\w\]])"
                line = re.sub(pattern, hidden, line)  # no backslash in `hidden`: a plain replacement
        return line


def _clean(line: str, env: EnvValues | None) -> str:
    if env is not None:
        line = env.scrub(line)
    line = scrub_userinfo(line)
    return line if len(line) <= MAX_ERROR_LINE else line[: MAX_ERROR_LINE - 1] + "…"


class ConfigError(ValueError):
    """A config that cannot be used; `errors` holds one 'path: reason' line per problem.

    Every line is cleaned on the way in: URL userinfo becomes `***`, values from `env`
    are replaced by their variable's name, and a line is at most MAX_ERROR_LINE long.
    """

    def __init__(self, errors: list[str], source: str = "config", env: EnvValues | None = None) -> None:
        self.errors = [_clean(e, env) for e in errors]
        self.source = source
        super().__init__(f"{source} is invalid:\n" + "\n".join(f"  {e}" for e in self.errors))


def shown(value: object) -> str:
    """A value as an error message shows it: short values in full, long ones cut, containers by type."""
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        digits = len(str(abs(value))) if value.bit_length() < 1000 else int(value.bit_length() * 0.30103) + 1
        return repr(value) if digits <= SHOWN_CHARACTERS else f"an integer of {digits} digits"
    if isinstance(value, str):
        if len(value) <= SHOWN_CHARACTERS:
            return repr(value)
        return f"{value[:SHOWN_CHARACTERS]!r}… ({len(value)} characters)"
    return f"a {type(value).__name__}"

