"""Build the sandbox's frozen config dataclasses from plain mappings (parsed YAML).

Unknown keys are errors (a typo in a scenario must not be silently ignored); ranges are
written ``[low, high]`` or a single number; nested dataclasses are built recursively.
Every error is a :class:`~dialstream.errors.ConfigurationError` naming the key path.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from dialstream.errors import ConfigurationError

__all__ = ["Range", "build", "as_range", "probability"]

T = TypeVar("T")

Range = tuple[float, float]
"""A closed interval of milliseconds (or seconds) from which a value is drawn uniformly."""


def build(cls: type[T], raw: Any, where: str) -> T:
    """An instance of dataclass ``cls`` from ``raw``; fields not given keep their defaults."""
    if raw is None:
        return cls()
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"{where}: expected a mapping, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigurationError(f"{where}: unknown key(s) {unknown}; expected some of {sorted(known)}")
    values = {key: _convert(hints[key], value, f"{where}.{key}") for key, value in raw.items()}
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"{where}: {exc}") from None


def as_range(value: Any, where: str) -> Range:
    """``[low, high]`` or ``n`` (meaning ``[n, n]``) as a validated non-negative range."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        low = high = float(value)
    elif isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_number(v) for v in value):
        low, high = float(value[0]), float(value[1])
    else:
        raise ConfigurationError(f"{where}: expected [low, high] or a number, got {value!r}")
    if low < 0 or high < low:
        raise ConfigurationError(f"{where}: need 0 <= low <= high, got [{low}, {high}]")
    return (low, high)


def probability(value: float, where: str) -> None:
    """Raise unless ``0 <= value <= 1``."""
    if not 0.0 <= value <= 1.0:
        raise ConfigurationError(f"{where}: a probability must be within [0, 1], got {value}")


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if value is None:
            return None
        return _convert(options[0], value, where)
    if hint == Range:
        return as_range(value, where)
    if dataclasses.is_dataclass(hint):
        return build(hint, value, where)
    if origin is tuple:
        item, *rest = typing.get_args(hint)
        if rest != [Ellipsis]:
            raise ConfigurationError(f"{where}: unsupported field type {hint}")
        if not isinstance(value, (list, tuple)):
            raise ConfigurationError(f"{where}: expected a list, got {type(value).__name__}")
        return tuple(_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if hint is float:
        if not _is_number(value):
            raise ConfigurationError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigurationError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigurationError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            raise ConfigurationError(f"{where}: expected a string, got {value!r}")
        return str(value)
    raise ConfigurationError(f"{where}: unsupported field type {hint}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
