"""What `--fidelity` buys: trainings, wall time, and whether the search still finds the same.

Run as a script::

    python benchmarks/fidelity.py [--data DIR] [--seeds 4] [--budget 10] [--rungs 0.25,1]

For each search seed it runs the same local search three times on one dataset (``--data``:
any dataset folder mbnas reads, e.g. the lung sample of ``mbnas sample lung-ct``; by
default a Spleen phantom): with the full protocol for every option, with ``--fidelity``,
and with ``--fidelity`` and ``--race``. It prints, per seed, the full-protocol and the
total trainings, the wall time, whether the searches evaluated the same options in the
same order (same path) and ended with the same best network, and the Spearman rank
correlation between the low-fidelity score (first rung) and the full score of every
option the plain search evaluated. A last section times fused folds against separate
runs (``mbnas.training.fused``; on the CPU it is not expected to be faster).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from scipy.stats import spearmanr

from mbnas.commands.search.run import SearchConfig, run_search
from mbnas.data import make_phantom
from mbnas.scoring.fidelity import parse_rungs, rung_protocol
from mbnas.store import ResultStore
from mbnas.training.protocol import Protocol

VARIANTS = (("plain", (), False), ("fidelity", None, False), ("fidelity+race", None, True))


def search(data: Path, out: Path, seed: int, budget: int, protocol: Protocol,
           rungs: tuple[float, ...], race: bool) -> dict[str, Any]:
    config = SearchConfig(data_dir=str(data), budget=budget, seed=seed, protocol=protocol,
                          device="cpu", cache_dir=str(out.parent / "cache"), race=race,
                          threads=1, fidelity=rungs)
    t0 = time.perf_counter()
    run_search(config, out)
    seconds = time.perf_counter() - t0
    log = [json.loads(x) for x in (out / "search_log.jsonl").read_text().splitlines()]
    low: dict[str, float] = {}
    with ResultStore(out / "store.sqlite", read_only=True) as store:
        full = store.runs(protocol_key=protocol.key)
        total = len(store.runs())
        if rungs:
            for r in store.runs(protocol_key=rung_protocol(protocol, rungs[0]).key):
                if r.status == "finished":
                    low[r.arch_key] = float(r.score)
    best = json.loads((out / "best.json").read_text())
    return {"keys": [e["arch_key"] for e in log],
            "scores": {e["arch_key"]: e["score"] for e in log},
            "moves": [e["arch_key"] for e in log if e["accepted"]],
            "best": best["arch_key"], "best_score": best["score"], "full": len(full),
            "total": total, "seconds": seconds, "low": low,
            "dropped": sum(1 for e in log if "dropped" in e)}


def fused_folds(data: Path, cache: Path, protocol: Protocol) -> str:
    """Seconds for the folds x seeds of the U-Net preset: separate runs, then fused."""
    from mbnas.data import PreprocessConfig, load_slices
    from mbnas.spaces.mbnas import preset
    from mbnas.training.fused import fusable_groups, train_fused
    from mbnas.training.runs import RunContext, RunSpec, execute_run

    slices = load_slices(data, cache, PreprocessConfig(size=protocol.image_size))
    ids = slices.case_ids
    folds = tuple(tuple(ids[f::protocol.folds]) for f in range(protocol.folds))
    ctx = RunContext(slices, folds, "cpu")
    g = preset("unet")
    specs = [RunSpec(g.to_dict(), g.key, f, s, protocol)
             for f in range(protocol.folds) for s in protocol.seeds]
    t0 = time.perf_counter()
    alone = [execute_run(s, ctx).score for s in specs]
    separate = time.perf_counter() - t0
    t0 = time.perf_counter()
    (group,) = fusable_groups(specs, folds=True)
    fused = [o.score for o in train_fused(group, ctx)]
    together = time.perf_counter() - t0
    diff = max(abs(a - b) for a, b in zip(alone, fused, strict=True))
    return (f"fused folds ({len(specs)} runs of the U-Net preset: {protocol.folds} folds x "
            f"{len(protocol.seeds)} seed(s)): separate {separate:.1f} s, fused "
            f"{together:.1f} s, ratio {separate / together:.2f}; largest score "
            f"difference {diff:.2g} (fp32/bf16 rounding)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="dataset folder (default: a phantom)")
    parser.add_argument("--seeds", type=int, default=3, help="search seeds 0..N-1")
    parser.add_argument("--budget", type=int, default=8, help="evaluations per search")
    parser.add_argument("--rungs", default="0.25,1", help="the --fidelity rungs")
    parser.add_argument("--folds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--samples-per-epoch", type=int, default=64)
    parser.add_argument("--size", type=int, default=32, help="image size")
    parser.add_argument("--lr", type=float, default=1e-2,
                        help="learning rate (1e-2: these tiny runs learn in 8 epochs)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rungs = parse_rungs(args.rungs)
    protocol = Protocol(epochs=args.epochs, folds=args.folds, seeds=(0,),
                        image_size=args.size, base_channels=4, batch_size=16,
                        samples_per_epoch=args.samples_per_epoch, score_fraction=0.25,
                        lr=args.lr)
    low = rung_protocol(protocol, rungs[0])
    rows, pooled_low, pooled_full = [], [], []
    with tempfile.TemporaryDirectory(prefix="fidelity-") as tmp:
        data = args.data or make_phantom(Path(tmp) / "Task09_Spleen", "spleen", n_cases=6,
                                         seed=0, shape=(48, 48, 12))
        print(f"local search, budget {args.budget}, {protocol.folds} folds x 1 seed, "
              f"{protocol.epochs} epochs of >= {protocol.samples_per_epoch} samples at "
              f"{protocol.image_size} px, base channels 4, lr {protocol.lr:g}; --fidelity "
              f"{args.rungs} (first rung {low.epochs} epochs, fold 0, seed 0); data {data}; "
              "1 CPU thread",
              flush=True)
        header = ("| seed | full trainings: plain / fid / fid+race | all trainings | "
                  "wall s | full trainings saved (fid, fid+race) | dropped | same path | "
                  "same best | best Dice (plain, fid) | Spearman low vs full |")
        print(header)
        print("|" + "---|" * 10)
        for seed in range(args.seeds):
            out = {name: search(data, Path(tmp) / f"s{seed}-{name}", seed, args.budget,
                                protocol, rungs if r is None else r, race)
                   for name, r, race in VARIANTS}
            plain, fid, both = out["plain"], out["fidelity"], out["fidelity+race"]
            both_low = [(fid["low"][k], s) for k, s in plain["scores"].items()
                        if s is not None and k in fid["low"]]
            rho = spearmanr(*zip(*both_low)).statistic if len(both_low) > 2 else float("nan")
            pooled_low += [a for a, _ in both_low]
            pooled_full += [b for _, b in both_low]
            row = {"seed": seed, **{f"{n}_{k}": out[n][k] for n in out
                                    for k in ("full", "total", "seconds", "best", "dropped")},
                   "same_path": [plain["keys"] == x["keys"] for x in (fid, both)],
                   "same_best": [plain["best"] == x["best"] for x in (fid, both)],
                   "best_dice": [plain["best_score"], fid["best_score"]],
                   "spearman": rho, "n_pairs": len(both_low)}
            rows.append(row)
            print(f"| {seed} | {plain['full']} / {fid['full']} / {both['full']} | "
                  f"{plain['total']} / {fid['total']} / {both['total']} | "
                  f"{plain['seconds']:.0f} / {fid['seconds']:.0f} / {both['seconds']:.0f} | "
                  f"{plain['full'] / max(fid['full'], 1):.1f}x, "
                  f"{plain['full'] / max(both['full'], 1):.1f}x | {fid['dropped']} | "
                  f"{row['same_path'][0]}, {row['same_path'][1]} | "
                  f"{row['same_best'][0]}, {row['same_best'][1]} | "
                  f"{plain['best_score']:.3f}, {fid['best_score']:.3f} | "
                  f"{rho:.2f} (n={len(both_low)}) |", flush=True)
        full_plain = sum(r["plain_full"] for r in rows)
        full_fid = sum(r["fidelity_full"] for r in rows)
        full_both = sum(r["fidelity+race_full"] for r in rows)
        same = sum(r["same_best"][0] for r in rows)
        pooled = spearmanr(pooled_low, pooled_full).statistic if len(pooled_low) > 2 \
            else float("nan")
        print(f"over {len(rows)} seeds: full-protocol trainings {full_plain} plain, "
              f"{full_fid} with --fidelity ({full_plain / max(full_fid, 1):.1f}x fewer), "
              f"{full_both} with --fidelity --race ({full_plain / max(full_both, 1):.1f}x "
              f"fewer); wall time {sum(r['plain_seconds'] for r in rows):.0f} s, "
              f"{sum(r['fidelity_seconds'] for r in rows):.0f} s, "
              f"{sum(r['fidelity+race_seconds'] for r in rows):.0f} s; same best network "
              f"in {same} of {len(rows)} seeds; pooled Spearman {pooled:.2f} "
              f"(n={len(pooled_low)})", flush=True)
        fused = fused_folds(data, Path(tmp) / "cache", protocol)
        print(fused, flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps({"rows": rows, "pooled_spearman": pooled,
                                         "fused_folds": fused}, indent=1, default=float))


if __name__ == "__main__":
    main()
