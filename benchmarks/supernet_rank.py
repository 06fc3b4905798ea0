"""Does the supernet rank networks as stand-alone training does? (issue 31.5)

Run as a script::

    python benchmarks/supernet_rank.py [--data DIR] [--space mbnas] [--n 20] [--epochs 8]
        [--supernet-epochs 16] [--folds 2] [--image-size 32] [--base-channels 4]
        [--out FOLDER] [--threads 1]

N networks sampled uniformly from the space, plus the U-Net preset, are each trained
stand-alone with the benchmark's protocol (folds x 2 seeds, stored in ``FOLDER/store``
so a rerun trains nothing twice) and scored by a supernet trained per fold with the same
protocol (``supernet_epochs``). It prints Kendall's tau and Spearman's rho between the
supernet score and the stand-alone score (mean over folds x seeds), with bootstrap 95 %
intervals (networks resampled), the top-5 overlap, the regret (best stand-alone score of
the N against the stand-alone score of the supernet's pick), and the ceiling: tau
between the two stand-alone seeds of the same networks (their noise, which no
estimator can beat). Then the cost: trainings in epoch equivalents and seconds, and the
time of scoring one network with inherited weights (BN recalibration included) at
``--timing-size`` pixels. ``--data``: any dataset mbnas reads (e.g. the lung sample);
by default a Spleen phantom.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau, spearmanr

from mbnas.commands.common.dataset import fold_case_ids, training_data
from mbnas.data import make_phantom
from mbnas.scoring.supernet_train import (
    inherited_score,
    recalibration_batches,
    supernet_epochs,
    train_supernet,
)
from mbnas.scoring.train import Evaluator
from mbnas.spaces.mbnas import get_space, preset
from mbnas.store import ResultStore
from mbnas.training.protocol import get_protocol
from mbnas.training.runs import InProcessExecutor, RunContext, fold_data
from mbnas.training.train import _DeviceData


def _ci(statistic, a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Percentile bootstrap 95 % interval of a paired statistic (networks resampled with
    replacement, 2000 times; resamples where it is undefined, all ties, are left out)."""
    rng = np.random.default_rng(0)
    values = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(2000):
            i = rng.integers(0, len(a), len(a))
            values.append(float(statistic(a[i], b[i]).statistic))
    low, high = np.nanpercentile(values, [2.5, 97.5])
    return float(low), float(high)


