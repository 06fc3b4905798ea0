"""`mbnas demo` (what `make demo` runs): phantom data and a short real search on the CPU.

It writes a small synthetic spleen-like CT dataset, checks it, runs a local search of the
MB-NAS space starting from the U-Net preset with the quick protocol, and compares the best
architecture found with the U-Net preset (the search's first evaluation).
"""

from __future__ import annotations

import math
from pathlib import Path

from rich.console import Console

from mbnas.driver.progress import SearchProgress
from mbnas.driver.runfolder import RunFolder
from mbnas.driver.search import SearchConfig, run_search
from mbnas.engine.config import get_protocol
from mbnas.errors import DatasetError
from mbnas.space import architecture_from_dict


def run_demo(out: Path, budget: int = 8, cases: int = 12, seed: int = 0) -> dict:
    """Run the demo into ``out``; returns the numbers it printed."""
    from mbnas.data import check_dataset, make_phantom

    console = Console()
    data_dir = out / "phantom_spleen"
    if not (data_dir / "dataset.json").exists():
        console.print(f"writing a phantom spleen CT dataset ({cases} cases) to {data_dir}")
        make_phantom(data_dir, task="spleen", n_cases=cases, seed=seed)
    errors = [p for p in check_dataset(data_dir) if p.severity == "error"]
    if errors:
        raise DatasetError(f"{data_dir}: the phantom failed its own check: {errors[0]}")
    config = SearchConfig(
        # The default space and strategy: the paper's MB-NAS space, local search.
        data_dir=str(data_dir.resolve()), budget=budget,
        seed=seed, start="unet", protocol=get_protocol("quick"),
        cache_dir=str((out / "cache").resolve()),
    )
    console.print(f"local search of the MB-NAS space, {budget} evaluations, quick protocol "
                  f"({config.protocol.folds}-fold CV x {len(config.protocol.seeds)} seed, "
                  f"{config.protocol.epochs} epochs, {config.protocol.image_size}px)")
    from mbnas.engine.device import describe_device

    console.print(describe_device(config.device, config.protocol, config.threads))
    with SearchProgress(budget, console=Console(stderr=True)) as progress:
        outcome = run_search(config, out / "search", hooks=progress,
                             on_evaluation=progress.evaluation_done)
    log = RunFolder(outcome.folder).read_search_log()
    unet_score = log[0]["score"] if log else math.nan
    best = architecture_from_dict(outcome.best) if outcome.best else None
    console.print(f"U-Net preset score:   {unet_score:.4f}")
    console.print(f"best found score:     {outcome.best_score:.4f} "
                  f"({outcome.best_score - unet_score:+.4f} vs U-Net)")
    if best is not None:
        console.print("best architecture (built with "
                      f"{config.protocol.base_channels} base channels in the demo):\n"
                      f"{best.describe(base=config.protocol.base_channels)}")
    console.print(f"run folder:           {outcome.folder} (best.json, search_log.jsonl, "
                  "progress.png)")
    return {"unet": unet_score, "best": outcome.best_score, "folder": str(outcome.folder)}
