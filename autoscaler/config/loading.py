"""Reading a config: YAML with duplicate keys refused, `${VAR}` expansion, every error named by its path.

`load_config_text` / `load_config_file` turn YAML text into a validated `Config` or
raise `ConfigError` listing every problem, e.g.
`targets[1].minReplicas: 12 is greater than maxReplicas (10)`. Checks that span fields
or targets (min <= max, duplicate targets, the namespace allowlist, lease timing, a
`{cluster}` placeholder with no cluster set) run here, after each model validated on its own.

`prometheus.cluster` falls back to the environment variable `PRESCALER_CLUSTER` when the
config does not set it (the config wins: it is what the operator wrote; a config shared by
a fleet leaves it out and each cluster's Deployment sets the variable). The fallback is
treated as a `${VAR}` value: no error message shows it.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from autoscaler.config.durations import format_duration
from autoscaler.config.messages import ConfigError, EnvValues, shown
from autoscaler.config.promql import QueryTemplate
from autoscaler.config.schema import (
    LEASE_JITTER,
    Config,
    LeaderElectionSettings,
    MissingMetricsReplicas,
    PrometheusSettings,
    Target,
)
from autoscaler.logs import looks_secret, without_userinfo


def _path(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("function-after", "function-before") or "[" in str(part):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


_STRICT_TYPES = {"bool_type": "true or false", "int_type": "a whole number", "float_type": "a number"}


def _nested_models(annotation: Any) -> list[type[BaseModel]]:
    """The models a field's annotation holds, directly or in a list, dict or union."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, list, dict, typing.Annotated):
        return [m for arg in typing.get_args(annotation) for m in _nested_models(arg)]
    return []


def _model_at(loc: Iterable[Any]) -> type[BaseModel] | None:
    """The model whose mapping sits at `loc` (the path of one of its keys), or None where it is not known."""
    models: list[type[BaseModel]] = [Config]
    for part in loc:
        if isinstance(part, int) or part in ("MissingMetricsReplicas", "literal['hold']"):
            continue
        found = [info for model in models for name, info in model.model_fields.items() if part in (name, info.alias)]
        if not found:
            return None
        models = _nested_models(found[0].annotation)
    return models[0] if models else None


def did_you_mean(loc: tuple[Any, ...]) -> str:
    """' (did you mean 'syncInterval'?)' for an unknown key close to one its mapping knows, else ''."""
    key, model = loc[-1], _model_at(loc[:-1])
    if not isinstance(key, str) or model is None:
        return ""
    known = [info.alias or name for name, info in model.model_fields.items()]
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if not close:
        lowered = {k.lower(): k for k in known}
        close = [lowered[key.lower().replace("_", "").replace("-", "")]] if key.lower().replace("_", "").replace(
            "-", "") in lowered else []
    return f" (did you mean {close[0]!r}?)" if close else ""


def _describe(error: ErrorDetails, variables: list[str]) -> str:
    kind, msg = error["type"], error["msg"].removeprefix("Value error, ")
    if kind == "extra_forbidden":
        return "unknown key" + did_you_mean(tuple(p for p in error["loc"] if p not in ("function-after",
                                                                                        "function-before")))
    if kind in _STRICT_TYPES and isinstance(error.get("input"), str) and not variables:
        value = error["input"]
        return (f"must be {_STRICT_TYPES[kind]}, written without quotes: the quoted {shown(value)} is a string"
                if len(value) < 40 else f"must be {_STRICT_TYPES[kind]}, got a string")
    if kind == "missing":
        return "required field is missing"
    if any(isinstance(p, str) and (p == "headers" or looks_secret(p)) for p in error["loc"]):
        return f"{msg} (value not shown: it may be a credential)"  # errors reach Events and logs
    if variables:
        return f"{msg} (value from {', '.join('${' + v + '}' for v in variables)} not shown)"
    value = error.get("input")
    if error["loc"] and error["loc"][-1] == "url" and isinstance(value, str):
        value = without_userinfo(value)  # also where the URL has no scheme, which scrubbing by `//` misses
    if kind == "value_error" and isinstance(value, dict | list):
        return msg  # our own validator explained a whole section: "got a dict" would add nothing
    return f"{msg}, got {shown(value)}"