def _line(name: str, statistic, a: np.ndarray, b: np.ndarray) -> str:
    value = float(statistic(a, b).statistic)
    low, high = _ci(statistic, a, b)
    return f"{name}: {value:+.3f}  (95% CI {low:+.3f} .. {high:+.3f})"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=None)
    p.add_argument("--space", default="mbnas")
    p.add_argument("--max-depth", type=int, default=None)
    p.add_argument("--n", type=int, default=20)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--supernet-epochs", type=int, default=16)
    p.add_argument("--folds", type=int, default=2)
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--base-channels", type=int, default=4)
    p.add_argument("--target-spacing", type=float, default=0.0)
    p.add_argument("--samples-per-epoch", type=int, default=0)
    p.add_argument("--foreground-fraction", type=float, default=0.0)
    p.add_argument("--timing-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    out = args.out or Path(tempfile.mkdtemp(prefix="supernet_rank_"))
    out.mkdir(parents=True, exist_ok=True)
    data_dir = args.data or make_phantom(out / "Task09_Spleen", "spleen", n_cases=6, seed=0,
                                         shape=(64, 64, 16))
    protocol = get_protocol("quick", epochs=args.epochs, folds=args.folds, seeds=[0, 1],
                            image_size=args.image_size, base_channels=args.base_channels,
                            batch_size=16, samples_per_epoch=args.samples_per_epoch,
                            target_spacing=args.target_spacing,
                            foreground_fraction=args.foreground_fraction,
                            supernet_epochs=args.supernet_epochs)
    data = training_data(data_dir, out / "cache", protocol.image_size, None,
                         protocol.normalisation, protocol.target_spacing)
    folds = fold_case_ids(out / "splits.json", data, protocol.folds, 0)
    space = get_space(args.space, args.max_depth)
    rng = np.random.default_rng(args.seed)
    nets = {}
    unet = preset("unet")
    if space.contains(unet):
        nets[unet.key] = unet
    while len(nets) < args.n + (1 if space.contains(unet) else 0):
        g = space.sample(rng)
        nets.setdefault(g.key, g)
    genotypes = list(nets.values())
    print(f"data {data_dir}: {len(data.case_ids)} cases, {len(data.images)} slices at "
          f"{protocol.image_size} px; space {args.space}; {len(genotypes)} networks; "
          f"{protocol.folds} folds x 2 seeds x {protocol.epochs} epochs stand-alone; "
          f"supernet {supernet_epochs(protocol)} epochs per fold", flush=True)

    ctx = RunContext(data, folds, "cpu")
    t0 = time.perf_counter()
    with ResultStore(out / "store.sqlite") as store:
        evaluator = Evaluator(ctx, protocol, store, InProcessExecutor(threads=args.threads))
        results = evaluator.evaluate_many(genotypes)
    standalone_seconds = time.perf_counter() - t0
    alone = np.array([r.score for r in results])
    by_seed = np.array([[np.mean([x.score for x in r.runs if x.seed == s]) for s in (0, 1)]
                        for r in results])
    trained_seconds = sum(r.seconds for r in results)

    device = torch.device("cpu")
    supernet_scores = np.zeros(len(genotypes))
    train_seconds, score_seconds = 0.0, 0.0
    for fold in range(protocol.folds):
        train, val = fold_data(data, folds, fold)
        trained = train_supernet(space, train, protocol, 0, device,
                                 out / "supernet" / f"fold{fold}.pt")
        train_seconds += trained.seconds
        batches = recalibration_batches(train, protocol, device)
        va = _DeviceData(val, device, False)
        t0 = time.perf_counter()
        for i, g in enumerate(genotypes):
            supernet_scores[i] += inherited_score(trained.net, g, batches, val, protocol,
                                                  device, va) / protocol.folds
        score_seconds += time.perf_counter() - t0

    ok = ~(np.isnan(alone) | np.isnan(supernet_scores))
    a, s = supernet_scores[ok], alone[ok]
    print(f"\nstand-alone Dice {np.nanmin(alone):.3f} .. {np.nanmax(alone):.3f} (mean "
          f"{np.nanmean(alone):.3f}); supernet Dice {np.nanmin(supernet_scores):.3f} .. "
          f"{np.nanmax(supernet_scores):.3f}; {int(ok.sum())} networks compared")
    print(_line("Kendall tau, supernet vs stand-alone", kendalltau, a, s))
    print(_line("Spearman rho, supernet vs stand-alone", spearmanr, a, s))
    print(_line("ceiling: Kendall tau, stand-alone seed 0 vs seed 1", kendalltau,
                by_seed[ok, 0], by_seed[ok, 1]))
    k = min(5, len(a))
    top_s, top_a = set(np.argsort(-a)[:k]), set(np.argsort(-s)[:k])
    pick = int(np.argmax(a))
    print(f"top-{k} overlap: {len(top_s & top_a)} of {k}")
    print(f"regret: best stand-alone {s.max():.4f} - stand-alone of the supernet's pick "
          f"{s[pick]:.4f} = {s.max() - s[pick]:.4f} (its stand-alone rank "
          f"{int((s > s[pick]).sum()) + 1} of {len(s)})")
    if space.contains(unet):
        print(f"U-Net preset: stand-alone {alone[0]:.4f} (rank "
              f"{int((alone > alone[0]).sum()) + 1}), supernet {supernet_scores[0]:.4f} "
              f"(rank {int((supernet_scores > supernet_scores[0]).sum()) + 1})")

    n_alone = len(genotypes) * protocol.folds * 2 * protocol.epochs
    n_super = protocol.folds * supernet_epochs(protocol)
    print(f"\ncost, training-epoch equivalents: stand-alone {n_alone} "
          f"({len(genotypes)} nets x {protocol.folds} folds x 2 seeds x {protocol.epochs}); "
          f"supernets {n_super} ({protocol.folds} x {supernet_epochs(protocol)}); "
          f"ratio {n_alone / n_super:.1f}")
    print(f"cost, seconds on this machine: stand-alone training {trained_seconds:.0f} s "
          f"(wall {standalone_seconds:.0f} s); supernet training {train_seconds:.0f} s, "
          f"scoring {len(genotypes)} networks {score_seconds:.1f} s "
          f"({score_seconds / len(genotypes):.2f} s per network, {protocol.folds} folds); "
          f"ratio {trained_seconds / max(train_seconds + score_seconds, 1e-9):.1f}")
    _timing(data_dir, data, folds, protocol, space, args, out, rng)


def _timing(data_dir, data, folds, protocol, space, args, out, rng) -> None:  # noqa: ANN001
    """Seconds to score one network with inherited weights at ``--timing-size`` px."""
    from dataclasses import replace

    from mbnas.scoring.supernet import SuperNet

    size = args.timing_size
    data64 = data if size == protocol.image_size else training_data(
        data_dir, out / "cache", size, None, protocol.normalisation, protocol.target_spacing)
    p64 = replace(protocol, image_size=size)
    train, val = fold_data(data64, folds, 0)
    net = SuperNet(space, data64.in_channels, data64.n_classes, protocol.base_channels).eval()
    device = torch.device("cpu")
    batches = recalibration_batches(train, p64, device)
    va = _DeviceData(val, device, False)
    times, cpu = [], []
    for _ in range(5):
        g = space.sample(rng)
        t0, c0 = time.perf_counter(), time.process_time()
        inherited_score(net, g, batches, val, p64, device, va)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    print(f"\nscoring one network on one fold at {size} px ({len(val.images)} validation "
          f"slices, {len(batches)} recalibration batches of {p64.batch_size}, "
          f"{protocol.base_channels} base channels, {args.threads} thread(s)): median "
          f"{statistics.median(times):.2f} s wall (min {min(times):.2f}, max {max(times):.2f}), "
          f"median {statistics.median(cpu):.2f} s of CPU time")


if __name__ == "__main__":
    main()
