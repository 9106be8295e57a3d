"""What a query means as PromQL: parsed by a real parser, checked, and sorted onto a query path.

`autoscaler.config.promql` handles a template as text (where its placeholders are, how to
fill them in safely, how to batch it). This module parses the whole query with
`promql_parser` (a port of Prometheus's own parser), so a config is refused at load, not
at run time, when its query is not PromQL:

- `query_problem`: a syntax error, with the column it is at (the parser names none, so
  the column is found from what its message quotes, the brackets, or the longest part
  of the query that still parses); a query that does not return an instant vector; or
  a bare counter, i.e. a `_total`, `_count`, `_sum` or `_bucket` series (OpenMetrics'
  counter suffixes) outside `rate()`, `irate()` or `increase()`, which would be read as
  a request rate although it only ever grows.
- `query_path`: whether the batched fast path can answer the query (one query for every
  target sharing the template, `QueryTemplate.batch`) or it must run per target. Batching
  wraps the query in `sum by (<placeholder labels>)` over a regex of every target's
  values, which is right only when each answered series still carries those labels and
  nothing compares series across targets: no aggregation that drops them (`sum(...)`,
  the form KEDA and PHPA users write), no `topk`, no `label_replace`, no `vector(0)`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import promql_parser as pp

from autoscaler.config.promql import PLACEHOLDER

COUNTER_SUFFIXES = ("_total", "_count", "_sum", "_bucket")
"""Metric-name suffixes OpenMetrics reserves for counters (and a histogram's or summary's counter parts)."""
RATE_FUNCTIONS = frozenset({"rate", "irate", "increase"})
"""The functions that turn a counter into what a request rate is made of."""
LABEL_KEEPING_FUNCTIONS = frozenset({
    "rate", "irate", "increase", "delta", "idelta", "deriv", "predict_linear", "resets", "changes",
    "avg_over_time", "min_over_time", "max_over_time", "sum_over_time", "count_over_time", "last_over_time",
    "quantile_over_time", "stddev_over_time", "stdvar_over_time", "mad_over_time", "present_over_time",
    "abs", "ceil", "floor", "round", "clamp", "clamp_min", "clamp_max", "exp", "ln", "log2", "log10", "sqrt", "sgn",
    "timestamp", "holt_winters", "double_exponential_smoothing", "sort", "sort_desc",
})
"""Functions whose result series keep their argument's labels."""
GROUPING_AGGREGATIONS = frozenset({"sum", "avg", "min", "max", "count", "group", "stddev", "stdvar"})
"""Aggregations that combine series within each group only: batchable when the group keeps the labels."""
LONGEST_SCANNED = 4096
"""A query longer than this is not scanned prefix by prefix for the column of an error without a clue."""

_QUOTED = re.compile(r"'([^']+)'|: (\S+)$")
_FUNCTION = re.compile(r"function(?: with name)? '([^']+)'")


class PromQLError(ValueError):
    """A query that is not PromQL the controller can use; the message says what and at which column."""


@dataclass(frozen=True)
class QueryPath:
    """How the Prometheus adapter runs a target's query."""

    batched: bool
    """True: one query for every target that shares the template; False: one query per target."""
    why: str
    """What decided it, for `validate-config`."""

    def __str__(self) -> str:
        return f"{'batched' if self.batched else 'per-target'} ({self.why})"


def parse(text: str) -> pp.Expr:
    """The query's syntax tree, or `PromQLError` naming the parser's reason and the column.

    Placeholders are parsed as plain letters of the same length, so a `{name}` in a regex
    matcher is never read as a repetition and the columns stay those of the template.
    """
    try:
        return pp.parse(PLACEHOLDER.sub(lambda m: "x" * len(m.group()), text))
    except ValueError as exc:
        reason = str(exc)
        raise PromQLError(f"not valid PromQL at column {error_column(text, reason)}: {reason}") from None


def query_problem(text: str) -> str | None:
    """Why `text` cannot be a target's rate query, or None when it can."""
    try:
        expr = parse(text)
    except PromQLError as exc:
        return str(exc)
    kind = _value_kind(expr)
    if kind != "vector":
        return f"the query returns a {kind}, not a series per target (an instant vector)" + (
            ": wrap the range selector in rate(...)" if kind == "range vector" else "")
    for name in _bare_counters(expr, inside_rate=False):
        suffix = next(s for s in COUNTER_SUFFIXES if name.endswith(s))
        return (f"{name} at column {_column_of_name(text, name)} is a counter (its name ends in {suffix}) used "
                "without rate(), irate() or increase(): a counter only grows, so its value is not a request "
                f"rate; write rate({name}{{...}}[2m])")
    return None


