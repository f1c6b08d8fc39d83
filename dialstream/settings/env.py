"""Settings read from the environment: one dataclass field per variable, its metadata naming
the variable and its help, converted from text by the field's default's type."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field, fields
from typing import Any

from dialstream.errors import ConfigurationError

__all__ = ["env_field", "env_fields", "read_env", "write_env"]


def env_field(name: str, help: str, default: Any, **kwargs: Any) -> Any:
    return field(default=default, metadata={"env": name, "help": help}, **kwargs)


def _convert(raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off", ""):
            return False
        raise ValueError("expected a boolean (true/false)")
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    if isinstance(default, tuple):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw


def env_fields(cls: type) -> list[Any]:
    return [f for f in fields(cls) if "env" in f.metadata]


def read_env(cls: type, env: Mapping[str, str]) -> dict[str, Any]:
    """The fields of ``cls`` whose variables ``env`` sets, converted to their defaults' types."""
    values: dict[str, Any] = {}
    for f in env_fields(cls):
        name = f.metadata["env"]
        if name in env:
            try:
                values[f.name] = _convert(env[name], f.default)
            except ValueError as exc:
                raise ConfigurationError(f"{name}={env[name]!r}: {exc}") from None
    return values


def write_env(config: Any) -> dict[str, str]:
    """The variables that reproduce ``config``'s fields."""
    env = {}
    for f in env_fields(type(config)):
        value = getattr(config, f.name)
        env[f.metadata["env"]] = ",".join(value) if isinstance(value, tuple) else str(value)
    return env
