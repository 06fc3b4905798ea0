"""A small two-objective search (Dice, MACs) under a MAC limit on a phantom, on the CPU.

Prints the Pareto front (the archive of Pareto local search), its hypervolume (Dice up,
MACs down, reference point Dice 0 and MACs = the limit), and how many trainings the
limit saved: each architecture turned away by the limit before training would have cost
folds x seeds training runs had the search evaluated it.

    python benchmarks/pareto_phantom.py [--budget 8] [--out /tmp/pareto_phantom]

The limit is set to the MACs of the U-Net preset at the protocol's size, so the search
has to find networks cheaper than the U-Net.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from mbnas.commands.common.runfolder import RunFolder
from mbnas.commands.search.cost import CostOracle
from mbnas.commands.search.run import SearchConfig, run_search
from mbnas.data import make_phantom
from mbnas.reporting.front import genotype_text
from mbnas.spaces.mbnas import preset
from mbnas.training.protocol import get_protocol


def hypervolume_2d(points: list[tuple[float, float]], ref: tuple[float, float]) -> float:
    """Area dominated by ``points`` (Dice, MACs): Dice above ref[0], MACs below ref[1]."""
    area, best_dice = 0.0, ref[0]
    for dice, macs in sorted(points, key=lambda p: p[1]):  # cheapest first
        if dice > best_dice and macs < ref[1]:
            area += (dice - best_dice) * (ref[1] - macs)
            best_dice = dice
    return area


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=8)
    parser.add_argument("--out", help="run folder (default: a temporary folder)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pareto_phantom_"))
    out = Path(args.out) if args.out else work / "run"
    data = make_phantom(work / "Task09_Spleen", "spleen", n_cases=6, seed=0, shape=(48, 48, 12))
    protocol = get_protocol("quick", epochs=2, folds=2, seeds=[0], image_size=32,
                            base_channels=4, batch_size=16)
    oracle = CostOracle(1, 2, protocol.base_channels, protocol.image_size)
    limit = oracle.figures(preset("unet"), ("macs",))["macs"]
    config = SearchConfig(data_dir=str(data), budget=args.budget, seed=0, start="random",
                          protocol=protocol, objectives=("dice", "macs"), max_macs=limit,
                          cache_dir=str(work / "cache"), threads=1)
    t0 = time.perf_counter()
    outcome = run_search(config, out)
    seconds = time.perf_counter() - t0
    log = [json.loads(x) for x in (out / "search_log.jsonl").read_text().splitlines()]
    skipped = [e for e in log if "skipped" in e]
    evaluated = [e for e in log if "skipped" not in e]
    front = RunFolder(out).read_front()
    runs_per_eval = protocol.folds * len(protocol.seeds)
    print(f"search: {outcome.n_evaluated} evaluations in {seconds:.0f} s, limit macs <= "
          f"{limit / 1e6:.1f}M (the U-Net preset at {protocol.image_size}x"
          f"{protocol.image_size}, base {protocol.base_channels} channels)")
    print(f"front ({len(front['members'])} of {len(evaluated)} evaluated networks):")
    print(f"  {'search Dice':>11} {'MMAC':>7} {'params M':>9}  genotype")
    for m in front["members"]:
        f = m["figures"]
        print(f"  {m['score']:11.4f} {f['macs'] / 1e6:7.2f} {f['params'] / 1e6:9.4f}  "
              f"{genotype_text(m['genotype'])}")
    points = [(m["score"], m["figures"]["macs"]) for m in front["members"]]
    print(f"hypervolume (Dice x MMAC below the limit, reference (0, {limit / 1e6:.1f}M)): "
          f"{hypervolume_2d(points, (0.0, limit)) / 1e6:.4f}")
    neighbours = [e for e in skipped if e["after"]]  # not the draws of the random start
    print(f"architectures over the limit, never trained: {len(skipped)} "
          f"({len(skipped) - len(neighbours)} random-start draws, {len(neighbours)} "
          f"neighbours local search would have trained = {len(neighbours) * runs_per_eval} "
          f"training runs saved, {len(neighbours) / max(1, len(neighbours) + len(evaluated)):.0%}"
          " of the neighbours proposed)")
    if not args.out:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