def query_path(text: str, labels: tuple[str, ...]) -> QueryPath:
    """Whether the query's answer keeps `labels` (the placeholder labels) on every series, so it can be batched."""
    lost = _lost(parse(text), frozenset(labels))
    if lost is None:
        return QueryPath(True, f"every series keeps {', '.join(labels)}")
    return QueryPath(False, lost)


# --- what an expression returns ---------------------------------------------------------


def _value_kind(expr: pp.Expr) -> str:
    if isinstance(expr, pp.ParenExpr | pp.UnaryExpr):
        return _value_kind(expr.expr)
    if isinstance(expr, pp.NumberLiteral):
        return "scalar"
    if isinstance(expr, pp.StringLiteral):
        return "string"
    if isinstance(expr, pp.MatrixSelector | pp.SubqueryExpr):
        return "range vector"
    if isinstance(expr, pp.Call):
        kinds = {"ValueType.Scalar": "scalar", "ValueType.String": "string", "ValueType.Matrix": "range vector"}
        return kinds.get(str(expr.func.return_type), "vector")
    if isinstance(expr, pp.BinaryExpr):
        return "vector" if "vector" in (_value_kind(expr.lhs), _value_kind(expr.rhs)) else "scalar"
    return "vector"


def _lost(expr: pp.Expr, labels: frozenset[str]) -> str | None:
    """Why some series of `expr` lack one of `labels` or mix targets, or None when each keeps them all."""
    if isinstance(expr, pp.VectorSelector | pp.MatrixSelector):
        return None
    if isinstance(expr, pp.ParenExpr | pp.UnaryExpr | pp.SubqueryExpr):
        return _lost(expr.expr, labels)
    if isinstance(expr, pp.NumberLiteral | pp.StringLiteral):
        return "a number has no labels"
    if isinstance(expr, pp.Call):
        name = expr.func.name
        if name not in LABEL_KEEPING_FUNCTIONS:
            return f"{name}() does not keep the series' labels"
        vectors = [a for a in expr.args if _value_kind(a) in ("vector", "range vector")]
        return next((why for why in (_lost(a, labels) for a in vectors) if why), None)
    if isinstance(expr, pp.AggregateExpr):
        return _aggregation_loses(expr, labels) or _lost(expr.expr, labels)
    if isinstance(expr, pp.BinaryExpr):
        sides = [side for side in (expr.lhs, expr.rhs) if _value_kind(side) != "scalar"]
        why = next((w for w in (_lost(side, labels) for side in sides) if w), None)
        if why or len(sides) < 2 or expr.modifier is None or expr.modifier.matching is None:
            return why
        matching = expr.modifier.matching
        if matching.type == pp.LabelModifierType.Include and not labels <= set(matching.labels):
            return f"on({', '.join(matching.labels)}) matches series across targets"
        if matching.type == pp.LabelModifierType.Exclude and labels & set(matching.labels):
            return f"ignoring({', '.join(matching.labels)}) matches series across targets"
        return None
    return f"{type(expr).__name__} is not batched"


def _aggregation_loses(expr: pp.AggregateExpr, labels: frozenset[str]) -> str | None:
    op = str(expr.op)
    if op not in GROUPING_AGGREGATIONS:
        return f"{op}() compares series across targets"
    modifier = expr.modifier
    if modifier is None:
        return f"{op}(...) aggregates away {', '.join(sorted(labels))}"
    if modifier.type == pp.AggModifierType.By and not labels <= set(modifier.labels):
        return f"{op} by ({', '.join(modifier.labels)}) drops {', '.join(sorted(labels - set(modifier.labels)))}"
    if modifier.type == pp.AggModifierType.Without and labels & set(modifier.labels):
        return f"{op} without ({', '.join(modifier.labels)}) drops {', '.join(sorted(labels & set(modifier.labels)))}"
    return None


def _metric_name(selector: pp.VectorSelector) -> str | None:
    if selector.name:
        return selector.name
    return next((m.value for m in selector.matchers.matchers if m.name == "__name__" and m.op == pp.MatchOp.Equal), None)


