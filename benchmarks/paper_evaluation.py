"""How long one paper-protocol evaluation of the U-Net preset takes on a Spleen-sized dataset.

Run as a script: ``python benchmarks/paper_evaluation.py --device cuda`` (or ``--device
cpu --cases 6 --size 32 --epochs 1 --samples-per-epoch 0 --base-channels 4`` to try it).
It writes a Spleen phantom of 41 cases (MSD Spleen's training set) with about as many
slices as the real one, and trains the U-Net preset under the ``paper-spleen`` protocol
(5 folds x 3 seeds, 50 epochs of >= 2048 samples, bf16 where supported) through the
engine's executor, as a search evaluation does. ``--folds-trained K`` trains the runs
of the first K folds only and scales the time by 5 / K (the folds are alike in size),
``--seeds-trained S`` likewise the first S of the 3 seeds (scaled by 3 / S);
``--runs-per-device`` and ``--fuse`` are the search's options of the same names.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from mbnas.commands.common.dataset import training_data
from mbnas.data import make_phantom
from mbnas.data.folds import make_splits
from mbnas.scoring.train import Evaluator
from mbnas.spaces.mbnas import preset
from mbnas.store import ResultStore
from mbnas.training.device import device_name, select_device
from mbnas.training.executors import make_executor
from mbnas.training.protocol import get_protocol
from mbnas.training.runs import RunContext


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--cases", type=int, default=41)
    parser.add_argument("--slices-per-case", type=int, default=70,
                        help="phantom depth (41 x 70 ~ MSD Spleen's 2,900 slices)")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=None, help="default: the paper's 50")
    parser.add_argument("--samples-per-epoch", type=int, default=None)
    parser.add_argument("--base-channels", type=int, default=None)
    parser.add_argument("--folds-trained", type=int, default=1)
    parser.add_argument("--seeds-trained", type=int, default=None,
                        help="train the first S seeds only (default: all)")
    parser.add_argument("--runs-per-device", type=int, default=1)
    parser.add_argument("--fuse", action="store_true")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    overrides = {k: v for k, v in (("epochs", args.epochs), ("image_size", args.size),
                                   ("samples_per_epoch", args.samples_per_epoch),
                                   ("base_channels", args.base_channels)) if v is not None}
    protocol = get_protocol("paper-spleen", **overrides)
    device = select_device(args.device)
    with tempfile.TemporaryDirectory(prefix="paper-evaluation-") as tmp:
        t0 = time.perf_counter()
        root = make_phantom(Path(tmp) / "Task09_Spleen", "spleen", n_cases=args.cases,
                            seed=0, shape=(96, 96, args.slices_per_case))
        data = training_data(root, Path(tmp) / "cache", protocol.image_size)
        prepared = time.perf_counter() - t0
        folds = tuple(tuple(f.val) for f in make_splits(data.case_ids, protocol.folds, 0))
        ctx = RunContext(data, folds, args.device)
        executor = make_executor("inprocess", None, args.threads, args.runs_per_device,
                                 args.fuse)
        unet = preset("unet")
        with ResultStore(Path(tmp) / "store.sqlite") as store:
            evaluator = Evaluator(ctx, protocol, store, executor)
            seeds = protocol.seeds[:args.seeds_trained or len(protocol.seeds)]
            specs = [s for s in evaluator.specs(unet)
                     if s.fold < args.folds_trained and s.seed in seeds]
            executor.start()
            t0 = time.perf_counter()
            try:
                evaluator.train_missing(specs)
            finally:
                executor.close()
            seconds = time.perf_counter() - t0
            runs = store.runs()
    n_train = sum(len(data.subset([c for c in data.case_ids if c not in folds[f]]).images)
                  for f in range(args.folds_trained)) // args.folds_trained
    images = (len(specs) * protocol.epochs * protocol.passes_per_epoch(n_train)
              * -(-n_train // protocol.batch_size) * protocol.batch_size)
    evaluation = (seconds * protocol.folds / args.folds_trained
                  * len(protocol.seeds) / len(seeds))
    figures = {
        "device": device_name(device), "slices": len(data.images),
        "runs_trained": len(specs), "finished": sum(r.status == "finished" for r in runs),
        "seconds": seconds, "evaluation_seconds": evaluation,
        "training_images_per_s": images / seconds, "prepare_seconds": prepared,
        "protocol_key": protocol.key, "epochs": protocol.epochs,
        "runs_per_device": args.runs_per_device, "fuse": args.fuse,
    }
    print(f"device {figures['device']}, torch {torch.__version__}; phantom {args.cases} cases, "
          f"{len(data.images)} slices at {protocol.image_size} px (prepared in {prepared:.0f} s)")
    print(f"U-Net preset, paper-spleen protocol ({protocol.epochs} epochs, "
          f"{protocol.folds} folds x {len(protocol.seeds)} seeds): {len(specs)} runs of "
          f"{args.folds_trained} fold(s) x {len(seeds)} seed(s) in {seconds:.1f} s "
          f"({figures['finished']} finished; "
          f"{figures['training_images_per_s']:.0f} training images/s); one evaluation "
          f"(all {protocol.folds} folds) ~ {evaluation:.0f} s = {evaluation / 3600:.2f} h")
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
