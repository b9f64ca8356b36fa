"""Typed configs from plain data, and the one KEY=VALUE parser.

`build(cls, data, where)` turns a mapping (stored JSON, YAML, or `--option KEY=VALUE` text)
into a dataclass instance, nested dataclasses included:

- an unknown key is refused, naming it and the known ones (nothing is silently dropped);
- each value is coerced by the field's annotation: bool, int, float, str, Enum, a nested
  dataclass, `X | None`, `list[X]`, `dict[str, X]`. Text from a command line converts
  ("2", "2.5", "true", "none", "a,b"); anything else fails naming the field and the type it
  expects (`top_k=2.7` is an error, never 2).

`to_data(obj)` is the inverse (enums as their values), so `build(type(x), to_data(x)) == x`.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Any, TypeVar

from mixer.errors import MixerError

T = TypeVar("T")
_TRUE, _FALSE, _NONE = {"true", "yes", "1", "on"}, {"false", "no", "0", "off"}, {"none", "null", ""}


def parse_pairs(items: str | Iterable[str], what: str, split_commas: bool = True, form: str = "NAME=VALUE"
                ) -> dict[str, str]:
    """`a=1,b=2` (or repeated items) -> {"a": "1", "b": "2"}; names are stripped, each
    appears once. `what` names the argument and `form` the expected shape in errors."""
    raw = [items] if isinstance(items, str) else list(items)
    parts = [p for item in raw for p in (item.split(",") if split_commas else [item]) if p.strip()]
    out: dict[str, str] = {}
    for part in parts:
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or not key:
            raise MixerError(f"bad {what} '{part.strip()}': expected {form}")
        if key in out:
            raise MixerError(f"{what} names '{key}' twice")
        out[key] = value.strip()
    return out


def type_name(annotation: Any) -> str:
    """A readable name for an annotation: `int`, `int | None`, `list[str]`."""
    if isinstance(annotation, type):
        if issubclass(annotation, Enum):
            return " | ".join(repr(m.value) for m in annotation)
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def build(cls: type[T], data: Mapping[str, Any], where: str) -> T:
    """An instance of dataclass `cls` from `data`; see the module docstring."""
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        raise MixerError(f"{where}: expected a mapping of options, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(k for k in data if k not in fields)
    if unknown:
        raise MixerError(f"{where} has no option {', '.join(unknown)} "
                         f"(options: {', '.join(fields) or 'none'})")
    values = {key: coerce(value, hints[key], f"{where}.{key}") for key, value in data.items()}
    try:
        return cls(**values)
    except TypeError as exc:  # a required field is missing
        raise MixerError(f"{where}: {exc}") from None


def coerce(value: Any, annotation: Any, where: str) -> Any:
    """`value` as `annotation`, or a MixerError naming `where` and the expected type."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return _coerce_union(value, args, where, annotation)
    if origin in (list, tuple):
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise _expected(where, annotation, value)
        return [coerce(v.strip() if isinstance(v, str) else v, args[0] if args else Any, f"{where}[{i}]")
                for i, v in enumerate(items) if not (isinstance(v, str) and not v.strip())]
    if origin in (dict, Mapping):
        if isinstance(value, str):
            value = parse_pairs(value, where)
        if not isinstance(value, Mapping):
            raise _expected(where, annotation, value)
        return {str(k): coerce(v, args[1] if args else Any, f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(annotation):
        return build(annotation, value, where)
    return _coerce_scalar(value, annotation, where)


def _coerce_union(value: Any, args: tuple, where: str, annotation: Any) -> Any:
    if value is None or (type(None) in args and isinstance(value, str) and value.strip().lower() in _NONE):
        if type(None) in args:
            return None
        raise _expected(where, annotation, value)
    candidates = [a for a in args if a is not type(None)]
    if len(candidates) == 1:  # `X | None`: X's own error says more
        return coerce(value, candidates[0], where)
    for arg in candidates:
        try:
            return coerce(value, arg, where)
        except MixerError:
            continue
    raise _expected(where, annotation, value)


def _coerce_scalar(value: Any, annotation: Any, where: str) -> Any:
    if annotation is Any:
        return value
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        try:
            return annotation(value.value if isinstance(value, Enum) else value)
        except ValueError:
            raise _expected(where, annotation, value) from None
    if annotation is bool:
        return _to_bool(value, where)
    if annotation is int:
        return _to_int(value, where)
    if annotation is float:
        return _to_float(value, where)
    if annotation is str:
        if isinstance(value, str):
            return value
        raise _expected(where, annotation, value)
    raise MixerError(f"{where}: cannot set a value of type {type_name(annotation)} here")


def _to_bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _expected(where, bool, value)


def _to_int(value: Any, where: str) -> int:
    if isinstance(value, bool):
        raise _expected(where, int, value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())  # "1e5" is a whole number too
        except ValueError:
            raise _expected(where, int, value) from None
        if math.isfinite(number) and number.is_integer():
            return int(number)
    raise _expected(where, int, value)


def _to_float(value: Any, where: str) -> float:
    if isinstance(value, bool):
        raise _expected(where, float, value)
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise _expected(where, float, value) from None
    if not math.isfinite(number):
        raise MixerError(f"{where} must be a finite number, got {value!r}")
    return number


def _expected(where: str, annotation: Any, value: Any) -> MixerError:
    return MixerError(f"{where} expects {type_name(annotation)}, got {value!r}")


def to_data(obj: Any) -> Any:
    """Dataclasses, enums, tuples and numpy scalars as plain JSON-able data."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_data(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, Mapping):
        return {str(k): to_data(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_data(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalar
        return obj.item()
    return obj