def _bare_counters(expr: pp.Expr, *, inside_rate: bool) -> list[str]:
    """Counter-named selectors not read through rate(), irate() or increase()."""
    if isinstance(expr, pp.VectorSelector):
        name = _metric_name(expr)
        return [name] if name and name.endswith(COUNTER_SUFFIXES) and not inside_rate else []
    if isinstance(expr, pp.MatrixSelector):
        return _bare_counters(expr.vector_selector, inside_rate=inside_rate)
    if isinstance(expr, pp.Call):
        rated = expr.func.name in RATE_FUNCTIONS
        found: list[str] = []
        for arg in expr.args:
            if rated and isinstance(arg, pp.MatrixSelector):
                continue
            found += _bare_counters(arg.expr if rated and isinstance(arg, pp.SubqueryExpr) else arg, inside_rate=rated)
        return found
    if isinstance(expr, pp.ParenExpr):
        return _bare_counters(expr.expr, inside_rate=inside_rate)
    if isinstance(expr, pp.UnaryExpr | pp.SubqueryExpr | pp.AggregateExpr):
        return _bare_counters(expr.expr, inside_rate=False)
    if isinstance(expr, pp.BinaryExpr):
        return _bare_counters(expr.lhs, inside_rate=False) + _bare_counters(expr.rhs, inside_rate=False)
    return []


# --- where an error is ------------------------------------------------------------------


def _code_mask(text: str) -> list[bool]:
    """For each character: True when it is PromQL code, False inside a string literal or a comment."""
    mask, quote, i = [True] * len(text), "", 0
    while i < len(text):
        char = text[i]
        if quote:
            mask[i] = False
            if char == "\\" and quote != "`":
                if i + 1 < len(text):
                    mask[i + 1] = False
                i += 2
                continue
            if char == quote:
                quote = ""
        elif char in "\"'`":
            quote, mask[i] = char, False
        elif char == "#":
            end = text.find("\n", i)
            end = len(text) if end < 0 else end
            mask[i:end] = [False] * (end - i)
            i = end
            continue
        i += 1
    return mask


def _unbalanced(text: str, mask: list[bool]) -> int | None:
    """Index of the first bracket that is never closed or closes nothing, or None."""
    pairs, opened = {")": "(", "]": "[", "}": "{"}, []
    for i, char in enumerate(text):
        if not mask[i]:
            continue
        if char in "([{":
            opened.append(i)
        elif char in pairs:
            if not opened or text[opened[-1]] != pairs[char]:
                return i
            opened.pop()
    return opened[0] if opened else None


def _unterminated(text: str) -> int | None:
    quote, start, i = "", 0, 0
    while i < len(text):
        char = text[i]
        if quote:
            if char == "\\" and quote != "`":
                i += 2
                continue
            if char == quote:
                quote = ""
        elif char in "\"'`":
            quote, start = char, i
        i += 1
    return start if quote else None


def _find_in_code(text: str, needle: str, mask: list[bool]) -> int | None:
    for match in re.finditer(re.escape(needle), text):
        if mask[match.start()]:
            return match.start()
    return None


def _column_of_name(text: str, name: str) -> int:
    at = _find_in_code(text, name, _code_mask(text))
    return 1 if at is None else at + 1


def error_column(text: str, reason: str) -> int:
    """The 1-based column a parser error is at: what its message quotes, a bracket or quote left open, or the
    character after the longest prefix that still parses."""
    mask = _code_mask(text)
    if "quoted string" in reason:
        at = _unterminated(text)
        if at is not None:
            return at + 1
    if "parenthes" in reason or "brace" in reason or "bracket" in reason:
        at = _unbalanced(text, mask)
        if at is not None and "inside braces" not in reason:
            return at + 1
    function = _FUNCTION.search(reason)
    clues = [function.group(1) + "("] if function else []
    clues += [group for match in _QUOTED.finditer(reason) for group in match.groups() if group]
    for clue in clues:
        at = _find_in_code(text, clue, mask)
        if at is not None:
            return at + 1
    if len(text) <= LONGEST_SCANNED:
        for end in range(len(text), 0, -1):
            try:
                pp.parse(text[:end])
            except ValueError:
                continue
            return min(end + 1, len(text))
    return 1
