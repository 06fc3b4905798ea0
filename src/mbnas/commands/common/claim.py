"""The config a run folder was started with: written once (``config.yaml``), compared
setting by setting on every resume, so a folder never mixes two settings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from mbnas.errors import ConfigError
from mbnas.io import atomic_write_text


def one_line(exc: BaseException) -> str:
    """An error's text on one line (YAML's errors span several)."""
    return " ".join(str(exc).split())


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, name + "."))
        else:
            out[name] = list(v) if isinstance(v, tuple) else v
    return out


def config_differences(old: dict[str, Any], new: dict[str, Any],
                       ignore: tuple[str, ...] = (), grow: tuple[str, ...] = ()) -> list[str]:
    """Lines ``setting: old -> new`` for every setting that differs.

    Settings in ``ignore`` may change; numbers in ``grow`` may become larger (a search's
    budget: a larger one extends it), never smaller.
    """
    a, b = flatten(old), flatten(new)
    lines = []
    for key in sorted(set(a) | set(b)):
        if any(key == i or key.startswith(i + ".") for i in ignore):
            continue
        before, after = a.get(key, "<unset>"), b.get(key, "<unset>")
        if key in grow and _is_number(before) and _is_number(after):
            if after < before:
                lines.append(f"{key}: {before!r} -> {after!r} (it may grow, to extend the "
                             "run, but not shrink)")
            continue
        if before != after:
            lines.append(f"{key}: {before!r} -> {after!r}")
    return lines


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def claim_config(path: Path, config: dict[str, Any], ignore: tuple[str, ...] = (),
                 upgrade: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                 grow: tuple[str, ...] = ()) -> bool:
    """Write the resolved config into a new folder's ``path``, or check it against the
    one there.

    Returns True when the folder already held this config (a resume); the file then
    holds the new config. Settings in ``ignore`` (where to run, not what to compute) may
    change between runs, and those in ``grow`` may become larger (a search's budget);
    ``upgrade`` turns an older version's saved config into today's form before the
    comparison.
    """
    path = Path(path)
    if path.exists():
        try:
            old = yaml.safe_load(path.read_text()) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not readable YAML ({one_line(exc)})") from None
        if not isinstance(old, dict):
            raise ConfigError(f"{path}: not a mapping of settings; restore it or choose "
                              "another --out")
        if upgrade is not None:
            old = upgrade(old)
        diffs = config_differences(old, config, ignore, grow)
        if diffs:
            raise ConfigError(
                f"{path}: this run folder was started with other settings; resume it with "
                "the same settings or choose another --out. Differences: " + "; ".join(diffs)
            )
        atomic_write_text(path, yaml.safe_dump(config, sort_keys=True))
        return True
    atomic_write_text(path, yaml.safe_dump(config, sort_keys=True))
    return False
