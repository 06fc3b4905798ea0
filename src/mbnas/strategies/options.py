"""A strategy's own options (population size, batch size...), read from the config.

A strategy may declare an options dataclass (``register_strategy(..., options=Cls)``).
Its fields come from the search config's ``strategy_options:`` mapping and from
``--strategy-option KEY=VALUE`` (repeatable); :func:`parse_options` checks them against
the dataclass (an unknown key or a value of the wrong type is refused in one line) and
builds the instance the strategy's builder receives as ``options``. Values given as text
(the command line) are converted to the field's type; values from YAML must have it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any

from mbnas.errors import ConfigError

__all__ = ["parse_assignments", "parse_options", "options_dict"]

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def parse_assignments(pairs: Iterable[str], what: str = "--strategy-option") -> dict[str, str]:
    """``["population=8", "sample=3"]`` -> ``{"population": "8", "sample": "3"}``.

    Raises:
        ConfigError: an item without ``=`` or with an empty key.
    """
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = str(pair).partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{what} takes KEY=VALUE, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


def _convert(value: Any, kind: Any, what: str) -> Any:
    """``value`` as a ``kind`` (int, float, bool, str, or an optional one of them)."""
    args = typing.get_args(kind)
    if typing.get_origin(kind) in (typing.Union, types.UnionType) and type(None) in args:
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        kind = next(a for a in args if a is not type(None))
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
    elif kind in (int, float):
        exact = (int,) if kind is int else (int, float)  # an int is a float, not vice versa
        if isinstance(value, exact) and not isinstance(value, bool):
            return kind(value)
        if isinstance(value, str):
            try:
                return kind(value)
            except ValueError:
                pass
    elif kind is str:
        if isinstance(value, str):
            return value
    else:
        return value  # a type this module does not check: the strategy checks it
    name = getattr(kind, "__name__", str(kind))
    raise ConfigError(f"{what} must be {name}, got {value!r}")


def parse_options(strategy: str, options_type: type | None,
                  values: Mapping[str, Any] | None) -> Any | None:
    """The options instance of ``strategy`` from ``values`` (None: it declares none and
    none were given).

    Raises:
        ConfigError: options for a strategy without any, an unknown key, a wrong type, or
            what the dataclass itself refuses (its ``__post_init__``).
    """
    values = dict(values or {})
    if options_type is None:
        if values:
            raise ConfigError(f"strategy_options: the {strategy} strategy takes no options, "
                              f"got {', '.join(map(str, values))}")
        return None
    hints = typing.get_type_hints(options_type)
    fields = {f.name: hints.get(f.name, Any) for f in dataclasses.fields(options_type)
              if f.init}
    unknown = [k for k in values if k not in fields]
    if unknown:
        raise ConfigError(f"strategy_options: unknown option {unknown[0]!r} of the {strategy} "
                          f"strategy; options: {', '.join(fields) or '(none)'}")
    typed = {k: _convert(v, fields[k], f"strategy_options: {strategy} option {k}")
             for k, v in values.items()}
    try:
        return options_type(**typed)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"strategy_options: {strategy}: {exc}") from None


def options_dict(options: Any | None, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """The options saved in ``config.yaml``: the keys given, with their typed values."""
    if options is None:
        return {}
    return {k: getattr(options, k) for k in (given or {})}
