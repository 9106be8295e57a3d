"""PromQL query templates: safe substitution, and many targets batched into one query.

A target names its request rate with a template such as
`rate(http_requests_total{namespace="{namespace}", deployment="{name}"}[2m])`. This
module is pure text processing (no I/O, no client library), so the Prometheus adapter,
the CLI and the tests share one definition of what a template means:

- Placeholders may only appear in the values of `=` and `=~` label matchers. On
  substitution a value is escaped for the PromQL string literal and, in `=~` matchers,
  for the regular expression, so a name holding `"` or `\\` cannot leave its matcher.
- `{namespace}` and `{name}` are each target's own; `{cluster}` is one value for every
  target (`prometheus.cluster`, given to `QueryTemplate.parse`), so that many clusters'
  Prescalers can share one query endpoint (Thanos, Mimir) and each read only its own
  cluster's series. A matcher holding only `{cluster}` is filled in the same in every
  query and does not tell targets apart: it is not a grouping label of a batch, so
  `sum by (namespace, deployment) (rate(x{cluster="{cluster}", ...}[2m]))` still batches.
- `QueryTemplate.batch(targets)` turns those matchers into `=~` alternations of every
  target's value and aggregates `sum by (<their labels>)`, so all targets sharing a
  template come back in one query. That is right only for a template whose series keep
  those labels (`autoscaler.config.promql_syntax.query_path` decides); any other
  template runs once per target (`QueryTemplate.single`). The same query also returns, per group, the time of
  the newest raw sample of the template's selectors (`timestamp()`), the freshness.
  `BatchQuery.collect()` maps the answer back to targets by label.

How answered series map to targets (`collect`):

- A series belongs to every target whose matchers, in one of the template's selectors,
  accept its labels. With `=` matchers that is the one target with exactly those values.
- A target whose `=~` matcher accepts several groups (e.g. `deployment=~"{name}(-canary)?"`)
  gets the **sum** of their rates and the newest of their freshness times: exactly what
  its template selects when queried alone, as `history` does with `sum(...)`, so the
  forecaster and the live decision see one quantity. (Overlapping patterns, such as
  `{name}.*` with targets `web` and `webhook`, count the shared series for each target
  that selects it: the template says so.)
- A **group answered more than once** (two series with the same values of the grouping
  labels and the same part, whatever other labels they carry) is refused: Prometheus
  never repeats a group of a `sum by`, so the copies come from something in between, a
  proxy merging the answers of an HA pair or a federation, and adding them up would
  double the rate. Every target that group maps to gets no rate, and the repeated label
  sets are reported (`Collected.repeated`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol


class Workload(Protocol):
    """What a template is filled in from: a target's namespace and name, and its identity (`Target` is one)."""

    @property
    def namespace(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def key(self) -> str: ...

PLACEHOLDER = re.compile(r"\{(namespace|name|cluster)\}")
CLUSTER = "cluster"
"""The placeholder filled with `prometheus.cluster`, the same for every target."""
PART_LABEL = "prescaler_part"
"""Label that tells the two halves of a batched answer apart."""
RATE_PART, OBSERVED_PART = "rate", "observed"

_IDENT = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_OPERATOR = re.compile(r"=~|!~|!=|=")
_METRIC_CHAR = re.compile(r"[a-zA-Z0-9_:]")
_QUOTES = "\"'`"
_KEYWORDS = frozenset({"and", "or", "unless", "atan2", "bool", "by", "without", "on", "ignoring", "offset"})
"""Words that can stand before a `{` without being its metric name."""
_GO_ESCAPE = re.compile(r"\\(?:([abfnrtv\\'\"])|([0-7]{3})|x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8}))")
_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_RE2_META = re.compile(r"([\\.+*?()|\[\]{}^$])")


class TemplateError(ValueError):
    """A query template that cannot be used; the message names the problem and where."""


def quote(value: str) -> str:
    """A double-quoted PromQL string literal holding exactly `value`.

    JSON's escapes (`\\"`, `\\\\`, `\\n`, `\\uXXXX` ...) are a subset of PromQL's (Go's).
    """
    return json.dumps(value, ensure_ascii=False)


def regex_escape(value: str) -> str:
    """`value` as a regular expression matching only itself (Go's `regexp.QuoteMeta`)."""
    return _RE2_META.sub(r"\\\1", value)


def unquote(literal: str) -> str:
    """The value of a PromQL string literal in `"`, `'` or backticks (Go escape rules)."""
    if len(literal) < 2 or literal[0] not in _QUOTES or literal[-1] != literal[0]:
        raise TemplateError(f"{literal!r} is not a quoted string")
    body = literal[1:-1]
    if literal[0] == "`":
        return body
    out = bytearray()
    pos = 0
    for match in [*_GO_ESCAPE.finditer(body), None]:
        plain = body[pos : len(body) if match is None else match.start()]
        if "\\" in plain:
            raise TemplateError(f"{literal!r} holds an unknown escape sequence")
        out += plain.encode()
        if match is None:
            break
        simple, octal, hex_byte, short, long = match.groups()
        if simple:
            out += _SIMPLE_ESCAPES.get(simple, simple).encode()
        elif octal or hex_byte:
            out.append(int(octal, 8) if octal else int(hex_byte, 16))
        else:
            out += chr(int(short or long, 16)).encode()
        pos = match.end()
    try:
        return out.decode()
    except UnicodeDecodeError:
        raise TemplateError(f"{literal!r} is not valid UTF-8 once unescaped") from None


def describe_labels(labels: Mapping[str, str]) -> str:
    """A label set as PromQL writes it: `{a="x", b="y"}`, sorted, values quoted."""
    return "{" + ", ".join(f"{k}={quote(v)}" for k, v in sorted(labels.items())) + "}"


@dataclass(frozen=True)
class _Matcher:
    """A label matcher whose value holds placeholders, at `text[start:end]` of its template."""

    label: str
    op: str
    pieces: tuple[str, ...]
    """Literal text and placeholder names, alternating (even indexes are literal)."""
    start: int
    end: int

    @property
    def per_target(self) -> bool:
        """Whether it holds `{namespace}` or `{name}`, so that its value differs between targets."""
        return any(p != CLUSTER for p in self.pieces[1::2])

    def expected(self, values: Mapping[str, str]) -> str:
        """The label value (`=`) or the regular expression (`=~`) this matcher holds, given the placeholders' values."""
        escape = regex_escape if self.op == "=~" else str
        missing = [p for p in self.pieces[1::2] if p not in values]
        if missing:
            raise TemplateError(f"label {self.label!r} uses {{{missing[0]}}}, but no value was given for it")
        return "".join(escape(values[p]) if i % 2 else p for i, p in enumerate(self.pieces))


@dataclass(frozen=True)
class _Selector:
    """A vector selector holding placeholders: its span (metric name and braces) and its matchers."""

    start: int
    end: int
    matchers: tuple[_Matcher, ...]


def _check_regex(matcher: _Matcher) -> None:
    example = "".join("x" if i % 2 else p for i, p in enumerate(matcher.pieces))
    try:
        re.compile(example)
    except re.error as exc:
        raise TemplateError(f"label {matcher.label!r}: {example!r} is not a usable regular expression: {exc}") from None


def _skip_string(text: str, i: int) -> int:
    """Index just past the string literal that starts at `text[i]`."""
    quote_char, j = text[i], i + 1
    while j < len(text):
        if text[j] == "\\" and quote_char != "`":
            j += 2
            continue
        if text[j] == quote_char:
            return j + 1
        if text[j] == "\n" and quote_char != "`":
            break
        j += 1
    raise TemplateError(f"unterminated string at column {i + 1}")


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i].isspace():
        i += 1
    return i