def _pydantic_errors(exc: ValidationError, env: EnvValues) -> list[str]:
    lines, seen = [], set()
    for error in exc.errors(include_url=False):
        loc = [p for p in error["loc"] if p not in ("MissingMetricsReplicas", "literal['hold']")]
        path = _path(loc)
        line = f"{path or '(root)'}: {_describe(error, env.variables_in(path))}"
        if line not in seen:
            seen.add(line)
            lines.append(line)
    return lines


def _target_errors(targets: list[tuple[int, Target]], allowlist: list[str]) -> list[str]:
    """Cross-field and cross-target checks that field validation cannot express."""
    errors: list[str] = []
    seen: dict[tuple[str, str], int] = {}
    for i, t in targets:
        where = f"targets[{i}]"
        if t.min_replicas > t.max_replicas:
            errors.append(f"{where}.minReplicas: {t.min_replicas} is greater than maxReplicas ({t.max_replicas})")
        if t.min_replicas == 0 and not t.zero_when_absent:
            errors.append(
                f"{where}.minReplicas: 0 needs zeroWhenAbsent: true. At zero replicas a metric that comes from the "
                "pods has no series, so the rate is missing and the target would hold at zero forever. Set "
                "zeroWhenAbsent: true if the query's series come from the workload's own pods (no pods means no "
                "demand), or keep minReplicas at 1 or more"
            )
        if isinstance(t.on_missing_metrics, MissingMetricsReplicas) and not (
            t.min_replicas <= t.on_missing_metrics.replicas <= t.max_replicas
        ):
            errors.append(
                f"{where}.onMissingMetrics.replicas: {t.on_missing_metrics.replicas} is outside "
                f"[minReplicas, maxReplicas] = [{t.min_replicas}, {t.max_replicas}]"
            )
        if t.forecast.min_history_hours > t.forecast.history_days * 24:
            errors.append(
                f"{where}.forecast.minHistoryHours: {t.forecast.min_history_hours:g}h is more than historyDays "
                f"({t.forecast.history_days:g}d) holds: the forecast could never be used"
            )
        if allowlist and t.namespace not in allowlist:
            errors.append(f"{where}.namespace: {t.namespace!r} is not in the namespaces allowlist {allowlist}")
        ident = (t.namespace, t.name)
        if ident in seen:
            errors.append(f"{where}: duplicate target {t.key} (first defined at targets[{seen[ident]}])")
        else:
            seen[ident] = i
    return errors


CLUSTER_VARIABLE = "PRESCALER_CLUSTER"
"""The environment variable `prometheus.cluster` falls back to."""


def _cluster_errors(targets: list[tuple[int, Target]], prometheus: PrometheusSettings) -> list[str]:
    """A `{cluster}` placeholder needs a cluster: one error naming the setting and the first target using it."""
    if prometheus.cluster is not None:
        return []
    uses = {query: QueryTemplate.parse(query).uses_cluster for query in {t.query for _, t in targets}}
    users = [i for i, t in targets if uses[t.query]]
    if not users:
        return []
    more = f" (and {len(users) - 1} more target(s))" if len(users) > 1 else ""
    return [f"prometheus.cluster: not set, but targets[{users[0]}].query uses the {{cluster}} placeholder{more}: set "
            f"prometheus.cluster, or the environment variable {CLUSTER_VARIABLE} in the controller's container"]


def _lease_errors(lease: LeaderElectionSettings) -> list[str]:
    """client-go's ordering of the lease timings."""
    errors = []
    if not lease.renew_deadline < lease.lease_duration:
        errors.append(f"leaderElection.renewDeadline: {format_duration(lease.renew_deadline)} must be less than "
                      f"leaseDuration ({format_duration(lease.lease_duration)})")
    if not LEASE_JITTER * lease.retry_period < lease.renew_deadline:
        errors.append(f"leaderElection.retryPeriod: {LEASE_JITTER} × {format_duration(lease.retry_period)} (client-go's "
                      f"jitter) must be less than renewDeadline ({format_duration(lease.renew_deadline)})")
    return errors


