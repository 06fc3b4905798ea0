"""Domain shift on a 3-site phantom: train on two sites, test on the third, with and without
the intensity augmentation of ``training/intensity.py`` (``ROBUST``).

For each held-out site (leave-site-out folds) a U-Net is trained on the other two sites
with the intensity options off and on, and its Dice on the held-out site's cases is
printed; the in-domain reference is the same network under case-level 3-fold
cross-validation on all sites. Everything is measured in this one run; the figures
depend on the machine only through time.

    python benchmarks/site_shift.py --task spleen --cases 12 --epochs 8
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np

from mbnas.data import (
    PreprocessConfig,
    leave_site_out_splits,
    load_slices,
    make_phantom,
    make_splits,
)
from mbnas.spaces.mbnas import Baseline
from mbnas.training.intensity import ROBUST
from mbnas.training.protocol import get_protocol
from mbnas.training.runs import RunContext, RunSpec, execute_run


def held_out_dice(data, folds, protocol, seeds, device) -> list[float]:  # noqa: ANN001
    """Mean Dice of each fold's validation cases, averaged over seeds."""
    arch = Baseline("unet")
    ctx = RunContext(data, tuple(tuple(f.val) for f in folds), device)
    out = []
    for k in range(len(folds)):
        per_seed = []
        for seed in seeds:
            rec = execute_run(RunSpec(arch.to_dict(), arch.key, k, seed, protocol), ctx)
            if rec.status != "finished":
                raise RuntimeError(rec.error)
            per_seed.append(float(np.mean(list(rec.metrics["case_dice"].values()))))
        out.append(float(np.mean(per_seed)))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="spleen", choices=("spleen", "prostate"))
    p.add_argument("--cases", type=int, default=12)
    p.add_argument("--shape", type=int, nargs=3, default=(48, 48, 12))
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--base-channels", type=int, default=8)
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--phantom-seed", type=int, default=3)
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = make_phantom(Path(tmp) / "ph", args.task, args.cases, args.phantom_seed, sites=3,
                            shape=tuple(args.shape))
        data = load_slices(root, Path(tmp) / "cache", PreprocessConfig(size=args.image_size))
    off = get_protocol("quick", epochs=args.epochs, image_size=args.image_size,
                       base_channels=args.base_channels, seeds=list(range(args.seeds)))
    on = dataclasses.replace(off, intensity=ROBUST)
    seeds = list(off.seeds)
    sites = leave_site_out_splits(data.cases)
    cases = make_splits(data.case_ids, 3, seed=0)
    rows = {"in-domain CV (case folds), off": held_out_dice(data, cases, off, seeds, args.device),
            "held-out site, intensity off": held_out_dice(data, sites, off, seeds, args.device),
            "held-out site, intensity on": held_out_dice(data, sites, on, seeds, args.device)}
    names = [f.held_out_site for f in sites]
    print(f"{args.task} phantom, {args.cases} cases, 3 sites; U-Net, {args.epochs} epochs, "
          f"{args.image_size}px, base {args.base_channels}, seeds {seeds}")
    print(f"{'':34}" + "".join(f"{f'fold/site {n}':>16}" for n in names) + f"{'mean':>8}")
    for label, values in rows.items():
        print(f"{label:34}" + "".join(f"{v:16.3f}" for v in values)
              + f"{np.mean(values):8.3f}")
    ind = np.mean(rows["in-domain CV (case folds), off"])
    for label in ("held-out site, intensity off", "held-out site, intensity on"):
        print(f"drop vs in-domain, {label.split(', ')[1]}: {ind - np.mean(rows[label]):+.3f}")
    print(f"measured in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