def _parse_braces(text: str, i: int) -> tuple[list[_Matcher], int]:
    """The placeholder matchers in the `{...}` that opens at `text[i]`, and the index past `}`."""
    found: list[_Matcher] = []
    j = _skip_space(text, i + 1)
    while j < len(text) and text[j] != "}":
        label = _IDENT.match(text, j)
        if not label:
            raise TemplateError(f"expected a label name at column {j + 1}")
        op = _OPERATOR.match(text, _skip_space(text, label.end()))
        if not op:
            raise TemplateError(f"expected =, !=, =~ or !~ after label {label.group()!r} at column {j + 1}")
        value_at = _skip_space(text, op.end())
        if value_at >= len(text) or text[value_at] not in _QUOTES:
            raise TemplateError(f"expected a quoted value for label {label.group()!r} at column {value_at + 1}")
        value_end = _skip_string(text, value_at)
        pieces = tuple(PLACEHOLDER.split(unquote(text[value_at:value_end])))
        if len(pieces) > 1:
            if op.group() in ("!=", "!~"):
                raise TemplateError(
                    f"label {label.group()!r} uses a placeholder in a negative matcher ({op.group()}), "
                    "which cannot select a target's series"
                )
            matcher = _Matcher(label.group(), op.group(), pieces, j, value_end)
            if matcher.op == "=~":
                _check_regex(matcher)
            found.append(matcher)
        j = _skip_space(text, value_end)
        if j < len(text) and text[j] == ",":
            j = _skip_space(text, j + 1)
        elif j < len(text) and text[j] != "}":
            raise TemplateError(f"expected ',' or '}}' at column {j + 1}")
    if j >= len(text):
        raise TemplateError(f"unclosed '{{' at column {i + 1}")
    return found, j + 1


