"""A run folder: the resolved config, a lock against a second driver, and config comparison.

A search or evaluation writes everything into one folder. Running the same command again
on that folder resumes it; running it with other settings is refused with the list of
settings that differ, so a resumed run can never mix results of two configurations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mbnas.errors import ConfigError
from mbnas.io import atomic_write_text
from mbnas.store.lock import FileLock


class RunLock:
    """An exclusive, non-blocking lock on ``folder/.lock``, held while the driver runs.

    The store's :class:`~mbnas.store.lock.FileLock`: the operating system releases it
    when the process dies (even by SIGKILL), so a killed run never leaves a stale lock.
    """

    def __init__(self, folder: Path) -> None:
        self._lock = FileLock(Path(folder) / ".lock")
        self.path = self._lock.path

    def __enter__(self) -> RunLock:
        holder = self._lock.acquire()
        if holder is not None:
            raise ConfigError(
                f"{self.path.parent}: another mbnas process (pid {holder}) is using this run "
                "folder; wait for it to finish or choose another --out"
            )
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


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
                       ignore: tuple[str, ...] = ()) -> list[str]:
    """Lines ``setting: old -> new`` for every setting that differs."""
    a, b = flatten(old), flatten(new)
    lines = []
    for key in sorted(set(a) | set(b)):
        if any(key == i or key.startswith(i + ".") for i in ignore):
            continue
        if a.get(key, "<unset>") != b.get(key, "<unset>"):
            lines.append(f"{key}: {a.get(key, '<unset>')!r} -> {b.get(key, '<unset>')!r}")
    return lines


def claim_config(folder: Path, config: dict[str, Any], ignore: tuple[str, ...] = (),
                 name: str = "config.yaml") -> bool:
    """Write the resolved config into a new folder, or check it against an existing one.

    Returns True when the folder already held this config (a resume). Settings in
    ``ignore`` (where to run, not what to compute) may change between runs.
    """
    path = Path(folder) / name
    if path.exists():
        try:
            old = yaml.safe_load(path.read_text()) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not readable YAML ({exc})") from None
        if not isinstance(old, dict):
            raise ConfigError(f"{path}: not a mapping of settings; restore it or choose "
                              "another --out")
        diffs = config_differences(old, config, ignore)
        if diffs:
            raise ConfigError(
                f"{path}: this run folder was started with other settings; resume it with "
                "the same settings or choose another --out. Differences: " + "; ".join(diffs)
            )
        atomic_write_text(path, yaml.safe_dump(config, sort_keys=True))
        return True
    atomic_write_text(path, yaml.safe_dump(config, sort_keys=True))
    return False
