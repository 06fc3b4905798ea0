"""Field checks shared by the settings dataclasses: types, finite numbers, ranges.

Every field of a protocol, its augmentation and a search config is checked against its
type hint (a ``"3"`` where a number belongs is refused, not compared), and numbers against
the range they make sense in, with a message naming the field. Rules go by field name, so
a new field gets the type check for free and a range check by adding one line here.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import types
import typing
from typing import Any

from mbnas.errors import ConfigError

# field name -> (lowest, highest, lowest allowed itself): ranges of numeric fields.
_RANGES: dict[str, tuple[float, float, bool]] = {
    "lr": (0.0, math.inf, False),
    "poly_exponent": (0.0, math.inf, True),
    "weight_decay": (0.0, math.inf, True),
    "batch_size": (1, math.inf, True),
    "val_batch_size": (1, math.inf, True),
    "epochs": (1, math.inf, True),
    "image_size": (16, 4096, True),
    "base_channels": (1, 4096, True),
    "surface_tolerance_mm": (0.0, math.inf, False),
    "rotate_degrees": (0.0, 180.0, True),
    "shift_fraction": (0.0, 1.0, True),
    "budget": (1, 10**6, True),
    "seed": (0, 2**32 - 1, True),
    "split_seed": (0, 2**32 - 1, True),
    "max_depth": (1, 64, True),
    "threads": (1, 4096, True),
    "target_spacing": (0.0, 100.0, True),
    "foreground_fraction": (0.0, 1.0, True),
}
# Ranges (low, high) whose values must be positive: multiplicative factors.
_POSITIVE_RANGES = ("scale", "brightness", "contrast", "gamma")


def check_fields(obj: Any, what: str) -> None:
    """Check every field of the dataclass ``obj`` against its type hint and range.

    Raises:
        ConfigError: naming the first wrong field (``what.field``) and its value.
    """
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        value, name = getattr(obj, f.name), f"{what}.{f.name}"
        hint = hints.get(f.name, Any)
        if not _matches(value, hint):
            raise ConfigError(f"invalid {name}: {value!r} is not {_describe(hint)}")
        _check_value(f.name, name, value)


def _check_value(field: str, name: str, value: Any) -> None:
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, numbers.Real):
        value = float(value)
        if not math.isfinite(value):
            raise ConfigError(f"invalid {name}: must be a finite number, got {value}")
        if "probability" in field and not 0 <= value <= 1:
            raise ConfigError(f"invalid {name}: a probability must be in [0, 1], got {value}")
        if field in _RANGES:
            low, high, closed = _RANGES[field]
            if value > high or value < low or (value == low and not closed):
                bound = f"{'>=' if closed else '>'} {low}"
                if math.isfinite(high):
                    bound += f" and <= {high}"
                raise ConfigError(f"invalid {name}: must be {bound}, got {value}")
    elif isinstance(value, list | tuple) and field == "seeds":
        for s in value:
            _check_value("seed", f"{name} entry", s)
    elif isinstance(value, list | tuple) and len(value) == 2 and all(
            isinstance(v, numbers.Real) and not isinstance(v, bool) for v in value):
        low, high = value
        if not (math.isfinite(low) and math.isfinite(high)) or low > high:
            raise ConfigError(f"invalid {name}: must be a range [low, high] of finite numbers "
                              f"with low <= high, got {list(value)}")
        if field in _POSITIVE_RANGES and low <= 0:
            raise ConfigError(f"invalid {name}: factors must be > 0, got {list(value)}")
        if "probability" in field and not (low >= 0 and high <= 1):
            raise ConfigError(f"invalid {name}: probabilities must be in [0, 1], "
                              f"got {list(value)}")


def _matches(value: Any, hint: Any) -> bool:
    if hint is Any or isinstance(hint, typing.TypeVar):
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if origin is tuple:
        if not isinstance(value, (tuple, list)):  # lists become tuples after the checks
            return False
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return all(_matches(v, args[0]) for v in value)
        return len(args) == len(value) and all(_matches(v, a) for v, a in zip(value, args))
    if origin is not None:
        return isinstance(value, origin)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def _describe(hint: Any) -> str:
    if hint is float:
        return "a number"
    if hint is int:
        return "an integer"
    if hint is str:
        return "a string"
    if hint is bool:
        return "true or false"
    origin = typing.get_origin(hint)
    if origin is tuple:
        return "a list"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(h) for h in typing.get_args(hint) if h is not type(None)) \
            + " (or unset)"
    return getattr(hint, "__name__", str(hint))


def reject_unknown(cls: type, d: dict[str, Any], what: str) -> None:
    """Refuse keys that are not fields of the dataclass ``cls`` (a typo in a config file)."""
    unknown = sorted(set(d) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise ConfigError(f"unknown {what} settings: {', '.join(unknown)}")