def _selector_start(text: str, brace: int) -> int:
    """Where the vector selector whose `{` is at `brace` starts (its metric name, if any)."""
    i = brace
    while i > 0 and text[i - 1].isspace():
        i -= 1
    name_end = i
    while i > 0 and _METRIC_CHAR.match(text[i - 1]):
        i -= 1
    if i == name_end or text[i].isdigit() or text[i:name_end] in _KEYWORDS:
        return brace
    return i


@dataclass(frozen=True)
class QueryTemplate:
    """A parsed request-rate template: where its placeholders are and how to fill them."""

    text: str
    selectors: tuple[_Selector, ...]
    """The vector selectors that hold `{namespace}` or `{name}`, in order, with those matchers."""
    comments: tuple[tuple[int, int], ...]
    """Spans of `#` comments, left out when the template is filled in (a comment would swallow a closing parenthesis)."""
    fixed: tuple[_Matcher, ...]
    """The matchers that hold only `{cluster}`: filled in the same for every target."""
    cluster: str | None
    """The value of `{cluster}`."""

    @classmethod
    def parse(cls, text: str, cluster: str | None = None) -> QueryTemplate:
        """Parse a template whose `{cluster}` is `cluster`.

        Raises `TemplateError` when a placeholder is not in an `=`/`=~` matcher value. A
        template using `{cluster}` parses without a cluster (the config checks a query
        before it knows the cluster), but filling it in then raises `TemplateError`.
        """
        selectors: list[_Selector] = []
        fixed: list[_Matcher] = []
        comments: list[tuple[int, int]] = []
        i = 0
        while i < len(text):
            char = text[i]
            if char in _QUOTES:
                i = _skip_string(text, i)
            elif char == "#":
                newline = text.find("\n", i)
                comments.append((i, len(text) if newline < 0 else newline))
                i = comments[-1][1]
            elif char == "{":
                found, end = _parse_braces(text, i)
                per_target = tuple(m for m in found if m.per_target)
                fixed += [m for m in found if not m.per_target]
                if per_target:
                    selectors.append(_Selector(_selector_start(text, i), end, per_target))
                i = end
            else:
                i += 1
        for match in PLACEHOLDER.finditer(text):
            spans = [(m.start, m.end) for sel in selectors for m in sel.matchers] + [(m.start, m.end) for m in fixed]
            spans += comments
            if not any(start <= match.start() < end for start, end in spans):
                raise TemplateError(
                    f"placeholder {match.group()} at column {match.start() + 1} is not in a label matcher value"
                )
        if not selectors:
            raise TemplateError("no label matcher holds a {name} or {namespace} placeholder")
        return cls(text, tuple(selectors), tuple(comments), tuple(fixed), cluster)

    @property
    def matchers(self) -> tuple[_Matcher, ...]:
        """Every matcher that holds `{namespace}` or `{name}`."""
        return tuple(m for sel in self.selectors for m in sel.matchers)

    @property
    def group_labels(self) -> tuple[str, ...]:
        """Labels that tell targets apart in a batched answer: those of the matchers holding `{namespace}` or `{name}`."""
        return tuple(dict.fromkeys(m.label for m in self.matchers))

    @property
    def uses_cluster(self) -> bool:
        """Whether any matcher holds `{cluster}`."""
        return any(CLUSTER in m.pieces[1::2] for m in (*self.matchers, *self.fixed))

    def values(self, target: Workload) -> dict[str, str]:
        """What each placeholder stands for in `target`'s query (no `{cluster}` when no cluster was given)."""
        values = {"namespace": target.namespace, "name": target.name}
        if self.cluster is not None:
            values[CLUSTER] = self.cluster
        return values

    def render(self, target: Workload) -> str:
        """The template filled in for one target."""
        values = self.values(target)
        return self._fill(0, len(self.text), lambda m: f"{m.label}{m.op}{quote(m.expected(values))}")

    def batch(self, targets: Sequence[Workload]) -> BatchQuery:
        """One query answering the rate and freshness of every target in `targets`."""

        def alternation(m: _Matcher) -> str:
            expected = sorted({m.expected(self.values(t)) for t in targets})
            regexes = [regex_escape(e) for e in expected] if m.op == "=" else [f"(?:{e})" for e in expected]
            return f"{m.label}=~{quote('|'.join(regexes))}"

        by = ", ".join(self.group_labels)
        rates = f"sum by ({by}) ({self._fill(0, len(self.text), alternation)})"
        stamps = " or ".join(f"timestamp({self._fill(sel.start, sel.end, alternation)})" for sel in self.selectors)
        query = (
            f'label_replace({rates}, "{PART_LABEL}", "{RATE_PART}", "", "")'
            f' or label_replace(max by ({by}) ({stamps}), "{PART_LABEL}", "{OBSERVED_PART}", "", "")'
        )
        return BatchQuery(query, self, tuple(targets))

    def single(self, target: Workload) -> BatchQuery:
        """One query answering one target's rate and freshness, for a template that cannot be batched.

        The rate is `sum(<template filled in>)`, the quantity `history` reads too, so a
        template that aggregates away the placeholder labels (`sum(rate(...))`) or yields
        several series per target still gives one rate; its freshness is the newest raw
        sample of the template's selectors, as for a batch.
        """

        values = self.values(target)

        def filled(m: _Matcher) -> str:
            return f"{m.label}{m.op}{quote(m.expected(values))}"

        rates = f"sum({self._fill(0, len(self.text), filled)})"
        stamps = " or ".join(f"timestamp({self._fill(sel.start, sel.end, filled)})" for sel in self.selectors)
        query = (
            f'label_replace({rates}, "{PART_LABEL}", "{RATE_PART}", "", "")'
            f' or label_replace(max({stamps}), "{PART_LABEL}", "{OBSERVED_PART}", "", "")'
        )
        return BatchQuery(query, self, (target,), single=True)

    def _fill(self, start: int, end: int, replace: Callable[[_Matcher], str]) -> str:
        """`text[start:end]` with each target matcher replaced by `replace`, `{cluster}` filled in, comments left out."""
        cluster = {CLUSTER: self.cluster} if self.cluster is not None else {}
        edits = [(m.start, m.end, replace(m)) for m in self.matchers] + [(s, e, "") for s, e in self.comments]
        edits += [(m.start, m.end, f"{m.label}{m.op}{quote(m.expected(cluster))}") for m in self.fixed]
        edits.sort()
        out, pos = [], start
        for edit_start, edit_end, new in edits:
            if start <= edit_start and edit_end <= end:
                out += [self.text[pos:edit_start], new]
                pos = edit_end
        out.append(self.text[pos:end])
        return "".join(out)


