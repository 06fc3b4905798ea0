"""Differentiable NAS against the paper's local search, on equal terms (issue 33.6).

Run as a script::

    python benchmarks/dnas_vs_local.py [--data DIR] [--space micro] [--repeats 3]
        [--supernet-epochs 4] [--budget 10] [--retrain-top 2] [--epochs 2]
        [--eval-epochs 4] [--folds 2] [--image-size 32] [--out FOLDER] [--threads 1]

Both searches run with ``mbnas search`` on the same data, space, folds and search protocol:

* **local**: ``--strategy local --start unet --scoring supernet``: one supernet per fold
  trained for ``--supernet-epochs`` (uniform single-path sampling), the local search
  told inherited-weight scores, the best ``--retrain-top`` K retrained stand-alone;
* **dnas**: ``--strategy dnas``: one supernet per fold and the architecture parameters,
  trained for the same ``--supernet-epochs`` (so: equal supernet epochs; the seconds each
  took are measured and printed), the K most probable decoded networks retrained
  stand-alone.

Each with ``--repeats`` searches (seeds 0..R-1, the same folds). Then ``mbnas evaluate``
trains the first repeat's best network of each, and the U-Net preset, with one final
protocol (``--eval-epochs``; folds x 1 seed). Every training uses the ``quick``
protocol's settings otherwise (width 8, batch 16). Printed: per method, the stand-alone search
score of best.json (mean and sd over repeats), the final protocol's mean validation Dice,
the search cost (seconds of the supernet or DNAS phase, seconds and count of stand-alone
trainings, all from the run folders), and the agreement of the repeats' best networks
(the share of identical pairs and the mean per-variable agreement). ``--data``: any
dataset mbnas reads (e.g. the lung sample); by default a Spleen phantom.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mbnas.data import make_phantom
from mbnas.reporting.stability import variable_agreement
from mbnas.store import ResultStore


def _mbnas(*args: str) -> float:
    """Run ``mbnas ARGS`` (exit on failure); its seconds."""
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "mbnas.cli", *args], capture_output=True,
                          text=True)
    if done.returncode != 0:
        sys.exit(f"mbnas {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - t0


def _json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _phase_seconds(run: Path) -> float:
    """Seconds of the DNAS phase, or of the supernets' training and the inherited-weight
    scoring (local), of one repeat, from its files."""
    if (run / "dnas" / "decoded.json").is_file():
        return float(_json(run / "dnas" / "decoded.json")["seconds"])
    summary = _json(run / "supernet.json")
    return float(summary.get("training_seconds", 0.0)) + float(
        summary.get("scoring_seconds", 0.0))


def _standalone(store: Path, keys: set[str], protocol_key: str) -> tuple[int, float]:
    """Stand-alone runs of the networks ``keys`` under the search protocol, and seconds."""
    with ResultStore(store, read_only=True) as s:
        runs = [r for r in s.runs(protocol_key=protocol_key) if r.arch_key in keys]
    return len(runs), float(sum(r.seconds for r in runs))


def _agreement(genotypes: list[dict]) -> tuple[float, float]:
    pairs = list(itertools.combinations([g["nodes"] for g in genotypes], 2))
    identical = sum(a == b for a, b in pairs) / len(pairs)
    per = [v for node in variable_agreement(genotypes).values() for v in node.values()
           if v is not None]
    return identical, statistics.fmean(per)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=None)
    p.add_argument("--space", default="micro")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--supernet-epochs", type=int, default=4)
    p.add_argument("--budget", type=int, default=10)
    p.add_argument("--retrain-top", type=int, default=2)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--eval-epochs", type=int, default=4)
    p.add_argument("--folds", type=int, default=2)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--target-spacing", default="0")
    p.add_argument("--foreground-fraction", type=float, default=0.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="dnas_vs_local_"))
    out.mkdir(parents=True, exist_ok=True)
    data = args.data or make_phantom(out / "Task09_Spleen", "spleen", n_cases=6, seed=0,
                                     shape=(48, 48, 12))
    protocol = ["--protocol", "quick", "--epochs", str(args.epochs), "--folds",
                str(args.folds), "--seeds", "1", "--image-size", str(args.image_size),
                "--target-spacing", args.target_spacing, "--foreground-fraction",
                str(args.foreground_fraction), "--device", "cpu", "--threads",
                str(args.threads), "--cache", str(out / "cache")]
    common = [str(data), "--space", args.space, "--supernet-epochs",
              str(args.supernet_epochs), "--retrain-top", str(args.retrain_top),
              "--repeats", str(args.repeats), *protocol]
    methods = {
        "local + supernet": ["--strategy", "local", "--start", "unet", "--scoring",
                             "supernet", "--budget", str(args.budget)],
        "dnas": ["--strategy", "dnas", "--budget", str(args.retrain_top)],
    }
    rows = {}
    for name, flags in methods.items():
        folder = out / name.split()[0]
        wall = _mbnas("search", *common, *flags, "--out", str(folder))
        repeats = [folder / f"repeat{k}" for k in range(args.repeats)]
        bests = [_json(r / "best.json") for r in repeats]
        keys = {json.loads(line)["arch_key"] for r in repeats
                for line in (r / "search_log.jsonl").read_text().splitlines()
                if json.loads(line).get("runs")}
        n_runs, run_seconds = _standalone(folder / "store.sqlite", keys,
                                          bests[0]["protocol_key"])
        identical, per_variable = _agreement([b["genotype"] for b in bests])
        scores = [float(b["score"]) for b in bests]
        rows[name] = {"folder": folder, "best": bests[0]["arch_key"], "wall": wall,
                      "score": statistics.fmean(scores),
                      "sd": statistics.stdev(scores) if len(scores) > 1 else 0.0,
                      "phase": statistics.fmean(_phase_seconds(r) for r in repeats),
                      "runs": n_runs / args.repeats, "run_seconds": run_seconds / args.repeats,
                      "identical": identical, "per_variable": per_variable}
    evaluation = out / "evaluation"
    _mbnas("evaluate", *(str(rows[n]["folder"] / "repeat0") for n in rows), "--baselines",
           "unet", "--protocol", "quick", "--epochs", str(args.eval_epochs), "--folds",
           str(args.folds), "--seeds", "1", "--image-size", str(args.image_size),
           "--target-spacing", args.target_spacing, "--foreground-fraction",
           str(args.foreground_fraction), "--device", "cpu", "--threads", str(args.threads),
           "--cache", str(out / "cache"), "--out", str(evaluation))
    details = _json(evaluation / "evaluation.json")["details"]
    final = {d["arch_key"]: (n, d["run_score_mean"]) for n, d in details.items()}
    unet = next((v for n, v in final.values() if n.startswith("U-Net")), float("nan"))
    print(f"data {data}; space {args.space}; {args.repeats} repeats; supernet epochs "
          f"{args.supernet_epochs}; search protocol {args.epochs} epochs, {args.folds} folds, "
          f"{args.image_size} px, the quick protocol's width (8); final protocol "
          f"{args.eval_epochs} epochs; out {out}")
    print("| method | search score of best.json (mean ± sd over repeats) | final-protocol "
          "Dice (repeat 0) | supernet/DNAS phase s | stand-alone runs (s) per repeat | "
          "identical best networks | mean per-variable agreement |")
    print("|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['score']:.4f} ± {r['sd']:.4f} | "
              f"{final.get(r['best'], ('', float('nan')))[1]:.4f} | {r['phase']:.0f} | "
              f"{r['runs']:.0f} ({r['run_seconds']:.0f}) | {r['identical']:.2f} | "
              f"{r['per_variable']:.2f} |")
    print(f"| U-Net preset | - | {unet:.4f} | - | - | - | - |")
    local, dnas = rows["local + supernet"], rows["dnas"]
    print(f"ratio dnas / local: phase seconds {dnas['phase'] / max(local['phase'], 1e-9):.2f}, "
          f"whole search wall time {dnas['wall'] / max(local['wall'], 1e-9):.2f}")


if __name__ == "__main__":
    main()
