"""`mbnas train`: one training run (architecture, fold, seed) from the command line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mbnas.cli.settings import add_protocol_arguments, protocol_settings
from mbnas.cli.speed import announce, refuse_paper_on_cpu, timed_estimate
from mbnas.errors import EXIT_RUNS_FAILED, ConfigError


def cmd_train(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from mbnas.commands.train.run import train_one
    from mbnas.data.nnunet import resolve_dataset
    from mbnas.spaces.mbnas import load_architecture
    from mbnas.training.protocol import Protocol

    load_architecture(args.arch)  # a bad --arch is one line, not one under a progress bar
    data_dir = resolve_dataset(args.data_dir)
    protocol = Protocol.from_dict(protocol_settings(args, {}, data_dir))
    refuse_paper_on_cpu(args.device, protocol, lambda: _run_hours(args, protocol))
    import torch

    from mbnas.training.cpus import default_threads

    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads must be at least 1, got {args.threads}")
    announce(args.device, protocol, args.threads)
    torch.set_num_threads(args.threads or default_threads())
    console = Console(stderr=True)
    with Progress(TextColumn("{task.description}"), BarColumn(),
                  TextColumn("{task.fields[info]}"), TimeRemainingColumn(),
                  console=console) as bar:
        task = bar.add_task(f"fold {args.fold} seed {args.seed}", total=protocol.epochs, info="")

        def on_epoch(stats) -> None:
            bar.update(task, completed=stats.epoch + 1,
                       info=f"epoch {stats.epoch + 1} loss {stats.loss:.4f} "
                            f"val Dice {stats.val_dice:.4f}")

        record, cached = train_one(
            data_dir, args.arch, protocol, args.fold, args.seed, Path(args.out),
            cache_dir=args.cache_dir, device=args.device, on_epoch=on_epoch,
        )
    if record.status != "finished":
        print(f"run failed:\n{record.error}")
        return EXIT_RUNS_FAILED
    print(f"{'from the store (not retrained)' if cached else 'trained'}: "
          f"{record.arch_key} fold {record.fold} seed {record.seed} on {record.device}, "
          f"{record.seconds:.1f} s")
    print("epoch  loss    val_dice")
    for e in record.curve:
        print(f"{e['epoch'] + 1:5d}  {e['loss']:.4f}  {e['val_dice']:.4f}")
    print(f"score (mean val Dice over the last {protocol.score_epochs} epochs): "
          f"{record.score:.4f}")
    cases = (record.metrics or {}).get("cases") or {}
    if cases:
        print("per validation case: " + json.dumps(cases, indent=1))
    return 0


def _run_hours(args: argparse.Namespace, protocol) -> tuple[float, float]:
    """Estimated hours of this one run (for the CPU refusal)."""
    import dataclasses

    from mbnas.spaces.mbnas import load_architecture

    one = dataclasses.replace(protocol, seeds=(args.seed,))
    est = timed_estimate(args.data_dir, [(args.arch, load_architecture(args.arch))], one,
                         args.device, 1, None, steps=1)
    hours = est.run_seconds()[0] / 3600
    return hours, hours


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train one architecture on one fold with one seed")
    p.add_argument("data_dir", help="MSD or nnU-Net dataset folder")
    p.add_argument("--arch", default="unet",
                   help="genotype JSON file, best.json of a search, or a preset/baseline name")
    p.add_argument("--fold", type=int, default=0,
                   help="the cross-validation fold whose validation cases score the run "
                        "(default 0)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the network's initialisation and training (default 0)")
    p.add_argument("--out", default="runs/train", help="folder for splits, store and weights")
    p.add_argument("--cache", dest="cache_dir", help="preprocessing cache folder")
    p.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    p.add_argument("--threads", type=int, help="CPU threads of the run (default: the CPUs "
                   "this process may use: affinity, cgroup quota, SLURM_CPUS_PER_TASK, "
                   "OMP_NUM_THREADS)")
    add_protocol_arguments(p, seeds=False)  # one run: --seed, never --seeds
    p.set_defaults(handler=cmd_train)