@dataclass
class Collected:
    """A batched answer mapped back to targets (keyed by `Target.key`)."""

    rates: dict[str, float] = field(default_factory=dict)
    """Sum of the target's rate groups."""
    observed: dict[str, float] = field(default_factory=dict)
    """Time of the target's newest raw sample."""
    unlabelled: set[str] = field(default_factory=set)
    """Grouping labels that some answered series lack (the template aggregated them away)."""
    repeated: dict[str, list[Mapping[str, str]]] = field(default_factory=dict)
    """Targets with a group answered more than once, and the label sets of its copies (they get no rate)."""


@dataclass(frozen=True)
class BatchQuery:
    """The PromQL of a batched rate query and how to split its answer back to targets."""

    query: str
    template: QueryTemplate
    targets: tuple[Workload, ...]
    single: bool = False
    """The query of one target (`QueryTemplate.single`): its answer holds no grouping labels."""

    def collect(self, series: Iterable[tuple[Mapping[str, str], float]]) -> Collected:
        """Assign each answered `(labels, value)` to the targets that one of the template's selectors picks.

        A group answered more than once is refused for every target it maps to (see the module).
        """
        if self.single:
            return self._collect_single(series)
        pickers = [_Picker.build(sel, self.targets, self.template.values) for sel in self.template.selectors]
        out = Collected()
        answered: dict[tuple[str | None, ...], list[tuple[Mapping[str, str], float, list[str]]]] = {}
        for labels, value in series:
            owners: dict[str, None] = {}
            labelled = False
            for picker in pickers:
                if all(m.label in labels for m in picker.selector.matchers):
                    labelled = True
                    owners.update((t.key, None) for t in picker.pick(labels))
            if not labelled:
                out.unlabelled.update(label for label in self.template.group_labels if label not in labels)
            group = tuple(labels.get(label) for label in (*self.template.group_labels, PART_LABEL))
            answered.setdefault(group, []).append((labels, value, list(owners)))
        for copies in answered.values():
            if len(copies) > 1:
                for key in copies[0][2]:
                    out.repeated.setdefault(key, []).extend(labels for labels, _, _ in copies)
                continue
            labels, value, keys = copies[0]
            part = labels.get(PART_LABEL)
            for key in keys:
                if part == RATE_PART:
                    out.rates[key] = out.rates.get(key, 0.0) + value
                elif part == OBSERVED_PART:
                    out.observed[key] = max(out.observed.get(key, value), value)
        for key in out.repeated:
            out.rates.pop(key, None)
            out.observed.pop(key, None)
        return out

    def _collect_single(self, series: Iterable[tuple[Mapping[str, str], float]]) -> Collected:
        return _collect_one(series, self.targets[0].key)


