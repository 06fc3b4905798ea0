"""`mbnas demo` (what `make demo` runs): phantom data and a short real search on the CPU.

It writes a small synthetic spleen-like CT dataset, checks it, runs a local search of the
MB-NAS space starting from the U-Net preset with a shortened quick protocol, and compares
the best architecture found with the U-Net preset (the search's first evaluation).

Sized to finish in about two minutes on a quiet 2-core machine: fewer cases, folds and
epochs than ``--protocol quick`` (:data:`DEMO_SETTINGS`), the threads of each run from the
CPUs the process may use (:mod:`mbnas.training.cpus`). The search itself is the real one
(the paper's space and local search, every candidate trained and scored on held-out
cases); only its size is small. After the first evaluation it prints an ETA for the rest.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from mbnas.commands.common.live import SearchProgress
from mbnas.commands.common.runfolder import RunFolder
from mbnas.commands.demo.settings import DemoSettings
from mbnas.commands.search.run import SearchConfig, run_search
from mbnas.errors import DatasetError
from mbnas.progress import format_seconds
from mbnas.reporting.noise import difference_text
from mbnas.spaces.mbnas import Genotype, architecture_from_dict
from mbnas.spaces.registry import space_definition
from mbnas.training.protocol import get_protocol


def demo_cache_dir(out: Path, given: str | None) -> Path:
    """``--cache``, else ``$MBNAS_CACHE``, else ``OUT/cache`` (the demo stays in one folder)."""
    if given:
        return Path(given).resolve()
    env = os.environ.get("MBNAS_CACHE")
    return Path(env).resolve() if env else (out / "cache").resolve()


class _Eta:
    """Prints one ETA line after the first evaluation, from how long it took."""

    def __init__(self, console: Console, budget: int, progress: SearchProgress) -> None:
        self.console, self.budget, self.progress = console, budget, progress
        self.started = time.perf_counter()
        self.printed = False

    def __call__(self, strategy: Any, results: list[Any]) -> None:
        self.progress.evaluation_done(strategy, results)
        done = strategy.n_evaluated
        if self.printed or done == 0:
            return
        self.printed = True
        per_eval = (time.perf_counter() - self.started) / done
        left = per_eval * max(self.budget - done, 0)
        finish = time.strftime("%H:%M:%S", time.localtime(time.time() + left))
        self.console.print(f"ETA: {format_seconds(left)} for the remaining "
                           f"{self.budget - done} evaluation(s), done at about {finish} "
                           f"({format_seconds(per_eval)} per evaluation)")


def run_demo(out: Path, settings: DemoSettings | None = None,
             console: Console | None = None) -> dict:
    """Run the demo into ``out``; returns the numbers it printed."""
    from mbnas.data import check_dataset, make_phantom
    from mbnas.training.device import describe_device

    s = settings or DemoSettings()
    console = console or Console(soft_wrap=True)  # paths stay whole, to copy
    started = time.perf_counter()
    data_dir = out / "phantom_spleen"
    if not (data_dir / "dataset.json").exists():
        console.print(f"writing a phantom spleen CT dataset ({s.cases} cases) to {data_dir}")
        make_phantom(data_dir, task="spleen", n_cases=s.cases, seed=s.seed)
    errors = [p for p in check_dataset(data_dir) if p.severity == "error"]
    if errors:
        raise DatasetError(f"{data_dir}: the phantom failed its own check: {errors[0]}")
    protocol = get_protocol("quick", epochs=s.epochs, folds=s.folds)
    size = f"{protocol.image_size}px"
    if space_definition(s.space).spatial_dims == 3:
        from mbnas.commands.demo.settings import ITERATIONS_3D, OVERLAP_3D, PATCH_3D
        from mbnas.training.volume import VolumeConfig

        protocol = get_protocol("quick", epochs=s.epochs, folds=s.folds, batch_size=2,
                                volume=VolumeConfig(patch_size=PATCH_3D,
                                                    iterations_per_epoch=ITERATIONS_3D,
                                                    overlap=OVERLAP_3D))
        size = f"{'x'.join(map(str, PATCH_3D))} voxel patches"
    config = SearchConfig(
        # The default strategy: local search from the U-Net preset, in the space asked for
        # (the paper's MB-NAS space unless --space).
        data_dir=str(data_dir.resolve()), space=s.space, budget=s.budget, seed=s.seed,
        start="unet", protocol=protocol, cache_dir=str(demo_cache_dir(out, s.cache_dir)),
        threads=s.threads,
    )
    console.print(f"local search of the {space_definition(s.space).display_name} space, "
                  f"{s.budget} evaluations, quick protocol "
                  f"shortened for the demo ({protocol.folds}-fold CV x "
                  f"{len(protocol.seeds)} seed, {protocol.epochs} epochs, "
                  f"{size}, {protocol.base_channels} base channels)")
    console.print(describe_device(config.device, config.protocol, config.threads))
    console.print(f"preprocessing cache: {config.cache_dir}")
    with SearchProgress(s.budget, console=Console(stderr=True)) as progress:
        eta = _Eta(console, s.budget, progress)
        outcome = run_search(config, out / "search", hooks=progress, on_evaluation=eta)
    folder = RunFolder(outcome.folder)
    log = folder.read_search_log()
    unet_score = log[0]["score"] if log else math.nan
    unet_se = log[0].get("se") if log else None
    best_se = next((e.get("se") for e in log if e.get("score") == outcome.best_score), None)
    console.print(f"U-Net preset score:   {unet_score:.4f}{_se(unet_se)}")
    console.print(f"best found score:     {outcome.best_score:.4f}{_se(best_se)} "
                  f"({difference_text(outcome.best_score - unet_score, best_se, unet_se)} "
                  "vs the U-Net preset)")
    drawing = None
    if outcome.best:
        from mbnas.spaces.mbnas.draw import draw_genotype

        best = architecture_from_dict(outcome.best)
        assert isinstance(best, Genotype), "the demo searches genotypes"
        console.print("best network (built with "
                      f"{protocol.base_channels} base channels in the demo):\n"
                      f"{best.describe(base=protocol.base_channels)}")
        drawing, _ = draw_genotype(best, folder.path / "best",
                                   title=f"best network of the demo, {outcome.best_score:.4f}")
        console.print(f"best network drawing: {drawing}")
    console.print(f"run folder:           {outcome.folder} (best.json, search_log.jsonl, "
                  "progress.png)")
    console.print(f"demo took {format_seconds(time.perf_counter() - started)}")
    console.print(f"next: mbnas report {outcome.folder} --out {out / 'report'}   "
                  "(an HTML page of this search)")
    return {"unet": unet_score, "best": outcome.best_score, "folder": str(outcome.folder),
            "drawing": str(drawing) if drawing else None}


def _se(se: float | None) -> str:
    return "" if se is None else f" ± {se:.4f} SE"
