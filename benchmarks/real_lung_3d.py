"""3D against 2D search on real patients: the 6-case lung CT sample (`mbnas sample lung-ct`).

Runs random search with the same budget (number of evaluated networks) in the 2D MB-NAS
space (axial slices) and in the 3D one (patches of the volumes resampled to
``--spacing``), then evaluates the best network of each, and the U-Net preset of each
space at the same width, with the same folds and seeds. Every model is scored per
validation case in 3D on the scan's original grid (``mbnas evaluate``): Dice, HD95 and
Surface Dice, mean +- standard deviation over the (seed, fold) runs, and the seconds one
training run took on average, so equal training time can be read off the table (set the
3D ``--iterations`` or the 2D ``--epochs`` until the seconds match). Example (the
command and figures in docs/3d.md):

    nice -n 10 python benchmarks/real_lung_3d.py --budget 1 --epochs 4 --folds 2 \\
        --seeds 1 --image-size 64 --base-channels 8 --spacing 4 4 5 --patch 32 32 16 \\
        --iterations 8 --threads 1 --data LUNG_SAMPLE_DIR
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

import mbnas
from mbnas.commands.common.dataset import default_cache_dir
from mbnas.data.sample import make_sample


def run_means(evaluation, metric: str) -> dict[tuple[int, int], float]:
    """(seed, fold) -> the run's mean of ``metric`` over its validation cases."""
    runs: dict[tuple[int, int], list[float]] = {}
    for case in evaluation.cases:
        runs.setdefault((case.seed, case.fold), []).append(case.value(metric))
    return {k: float(np.mean(v)) for k, v in runs.items()}


def spread(values: dict[tuple[int, int], float]) -> str:
    v = np.array(list(values.values()))
    if not len(v):
        return "n/a"
    return f"{v.mean():.3f} +- {v.std(ddof=1) if len(v) > 1 else 0.0:.3f}"


def run_seconds(folder: Path) -> float:
    """Mean seconds of the finished training runs stored in a run or evaluation folder."""
    from mbnas.store import ResultStore

    with ResultStore(folder / "store.sqlite", read_only=True) as store:
        seconds = [r.seconds for r in store.runs() if r.status == "finished"]
    return float(np.mean(seconds)) if seconds else float("nan")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=int, default=3)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--folds", type=int, default=3)
    p.add_argument("--seeds", type=int, default=1, help="seeds of the final evaluation")
    p.add_argument("--image-size", type=int, default=64, help="2D slice size")
    p.add_argument("--base-channels", type=int, default=8)
    p.add_argument("--spacing", type=float, nargs=3, default=(4.0, 4.0, 5.0),
                   help="3D target spacing (x y z, mm)")
    p.add_argument("--patch", type=int, nargs=3, default=(32, 32, 16), help="3D patch")
    p.add_argument("--iterations", type=int, default=12, help="3D steps per epoch")
    p.add_argument("--batch-3d", type=int, default=2, help="3D patches per step")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--cache", type=Path, default=None,
                   help="preprocessing cache (default $MBNAS_CACHE or ~/.cache/mbnas)")
    p.add_argument("--data", type=Path, default=None,
                   help="an existing lung sample folder (default: built from the package "
                        "cache with `mbnas sample lung-ct`)")
    p.add_argument("--out", type=Path, default=None, help="keep the run folders here")
    args = p.parse_args()
    cache = args.cache or default_cache_dir()
    base = {"epochs": args.epochs, "folds": args.folds, "base_channels": args.base_channels,
            "seeds": [0], "precision": "fp32"}
    spaces = {
        "2D": ("mbnas", {**base, "image_size": args.image_size}),
        "3D": ("mbnas-3d", {**base, "batch_size": args.batch_3d, "volume": {
            "spacing": list(args.spacing), "patch_size": list(args.patch),
            "iterations_per_epoch": args.iterations}}),
    }
    rows, seconds = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        data = args.data or make_sample("lung-ct", root / "LungCT", cache,
                                        say=lambda _line: None)[0]
        for dims, (space, overrides) in spaces.items():
            t0 = time.perf_counter()
            mbnas.search(data, root / f"search-{dims}", space=space, strategy="random",
                         protocol="quick", protocol_overrides=overrides, budget=args.budget,
                         seed=0, cache_dir=str(cache), threads=args.threads, device="cpu")
            seconds[f"search {dims}"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            evaluated = mbnas.evaluate([root / f"search-{dims}"], root / f"evaluation-{dims}",
                                       seeds=args.seeds, folds=args.folds, baselines=[],
                                       threads=args.threads, device="cpu")
            seconds[f"evaluation {dims}"] = time.perf_counter() - t0
            per_run = run_seconds(root / f"evaluation-{dims}")
            for m in evaluated.evaluations:
                rows.append((f"{dims} {m.name}"[:40], run_means(m, "dice"),
                             run_means(m, "hd95"), run_means(m, "surface_dice"), per_run))
    print(f"lung CT sample (6 patients), random search budget {args.budget} per space, "
          f"{args.epochs} epochs, {args.folds} folds, {args.seeds} evaluation seed(s), "
          f"{args.base_channels} base channels; 2D: {args.image_size} px slices; 3D: "
          f"{'x'.join(map(str, args.patch))} patches at {'x'.join(map(str, args.spacing))} "
          f"mm, {args.iterations} steps of {args.batch_3d} per epoch; {args.threads} thread(s)")
    print(f"{'model':41}{'Dice':>16}{'HD95 mm':>20}{'Surface Dice':>16}{'s/run':>8}")
    for name, dice, hd95, nsd, per_run in rows:
        print(f"{name:41}{spread(dice):>16}{spread(hd95):>20}{spread(nsd):>16}"
              f"{per_run:>8.1f}")
    print("; ".join(f"{k}: {v / 60:.1f} min" for k, v in seconds.items()))


if __name__ == "__main__":
    main()