def _collect_one(series: Iterable[tuple[Mapping[str, str], float]], key: str) -> Collected:
    """A single target's answer: one series per part; a part answered twice is refused, as a repeated group is."""
    parts: dict[str | None, list[tuple[Mapping[str, str], float]]] = {}
    for labels, value in series:
        parts.setdefault(labels.get(PART_LABEL), []).append((labels, value))
    out = Collected()
    if any(len(copies) > 1 for copies in parts.values()):
        out.repeated[key] = [labels for copies in parts.values() if len(copies) > 1 for labels, _ in copies]
        return out
    for part, copies in parts.items():
        if part == RATE_PART:
            out.rates[key] = copies[0][1]
        elif part == OBSERVED_PART:
            out.observed[key] = copies[0][1]
    return out


@dataclass(frozen=True)
class _Picker:
    """The targets of one selector, indexed by the values of its `=` matchers."""

    selector: _Selector
    equal: tuple[_Matcher, ...]
    regex: tuple[_Matcher, ...]
    index: dict[tuple[str, ...], list[tuple[Workload, list[re.Pattern[str]]]]]

    @classmethod
    def build(cls, selector: _Selector, targets: Sequence[Workload],
              values: Callable[[Workload], Mapping[str, str]]) -> _Picker:
        equal = tuple(m for m in selector.matchers if m.op == "=")
        regex = tuple(m for m in selector.matchers if m.op == "=~")
        index: dict[tuple[str, ...], list[tuple[Workload, list[re.Pattern[str]]]]] = {}
        for t in targets:
            filled = values(t)
            key = tuple(m.expected(filled) for m in equal)
            index.setdefault(key, []).append((t, [re.compile(m.expected(filled)) for m in regex]))
        return cls(selector, equal, regex, index)

    def pick(self, labels: Mapping[str, str]) -> list[Workload]:
        """The targets whose matchers in this selector all accept `labels`."""
        candidates = self.index.get(tuple(labels[m.label] for m in self.equal), [])
        return [
            t
            for t, patterns in candidates
            if all(p.fullmatch(labels[m.label]) for p, m in zip(patterns, self.regex, strict=True))
        ]
