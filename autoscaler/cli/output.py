"""How every command that prints results prints them: `-o table|wide|json|yaml`, one key casing, no cut names.

- `table` (default) and `wide` (more columns) are for people. A table is as wide as it
  needs to be: in a terminal it fits the terminal's width when it can, else it is printed
  at the narrowest width that keeps every word whole (the terminal wraps the lines);
  piped or redirected it is never wrapped. Names (a target's `namespace/name`, a path)
  are never cut.
- `json` (exactly one JSON document on stdout) and `yaml` are for scripts: keys are
  camelCase everywhere, like the config and Kubernetes, and every number is finite (a
  missing or undefined number is null). Keys that are data (a model's name, a target's
  key) are left as they are.

`--json`, where a command had it, stays as an alias of `-o json`; `recommend`'s
`--output` is the same option as `-o`.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import shutil
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import yaml
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

FORMATS = ("table", "wide", "json", "yaml")
NARROWEST = 40
"""The fewest columns a terminal is assumed to have."""


def add_output_option(parser: argparse.ArgumentParser, *, json_alias: bool = False) -> None:
    """`-o/--output table|wide|json|yaml`, and `--json` as an alias of `-o json` where the command had it."""
    parser.add_argument("-o", "--output", choices=FORMATS, default="table",
                        help="table (default), wide (more columns), json (one document, camelCase keys) or yaml")
    if json_alias:
        parser.add_argument("--json", action="store_const", const="json", dest="output",
                            help="same as -o json (kept for existing scripts)")


def camel(name: str) -> str:
    """`startup_seconds` → `startupSeconds`; a name without an underscore is left as it is."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def plain(value: Any, data_maps: frozenset[str] = frozenset()) -> Any:
    """`value` with camelCase keys and finite numbers (NaN and infinity become None), ready for JSON or YAML.

    The keys of a mapping held under a key in `data_maps` (camelCase) are data, and kept; their values
    are converted as usual.
    """
    if isinstance(value, Mapping):
        return {camel(str(k)): _plain_item(camel(str(k)), v, data_maps) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v, data_maps) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    try:
        number = float(value)  # numpy scalars
    except (TypeError, ValueError):
        return str(value)
    return number if math.isfinite(number) else None


def _plain_item(key: str, value: Any, data_maps: frozenset[str]) -> Any:
    if key in data_maps and isinstance(value, Mapping):
        return {str(k): plain(v, data_maps) for k, v in value.items()}
    return plain(value, data_maps)


def emit(fmt: str, payload: Any, tables: Callable[[bool], Iterable[RenderableType | str]],
         *, data_maps: frozenset[str] = frozenset()) -> None:
    """Print `payload` as JSON or YAML, or what `tables(wide)` renders for table and wide."""
    if fmt == "json":
        sys.stdout.write(json.dumps(plain(payload, data_maps), allow_nan=False) + "\n")
    elif fmt == "yaml":
        sys.stdout.write(yaml.safe_dump(plain(payload, data_maps), sort_keys=False, allow_unicode=True))
    else:
        show(tables(fmt == "wide"))


def show(renderables: Iterable[RenderableType | str]) -> None:
    """Print tables and lines on stdout, each table at a width that cuts no word (see the module docstring)."""
    terminal = sys.stdout.isatty()
    width = max(NARROWEST, shutil.get_terminal_size((80, 24)).columns) if terminal else 10_000
    for item in renderables:
        if isinstance(item, Table):
            natural = Console(width=10_000).measure(item).maximum
            if isinstance(item.title, str) and len(item.title) > natural:
                # rich wraps a title to the table's width: one wider than the columns goes on a line of its own
                Console(width=10_000, soft_wrap=True, highlight=False).print(Text(item.title))
                item = copy.copy(item)  # the caller's table keeps its title
                item.title = None
            fit = max(width, minimum_width(item)) if terminal else max(natural, minimum_width(item))
            Console(width=fit, soft_wrap=False).print(item)
        else:
            text = Text(item) if isinstance(item, str) else item
            Console(width=width, soft_wrap=not terminal, highlight=False).print(text)


def table(title: str | None, columns: Iterable[str], rows: Iterable[Iterable[str]], *,
          left: Iterable[str] = ()) -> Table:
    """A plain table: `left` columns left-justified (names, reasons, text), the others right-justified numbers.

    A column of single words (names, reason codes, numbers) is never wrapped; a column of text wraps
    between words only. Each column is at least as wide as its longest word, so nothing is ever cut.
    """
    left, columns = set(left), list(columns)
    cells = [[str(cell) for cell in row] for row in rows]
    out = Table(title=title)
    for i, name in enumerate(columns):
        values = [row[i] for row in cells]
        words = [word for value in values for word in value.split()] + name.split()
        single = not any(" " in value.strip() for value in values)
        width = max(max((len(v) for v in values), default=0) if single else 0, max(map(len, words), default=1))
        out.add_column(name, justify="left" if name in left else "right", no_wrap=single,
                       overflow="fold", min_width=width)
    for row in cells:
        out.add_row(*(Text(cell) for cell in row))  # plain text: a PromQL `[2m]` is no markup
    return out


def minimum_width(table: Table) -> int:
    """The narrowest the table can be printed without cutting a word: its columns' minimums, padding and borders."""
    return sum((column.min_width or 1) + 2 for column in table.columns) + len(table.columns) + 1


def number(value: float | int | None, spec: str = ".3g") -> str:
    """A cell: '-' for a missing number."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return format(value, spec)
