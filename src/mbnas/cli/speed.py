"""Flags and messages about where and how fast training runs (used by search, evaluate, train).

Not a command group: the training commands call these small helpers.
"""

from __future__ import annotations

import argparse
import time
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


def timed_estimate(data_dir: str, networks: Sequence[tuple[str, Any]], protocol: Any,
                   device: str, n_evaluations: int, threads: int | None, steps: int = 3,
                   other_steps: Any = None) -> Any:
    """An :class:`~mbnas.commands.common.estimate.Estimate`, timed with ``threads`` CPU
    threads on a batch of random slices (the slice count from the scans' headers, so no
    preprocessing pass); ``other_steps(size, rates)`` times the job's other steps."""
    import dataclasses

    import torch

    from mbnas.commands.common.estimate import dataset_size, estimate

    size = dataset_size(data_dir)
    before = torch.get_num_threads()
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        est = estimate(size, networks, protocol, device, n_evaluations, steps)
        if other_steps is not None:
            est = dataclasses.replace(est, steps=tuple(other_steps(size, est.rates)))
        return est
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
    return timed_estimate(config.data_dir, networks[:1] if first_only else networks,
                          config.protocol, config.device, config.budget, config.threads, steps)


def guard_search(config: Any) -> None:
    """Announce the device of a search, refusing the paper protocol on a CPU."""
    from mbnas.commands.common.preflight import check_device

    check_device(config.device, config.executor)  # a missing GPU: one line, before anything
    refuse_paper_on_cpu(config.device, config.protocol,
                        lambda: search_estimate(config, steps=1, first_only=True).total_hours())
    announce(config.device, config.protocol, config.threads,
             getattr(config, "runs_per_device", 1))


def evaluation_networks(config: Any) -> list[tuple[str, Any]]:
    """Every distinct network an evaluation trains: the best network of each search run,
    the baselines, and the U-Net preset it adds at a narrow width (one entry per network
    key: runs are trained once per key)."""
    from mbnas.commands.evaluate.run import evaluation_models
    from mbnas.spaces.mbnas import architecture_from_dict

    distinct = {m.arch_key: m for m in reversed(evaluation_models(config))}
    return [(m.name, architecture_from_dict(m.architecture))
            for m in reversed(list(distinct.values()))]


def evaluate_estimate(config: Any, threads: int | None, steps: int = 3,
                      other_steps: bool = True) -> Any:
    """The estimate of an evaluation: its training runs, and (``other_steps``) the network
    costs and the metrics on the original grid, each timed on one network and one case."""
    from mbnas.commands.evaluate.original_grid import time_case_metrics

    networks = evaluation_networks(config)
    protocol = config.protocol

    def other(size: Any, rates: Any) -> list[tuple[str, float]]:
        from mbnas.commands.common.model_cost import measure_cost

        t0 = time.perf_counter()
        measure_cost(networks[0][1].to_dict(), size.in_channels, size.n_classes,
                     protocol.base_channels, protocol.image_size, config.device)
        cost = (time.perf_counter() - t0) * len(networks)
        cases = len(networks) * len(protocol.seeds) * size.n_cases
        predict = size.n_slices / size.n_cases / min(r.val_images_per_s for r in rates)
        once, per_case = time_case_metrics(config.data_dir, protocol)
        return [(f"network costs ({len(networks)} networks)", cost),
                (f"metrics on the original grid ({cases} cases)",
                 once + (per_case + predict) * cases)]

    return timed_estimate(config.data_dir, networks, protocol, config.device, len(networks),
                          threads, steps, other if other_steps else None)


def after_runs_seconds(config: Any) -> float:
    """Seconds of an evaluation's metrics on the original grid (every case of every
    distinct network and seed, timed on the first case), which follow its runs: the
    evaluation's time left counts them too."""
    from mbnas.commands.common.estimate import dataset_size
    from mbnas.commands.evaluate.original_grid import time_case_metrics

    size = dataset_size(config.data_dir)
    cases = len(evaluation_networks(config)) * len(config.protocol.seeds) * size.n_cases
    return time_case_metrics(config.data_dir, config.protocol)[1] * cases


def guard_evaluate(config: Any, threads: int | None, runs_per_device: int) -> None:
    """Announce the device of an evaluation, refusing the paper protocol on a CPU."""
    from mbnas.commands.common.preflight import check_device

    check_device(config.device, config.executor)  # a missing GPU: one line, before anything
    refuse_paper_on_cpu(config.device, config.protocol, lambda: evaluate_estimate(
        config, threads, steps=1, other_steps=False).total_hours())
    announce(config.device, config.protocol, threads, runs_per_device)


def print_estimate(estimate: Any, what: str) -> int:
    for line in estimate.lines(what):
        print(line)
    return 0


__all__ = ["add_speed_arguments", "after_runs_seconds", "announce", "evaluate_estimate",
           "guard_evaluate", "guard_search", "print_estimate", "refuse_paper_on_cpu",
           "search_estimate", "timed_estimate"]
