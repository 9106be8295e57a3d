"""The metric and label names a PromQL expression uses, for checking dashboards and rules against the code.

Parsing (is the expression valid PromQL?) is left to `promtool check rules`; this reads
what a valid expression names, with a lexer that knows PromQL's shapes: strings, range
and subquery brackets, `{...}` matchers, function calls, aggregations with `by`/`without`,
and `on`/`ignoring`/`group_left`/`group_right` label lists. Grafana's
`label_values(selector, label)` is unwrapped first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}
"""Grafana's built-in range variables and a duration each stands for when the expression is parsed."""
AGGREGATIONS = frozenset({"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
                          "bottomk", "topk", "quantile", "limitk", "limit_ratio"})
LABEL_LISTS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "atan2"}) | LABEL_LISTS
TOKEN = re.compile(r"""
      (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
    | (?P<range>\[[^\]]*\])
    | (?P<number>\d[\w.]*)
    | (?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)
    | (?P<variable>\$[a-zA-Z_]\w*)
    | (?P<space>\s+)
    | (?P<other>=~|!~|!=|==|>=|<=|[^\s])
""", re.VERBOSE)


@dataclass
class Names:
    """What an expression names: each selector's metric with the labels it matches on, and grouping labels."""

    selectors: list[tuple[str, list[str]]] = field(default_factory=list)
    grouping: list[str] = field(default_factory=list)


def for_promtool(expr: str) -> str:
    """`expr` with Grafana's range variables replaced by durations (template variables inside strings stay)."""
    for variable, duration in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, duration)
    return expr


def unwrap_label_values(query: str) -> tuple[str, str | None]:
    """`label_values(selector, label)` → (selector, label); any other query → (query, None)."""
    match = re.fullmatch(r"\s*label_values\((.*),\s*([a-zA-Z_]\w*)\s*\)\s*", query, re.DOTALL)
    return (match.group(1), match.group(2)) if match else (query, None)


def names(expr: str) -> Names:
    """The metric and label names `expr` uses."""
    tokens = [(m.lastgroup, m.group()) for m in TOKEN.finditer(for_promtool(expr)) if m.lastgroup != "space"]
    found = Names()
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        following = tokens[i + 1][1] if i + 1 < len(tokens) else ""
        if kind == "name" and text in LABEL_LISTS and following == "(":
            close = _closing(tokens, i + 1, "(", ")")
            found.grouping += [t for k, t in tokens[i + 2 : close] if k == "name"]
            i = close + 1
            continue
        if kind == "name" and (text in KEYWORDS or text in AGGREGATIONS or following == "("):
            i += 1  # an operator, an aggregation or a function call
            continue
        if kind == "name" or (kind == "other" and text == "{"):
            metric = text if kind == "name" else ""
            start = i + 1 if kind == "name" else i
            labels: list[str] = []
            if start < len(tokens) and tokens[start][1] == "{":
                close = _closing(tokens, start, "{", "}")
                labels = [t for j, (k, t) in enumerate(tokens[start + 1 : close], start + 1)
                          if k == "name" and tokens[j + 1][1] in ("=", "!=", "=~", "!~")]
                i = close
            found.selectors.append((metric, labels))
        i += 1
    return found


def _closing(tokens: list[tuple[str | None, str]], opening: int, left: str, right: str) -> int:
    depth = 0
    for j in range(opening, len(tokens)):
        depth += {left: 1, right: -1}.get(tokens[j][1], 0)
        if depth == 0:
            return j
    raise ValueError(f"unbalanced {left}{right} in {' '.join(t for _, t in tokens)}")
