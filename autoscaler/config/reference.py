"""The config reference, generated from the models: every key, its type, default, range and description.

`docs/config-reference.md` is `render()`'s output (`make config-reference` writes it;
a test fails when the file is stale), so the reference cannot drift from what the
loader accepts: keys are the models' camelCase aliases, ranges their constraints, and
each description the field's docstring in `autoscaler/config/schema.py`.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterator
from typing import Any, Literal

from annotated_types import Ge, Gt, Le, Lt, MaxLen, MinLen
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from autoscaler.config.durations import format_duration
from autoscaler.config.schema import Config
from autoscaler.config.values import DurationRange

HEADER = """# Config reference

<!-- Generated from autoscaler/config/schema.py by scripts/config_reference.py (`make config-reference`).
     Do not edit by hand: tests/test_config_reference.py fails when this file is stale. -->

Every key of Prescaler's config (one YAML document, ConfigMap key `config.yaml`), with its
type, default, range and meaning. Keys are camelCase. Booleans and numbers are strict
(`dryRun: "false"` is an error, not `false`); durations are Go-style strings such as
`30s`, `5m` or `1h30m`, or a number of seconds. An unknown key is an error that names the
closest known one. `[]` in a key stands for any item of a list. A documented example:
[deploy/examples/config.yaml](../deploy/examples/config.yaml); how to choose the sizing
keys: [choosing-sizing.md](choosing-sizing.md).
"""


def _non_none(annotation: Any) -> list[Any]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(annotation) if a is not type(None)]
    return [annotation]


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    for part in _non_none(annotation):
        if typing.get_origin(part) is list:
            found += _models_in(typing.get_args(part)[0])
        elif isinstance(part, type) and issubclass(part, BaseModel):
            found.append(part)
    return found


def _type_name(annotation: Any, info: FieldInfo | None = None) -> str:
    if info is not None and any(isinstance(getattr(m, "func", None), DurationRange) for m in info.metadata):
        return "duration"
    parts = _non_none(annotation)
    if len(parts) > 1:
        return " or ".join(_type_name(p) for p in parts)
    kind = parts[0]
    origin = typing.get_origin(kind)
    if origin is Literal:
        return "one of " + ", ".join(f"`{v}`" for v in typing.get_args(kind))
    if origin is list or origin is tuple:  # a tuple field is written as a YAML list too
        return f"list of {_type_name(typing.get_args(kind)[0])}"
    if origin is dict:
        key, value = typing.get_args(kind)
        return f"map of {_type_name(key)} to {_type_name(value)}"
    if origin is typing.Annotated:
        return _type_name(typing.get_args(kind)[0])
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        return "object"
    return {bool: "boolean", int: "integer", float: "number", str: "string"}.get(kind, str(kind))


def _constraints(info: FieldInfo) -> list[object]:
    found = list(info.metadata)
    for part in _non_none(info.annotation):
        if typing.get_origin(part) is typing.Annotated:
            for extra in typing.get_args(part)[1:]:
                found += list(getattr(extra, "metadata", [])) + [extra]
    return found


def _number(value: object) -> str:
    if isinstance(value, int | float) and float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _bounds(info: FieldInfo) -> str:
    out = []
    for c in _constraints(info):
        if isinstance(getattr(c, "func", None), DurationRange):
            return f"{format_duration(c.func.low)} to {format_duration(c.func.high)}"  # type: ignore[attr-defined]
        if isinstance(c, Ge):
            out.append(f">= {_number(c.ge)}")
        elif isinstance(c, Gt):
            out.append(f"> {_number(c.gt)}")
        elif isinstance(c, Le):
            out.append(f"<= {_number(c.le)}")
        elif isinstance(c, Lt):
            out.append(f"< {_number(c.lt)}")
        elif isinstance(c, MinLen) and c.min_length > 0:
            out.append(f"length >= {c.min_length}")
        elif isinstance(c, MaxLen):
            out.append(f"length <= {c.max_length:,}")
    return ", ".join(dict.fromkeys(out))


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    if info.default_factory is not None:
        made = info.default_factory()  # type: ignore[call-arg]
        if isinstance(made, BaseModel):
            return "see below"
        return f"`{made!r}`".replace("'", '"') if made else "`[]`" if isinstance(made, list) else "`{}`"
    value = info.default
    if value is None or value is PydanticUndefined:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if value == ():
        return "`[]`"
    if any(isinstance(getattr(m, "func", None), DurationRange) for m in info.metadata):
        return f"`{format_duration(float(value))}`"
    if isinstance(value, str):
        return f"`{value}`" if value else '`""`'
    return f"`{value:g}`" if isinstance(value, float) else f"`{value}`"


def _cell(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().replace("|", "\\|")


def sections(model: type[BaseModel] = Config, path: str = "") -> Iterator[tuple[str, type[BaseModel]]]:
    """(key path, model) of every mapping in the config, depth first: `targets[].behavior.scaleUp`, ..."""
    yield path, model
    for name, info in model.model_fields.items():
        key = info.alias or name
        for inner in _models_in(info.annotation):
            is_list = any(typing.get_origin(p) is list for p in _non_none(info.annotation))
            yield from sections(inner, f"{path}.{key}".lstrip(".") + ("[]" if is_list else ""))


def keys(root: type[BaseModel] = Config) -> list[str]:
    """The full path of every key the config has."""
    return [f"{path}.{info.alias or name}".lstrip(".") for path, model in sections(root)
            for name, info in model.model_fields.items()]


def render(root: type[BaseModel] = Config) -> str:
    """The whole reference as Markdown."""
    out = [HEADER]
    for path, model in sections(root):
        title = f"`{path}`" if path else "Top level"
        doc = _cell((model.__doc__ or "").split("\n\n")[0])
        out += [f"\n## {title}\n", f"{doc}\n", "| key | type | default | range | description |",
                "| --- | --- | --- | --- | --- |"]
        for name, info in model.model_fields.items():
            key = f"{path}.{info.alias or name}".lstrip(".")
            out.append(f"| `{key}` | {_cell(_type_name(info.annotation, info))} | {_cell(_default(info))} | "
                       f"{_cell(_bounds(info)) or '—'} | {_cell(info.description or '')} |")
    return "\n".join(out) + "\n"