def _valid_parts_of(data: dict[str, Any]) -> list[str]:
    """The cross-field errors of the parts that validate on their own, from a config that did not."""
    raw = data.get("targets")
    targets = []
    for i, item in enumerate(raw if isinstance(raw, list) else []):
        try:
            targets.append((i, Target.model_validate(item)))
        except ValidationError:
            continue
    given = data.get("namespaces")
    allowlist: list[str] = given if isinstance(given, list) and all(isinstance(n, str) for n in given) else []
    errors = _target_errors(targets, allowlist)
    with contextlib.suppress(ValidationError):
        errors += _lease_errors(LeaderElectionSettings.model_validate(data.get("leaderElection") or {}))
    with contextlib.suppress(ValidationError):
        errors += _cluster_errors(targets, PrometheusSettings.model_validate(data.get("prometheus") or {}))
    return errors


def parse_config(data: Any, source: str = "config", env: EnvValues | None = None) -> Config:
    """Validate a decoded YAML document into a `Config`, or raise `ConfigError` listing every problem.

    `env` says which values came from `${VAR}` expansion (see `load_config_text`); no message shows them.
    """
    env = env if env is not None else EnvValues()
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([f"(root): expected a mapping of settings, got {type(data).__name__}"], source, env)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_pydantic_errors(exc, env) + _valid_parts_of(data), source, env) from None
    targets = list(enumerate(config.targets))
    errors = _target_errors(targets, config.namespaces) + _lease_errors(config.leader_election)
    errors += _cluster_errors(targets, config.prometheus)
    if errors:
        raise ConfigError(errors, source, env)
    config._env = env
    return config


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """libyaml's safe loader when present, which also reads YAML 1.2 exponent floats such as `1e3` as numbers
    (YAML 1.1 wants a dot, `1.0e3`; Kubernetes reads both): with strict numbers, a plain `1e3` must not be a string."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789"))
_YAML_LOADER = _Loader
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_ENV_OR_LITERAL = re.compile(r"\$?" + _ENV_REF.pattern)
_COMMENT = re.compile(r"(?:^|\s)#")
_INT_TAG = "tag:yaml.org,2002:int"
_MERGE_TAG = "tag:yaml.org,2002:merge"
LONGEST_INTEGER = 100
"""An integer written with more characters than this is out of every setting's range; it is refused before
Python converts it (which takes time quadratic in its length, and fails past 4300 digits)."""


def expand_env(text: str, env: Mapping[str, str], source: str = "config") -> tuple[str, EnvValues]:
    """Replace `${NAME}` with the environment variable NAME (e.g. POD_NAMESPACE from the downward API).

    An unset variable is an error naming it and its line; `$${NAME}` stays literal
    `${NAME}`; YAML comments (from a `#` at the start of a line or after a space) are
    left as they are. Returns the text and what was substituted where, so that no
    message ever shows a substituted value.
    """
    errors: list[str] = []
    found = EnvValues()
    pieces: list[str] = []
    length = 0

    def emit(piece: str, name: str | None = None) -> None:
        nonlocal length
        if name is not None and piece:
            found.values[piece] = name
            found.spans.append((length, length + len(piece), name))
        pieces.append(piece)
        length += len(piece)

    for line_no, line in enumerate(text.splitlines(keepends=True), start=1):
        comment = _COMMENT.search(line)
        code, rest = (line[: comment.start()], line[comment.start() :]) if comment else (line, "")
        missing = [m.group(1) for m in _ENV_REF.finditer(code)
                   if m.group(1) not in env and not code[: m.start()].endswith("$")]
        errors += [f"line {line_no}: environment variable {name} is not set" for name in missing]
        if missing:
            emit(line)
            continue
        last = 0
        for match in _ENV_OR_LITERAL.finditer(code):
            emit(code[last : match.start()])
            if match.group(0).startswith("$$"):
                emit(match.group(0)[1:])
            else:
                emit(env[match.group(1)], match.group(1))
            last = match.end()
        emit(code[last:] + rest)
    if errors:
        raise ConfigError(errors, source)
    return "".join(pieces), found


def _scalar_problem(node: yaml.ScalarNode, loader: Any) -> str | None:
    if node.tag == _INT_TAG and len(node.value) > LONGEST_INTEGER:
        return f"an integer of {len(node.value)} characters is out of range"
    try:
        loader.construct_object(node)
    except (ValueError, OverflowError) as exc:
        return f"not a valid {node.tag.rsplit(':', 1)[-1]}: {exc}"
    return None


def _node_problems(root: yaml.Node, loader: Any, env: EnvValues) -> list[str]:
    """Duplicate keys (at any depth) and unreadable scalars, by line; notes where `${VAR}` values landed.

    Runs on the composed node tree, so it works the same with libyaml's loader and PyYAML's.
    Each node is visited once, however many aliases point at it.
    """
    problems: list[tuple[int, str]] = []
    visited: set[int] = set()
    stack: list[tuple[yaml.Node, str]] = [(root, "")]
    while stack:
        node, path = stack.pop()
        if id(node) in visited:
            continue
        visited.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            env.note_scalar(path, node.start_mark.index, node.end_mark.index)
            problem = _scalar_problem(node, loader)
            if problem:
                problems.append((node.start_mark.line + 1, f"{path or '(root)'}: line {node.start_mark.line + 1}: {problem}"))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, f"{path}[{i}]") for i, item in enumerate(node.value))
        elif isinstance(node, yaml.MappingNode):
            first_line: dict[tuple[str, str], int] = {}
            for key, value in node.value:
                if key.tag == _MERGE_TAG:
                    stack.append((value, path))  # `<<: *base` merges keys that explicit ones may override
                    continue
                if not isinstance(key, yaml.ScalarNode):
                    stack.append((value, path))
                    continue
                child = f"{path}.{key.value}" if path else str(key.value)
                line = key.start_mark.line + 1
                problem = _scalar_problem(key, loader)
                if problem:
                    problems.append((line, f"{child}: line {line}: {problem}"))
                if (key.tag, key.value) in first_line:
                    problems.append((line, f"line {line}: duplicate key {child} "
                                           f"(first at line {first_line[(key.tag, key.value)]})"))
                else:
                    first_line[(key.tag, key.value)] = line
                stack.append((value, child))
    return [text for _, text in sorted(problems)]


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(root)"
    problem = getattr(exc, "problem", None) or str(exc)
    return f"{where}: not valid YAML: {problem}"


def _read_yaml(text: str, source: str, env: EnvValues) -> Any:
    """The YAML document in `text`, refused with line numbers when it repeats a key or holds an unreadable value."""
    loader = _YAML_LOADER(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        problems = _node_problems(node, loader, env)
        if problems:
            raise ConfigError(problems, source, env)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_problem(exc)], source, env) from None
    except RecursionError:
        raise ConfigError(["(root): not valid YAML: nested too deeply"], source, env) from None
    finally:
        loader.dispose()


def _cluster_from_env(data: Any, env: Mapping[str, str], found: EnvValues) -> Any:
    """`data` with `prometheus.cluster` from PRESCALER_CLUSTER when that is set (not empty) and the config has none."""
    value = env.get(CLUSTER_VARIABLE, "")
    section = data.get("prometheus", {}) if isinstance(data, dict) else None
    if not value or not isinstance(section, dict) or "cluster" in section:
        return data
    found.note_value("prometheus.cluster", value, CLUSTER_VARIABLE)
    return {**data, "prometheus": {**section, "cluster": value}}


def load_config_text(text: str, source: str = "config", env: Mapping[str, str] | None = None) -> Config:
    """Parse YAML text (after `${VAR}` expansion from `env`, default os.environ) into a validated `Config`.

    `prometheus.cluster` falls back to `env`'s PRESCALER_CLUSTER (see the module).
    """
    env = os.environ if env is None else env
    expanded, found = expand_env(text, env, source)
    data = _cluster_from_env(_read_yaml(expanded, source, found), env, found)
    return parse_config(data, source, found)


def load_config_file(path: str | Path) -> Config:
    """Read and validate a config file; unreadable files raise `ConfigError` naming the path."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"(file): cannot read {path}: {exc}"], str(path)) from None
    return load_config_text(text, str(path))
