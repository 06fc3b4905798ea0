"""The search checkpoint (``search_state.json``) and the checks that make a resume safe.

The checkpoint holds the strategy's state and, beside it, the protocol key and the
search settings it was made under. A resume compares them with the current settings and
the store, so an edited or deleted ``config.yaml`` can never mix two protocols in one
search.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mbnas.commands.common.claim import config_differences
from mbnas.errors import ConfigError
from mbnas.io import atomic_write_json
from mbnas.store import ResultStore
from mbnas.strategies.registry import upgrade_settings


def _settings(config: Any, runtime: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in config.to_dict().items() if k not in runtime}


def save_state(path: Path, state: dict[str, Any], config: Any, runtime: tuple[str, ...]
               ) -> None:
    """Write the checkpoint (``path``: the run folder's ``search_state.json``) atomically:
    the strategy's state (``state_dict()``), the protocol key and settings."""
    atomic_write_json(path, {
        **state,
        "run": {"protocol_key": config.protocol.key, "settings": _settings(config, runtime)},
    })


def load_state(path: Path, config: Any, store: ResultStore, runtime: tuple[str, ...],
               grow: tuple[str, ...] = (), also: Sequence[str] = ()
               ) -> dict[str, Any] | None:
    """The strategy state to resume from (``path``: the checkpoint), or None for a fresh
    start. Settings in ``grow`` may be larger now than when it was made (the budget).

    ``also``: protocol keys the store may hold besides the search's own (the low
    rungs of ``--fidelity``).

    Raises:
        ConfigError: for an unreadable checkpoint, one made under other settings, or a
            store that holds runs of another protocol.
    """
    key = config.protocol.key
    others = [p for p in store.protocols() if p != key and p not in also]
    if others:
        raise ConfigError(
            f"{store.path}: holds runs of protocol {', '.join(others)}, but this search "
            f"uses protocol {key}; config.yaml was edited or replaced. Restore it, or "
            "choose another --out")
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(state, dict):
            raise ValueError("not a JSON object")
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ConfigError(f"{path}: not a readable search checkpoint ({exc}); delete it to "
                          "replay the search from the store, which trains nothing again"
                          ) from None
    run = state.pop("run", None)
    if isinstance(run, dict):
        if run.get("protocol_key") != key:
            raise ConfigError(f"{path}: made under protocol {run.get('protocol_key')}, not "
                              f"{key}; config.yaml was edited: restore it or choose another "
                              "--out")
        saved = upgrade_settings(run.get("settings") or {})  # an older version's names
        diffs = config_differences(saved, _settings(config, runtime), grow=grow)
        if diffs:
            raise ConfigError(f"{path}: made under other search settings ("
                              + "; ".join(diffs) + "); restore config.yaml or choose "
                              "another --out")
    return state
