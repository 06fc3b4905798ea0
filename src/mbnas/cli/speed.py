"""Flags and messages about where and how fast training runs (used by search, evaluate, train).

Not a command group: the training commands call these small helpers.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from mbnas.errors import ConfigError


def add_speed_arguments(p: argparse.ArgumentParser, race: bool = False) -> None:
    p.add_argument("--estimate", action="store_true",
                   help="time a few training steps and print what the whole job will "
                        "cost; writes nothing, trains nothing else")
    p.add_argument("--runs-per-device", type=int, dest="runs_per_device",
                   help="train up to N runs at once on this machine's device through a "
                        "local pool of worker processes (default 1)")
    p.add_argument("--fuse", action="store_true", default=None,
                   help="train the seeds of one architecture and fold as one fused "
                        "network (results equal separate runs within fp32 tolerance)")
    if race:
        p.add_argument("--race", action="store_true", default=None,
                       help="train a candidate fold by fold and drop it once it cannot "
                            "beat the current architecture (off in the paper presets)")
        p.add_argument("--fidelity", metavar="RUNGS",
                       help="multi-fidelity probing, e.g. 0.25,1: train each probed option "
                            "first for that fraction of the epochs on one fold and seed, "
                            "and only those that beat the current network's score there "
                            "(the best half at most) in full (off in the paper presets)")


def announce(device: str, protocol: Any, threads: int | None, runs_per_device: int = 1
             ) -> None:
    """Print the device, precision and threads of the training about to start."""
    from mbnas.training.device import describe_device

    print(describe_device(device, protocol, threads, runs_per_device), flush=True)


def refuse_paper_on_cpu(device: str, protocol: Any, estimate_hours: Any) -> None:
    """Refuse a paper-scale protocol on the CPU unless ``--device cpu`` was explicit.

    ``estimate_hours`` is called only when refusing (it times a few steps), and returns
    the (low, high) estimated hours of the job.
    """
    from mbnas.training.device import needs_cpu_consent

    if not needs_cpu_consent(device, protocol):
        return
    lo, hi = estimate_hours()
    span = _days(lo) if lo == hi else f"{_days(lo)} to {_days(hi)}"
    raise ConfigError(
        f"the paper protocol would run on the CPU (no CUDA device found): estimated "
        f"{span}; pass --device cpu to run it anyway, or --protocol quick to try the tool")


def _days(hours: float) -> str:
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def timed_estimate(data_dir: str, cache_dir: str | None, networks: Sequence[tuple[str, Any]],
                   protocol: Any, device: str, n_evaluations: int, threads: int | None,
                   steps: int = 3) -> Any:
    """An :class:`~mbnas.commands.common.estimate.Estimate`, timed with ``threads`` CPU threads."""
    import torch

    from mbnas.commands.common.estimate import estimate, slice_data

    data = slice_data(data_dir, cache_dir, protocol.image_size)
    before = torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        return estimate(data, networks, protocol, device, n_evaluations, steps)
    finally:
        torch.set_num_threads(before)


def search_estimate(config: Any, steps: int = 3, first_only: bool = False) -> Any:
    from mbnas.commands.common.estimate import search_networks

    networks = search_networks(config.space, config.start, config.max_depth, config.seed)
    if config.protocol.volume is not None:  # 3D: plan on the headers, time patches
        import torch

        from mbnas.commands.common.estimate3d import estimate_3d
        from mbnas.commands.common.volumes import plan_protocol
        from mbnas.spaces.mbnas import get_space

        levels = get_space(config.space, config.max_depth, config.block).max_depth
        protocol = plan_protocol(config.protocol, config.data_dir, levels)
        before = torch.get_num_threads()
        try:
            if config.threads is not None:
                torch.set_num_threads(config.threads)
            return estimate_3d(config.data_dir, networks[:1] if first_only else networks,
                               protocol, config.device, config.budget, steps)
        finally:
            torch.set_num_threads(before)
    return timed_estimate(config.data_dir, config.cache_dir,
                          networks[:1] if first_only else networks, config.protocol,
                          config.device, config.budget, config.threads, steps)


def guard_search(config: Any) -> None:
    """Announce the device of a search, refusing the paper protocol on a CPU."""
    from mbnas.commands.common.preflight import check_device

    check_device(config.device, config.executor)  # a missing GPU: one line, before anything
    refuse_paper_on_cpu(config.device, config.protocol,
                        lambda: search_estimate(config, steps=1, first_only=True).total_hours())
    announce(config.device, config.protocol, config.threads,
             getattr(config, "runs_per_device", 1))


def evaluation_networks(config: Any) -> list[tuple[str, Any]]:
    """Every model of an evaluation: the best network of each search run, the baselines."""
    from mbnas.commands.common.search_runs import BASELINE_NAMES, read_search_runs
    from mbnas.spaces.mbnas import Baseline, architecture_from_dict

    models = [(r.name, architecture_from_dict(r.genotype))
              for r in read_search_runs(config.run_dirs)]
    return models + [(BASELINE_NAMES.get(b, b), Baseline(b)) for b in config.baselines]


def evaluate_estimate(config: Any, threads: int | None, steps: int = 3) -> Any:
    networks = evaluation_networks(config)
    return timed_estimate(config.data_dir, config.cache_dir, networks, config.protocol,
                          config.device, len(networks), threads, steps)


def guard_evaluate(config: Any, threads: int | None, runs_per_device: int) -> None:
    """Announce the device of an evaluation, refusing the paper protocol on a CPU."""
    from mbnas.commands.common.preflight import check_device

    check_device(config.device, config.executor)  # a missing GPU: one line, before anything
    refuse_paper_on_cpu(config.device, config.protocol,
                        lambda: evaluate_estimate(config, threads, steps=1).total_hours())
    announce(config.device, config.protocol, threads, runs_per_device)


def print_estimate(estimate: Any, what: str) -> int:
    for line in estimate.lines(what):
        print(line)
    return 0


__all__ = ["add_speed_arguments", "announce", "evaluate_estimate", "guard_evaluate",
           "guard_search", "print_estimate",
           "refuse_paper_on_cpu", "search_estimate", "timed_estimate"]
