"""`--help` in groups (data, search, protocol, execution, output), with every default shown.

One helper for every command, so a command adding flags only names them in a group.
Defaults that only a config class knows (`mbnas search` resolves its settings after
reading ``--config``, so its flags default to None) are read lazily, when help is shown:
the config class may import torch, which plain parsing must not.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["COMMON_GROUPS", "HelpParser", "group_help"]

#: Stands for the ``--max-<name>`` flag of every registered cost figure (read when help
#: is grouped, so a plugin's figure is listed with the others).
LIMITS = "<cost limits>"

#: Group title -> flags (argparse ``dest``) in it; a flag a command lacks is skipped.
COMMON_GROUPS: dict[str, tuple[str, ...]] = {
    "data": ("data_dir", "run_dirs", "splits", "sites_file", "group_by", "cache_dir",
             "external", "cases"),
    "search": ("space", "strategy", "strategy_option", "budget", "seed", "start", "max_depth",
               "objectives", LIMITS, "latency_device",
               "race", "repeats", "arch", "fold", "baselines", "front", "split_seed"),
    "protocol": ("protocol", "epochs", "folds", "seeds", "batch_size", "image_size", "lr",
                 "intensity", "normalisation"),
    "execution": ("device", "executor", "threads", "runs_per_device", "fuse", "address",
                  "cpus_per_run", "gpus_per_run", "estimate", "retry_failed"),
    "output": ("out", "config", "dry_run", "verbose"),
}


class HelpParser(argparse.ArgumentParser):
    """An argument parser whose help adds defaults from ``defaults_from`` when shown."""

    defaults_from: Callable[[], Mapping[str, Any]] | None = None

    def format_help(self) -> str:
        if self.defaults_from is not None:
            show_defaults(self, self.defaults_from())
            self.defaults_from = None
        return super().format_help()


def _shown(value: Any) -> bool:
    if value is None or value is False or value is argparse.SUPPRESS:
        return False
    return not (isinstance(value, (str, list, tuple, dict)) and not value)


def show_defaults(parser: argparse.ArgumentParser, defaults: Mapping[str, Any]) -> None:
    """Append ``(default: X)`` to each flag's help that does not say its default yet."""
    for action in parser._actions:
        if not action.option_strings or action.help in (None, argparse.SUPPRESS):
            continue
        value = defaults.get(action.dest, action.default)
        if _shown(value) and "default" not in action.help.lower():
            if isinstance(value, (list, tuple)):
                value = ",".join(map(str, value))
            action.help += f" (default: {value})"


def group_help(parser: argparse.ArgumentParser,
               groups: Mapping[str, Sequence[str]] = COMMON_GROUPS,
               defaults: Callable[[], Mapping[str, Any]] | None = None) -> None:
    """Move a command's flags into titled groups and show their defaults.

    Call it after every flag is added. ``defaults``: a callable giving defaults that the
    parser does not hold (read when help is shown; see the module docstring).
    """
    from mbnas.costs.registry import limit_figures

    actions = {a.dest: a for a in parser._actions}
    limits = [f.limit_field for f in limit_figures().values()]
    for title, listed in groups.items():
        dests = [d for entry in listed for d in (limits if entry == LIMITS else [entry])]
        members = [actions[d] for d in dests if d in actions and d != "help"]
        if not members:
            continue
        group = parser.add_argument_group(title)
        for action in members:
            for other in parser._action_groups:
                if action in other._group_actions:
                    other._group_actions.remove(action)
            group._group_actions.append(action)
    show_defaults(parser, {})
    if defaults is not None and isinstance(parser, HelpParser):
        parser.defaults_from = defaults
