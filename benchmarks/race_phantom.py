"""How many trainings `--race` saves, and whether the search still takes the same path.

Run as a script: ``python benchmarks/race_phantom.py [--seeds 3] [--budget 6]``. For
each seed it makes a phantom Spleen dataset, runs the same local search twice (the full
protocol, then with ``race``) and prints the trainings each needed, the fraction saved,
and whether the raced search evaluated the same architectures in the same order and
ended with the same best network as the full one.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from mbnas.commands.search.run import SearchConfig, run_search
from mbnas.data import make_phantom
from mbnas.store import ResultStore
from mbnas.training.protocol import get_protocol


def search(data: Path, out: Path, seed: int, budget: int, race: bool, protocol) -> dict:
    config = SearchConfig(data_dir=str(data), budget=budget, seed=seed, protocol=protocol,
                          device="cpu", cache_dir=str(out.parent / "cache"), race=race,
                          threads=1)
    run_search(config, out)
    log = [json.loads(x) for x in (out / "search_log.jsonl").read_text().splitlines()]
    with ResultStore(out / "store.sqlite") as store:
        trainings = len(list(store.runs()))
    best = json.loads((out / "best.json").read_text())["arch_key"]
    return {"keys": [e["arch_key"] for e in log], "best": best, "trainings": trainings,
            "raced": sum(1 for e in log if "raced" in e)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="phantom and search seeds")
    parser.add_argument("--budget", type=int, default=6, help="evaluations per search")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    protocol = get_protocol("quick", epochs=args.epochs, folds=args.folds, seeds=[0],
                            image_size=32, base_channels=4, batch_size=16)
    n_runs = protocol.folds * len(protocol.seeds)
    print(f"local search, budget {args.budget}, {n_runs} runs per evaluation, phantom "
          f"Spleen 6 cases at 32x32, {args.epochs} epochs")
    print(f"{'seed':>4} {'full':>6} {'raced':>6} {'saved':>6} {'discarded':>10} "
          f"{'same path':>10} {'same best':>10}")
    total_full = total_raced = 0
    with tempfile.TemporaryDirectory(prefix="race-phantom-") as tmp:
        for seed in range(args.seeds):
            root = Path(tmp) / f"seed{seed}"
            data = make_phantom(root / "Task09_Spleen", "spleen", n_cases=6, seed=seed,
                                shape=(48, 48, 12))
            full = search(data, root / "full", seed, args.budget, False, protocol)
            raced = search(data, root / "raced", seed, args.budget, True, protocol)
            total_full += full["trainings"]
            total_raced += raced["trainings"]
            saved = 1 - raced["trainings"] / full["trainings"]
            print(f"{seed:4d} {full['trainings']:6d} {raced['trainings']:6d} {saved:6.0%} "
                  f"{raced['raced']:10d} {str(full['keys'] == raced['keys']):>10} "
                  f"{str(full['best'] == raced['best']):>10}", flush=True)
    print(f"trainings saved over all seeds: {1 - total_raced / total_full:.0%} "
          f"({total_full - total_raced} of {total_full}; the raced searches trained "
          f"{total_raced})")


if __name__ == "__main__":
    main()
