"""`mbnas search` and `mbnas demo`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from mbnas.cli.settings import (
    add_cost_arguments,
    add_executor_arguments,
    add_protocol_arguments,
    protocol_settings,
    ray_settings,
    read_config_file,
)
from mbnas.cli.sites import (
    add_site_arguments,
    resolve_split,
)
from mbnas.cli.speed import (
    add_speed_arguments,
    guard_search,
    print_estimate,
    search_estimate,
)
from mbnas.commands.demo.settings import DemoSettings
from mbnas.costs.registry import limit_figures
from mbnas.errors import ConfigError
from mbnas.scoring.registry import DEFAULT_SCORING, SCORINGS, scoring_names
from mbnas.spaces.registry import DEFAULT_SPACE, FIXED_BLOCKS, space_names
from mbnas.strategies import DEFAULT_STRATEGY, strategy_definition, strategy_names
from mbnas.strategies.options import parse_assignments


def search_config(args: argparse.Namespace):
    from mbnas.commands.search.run import SearchConfig

    settings = read_config_file(args.config)
    if args.space in _old_space_names():
        new = strategy_definition(args.space).space
        print(f"note: --space {args.space} is now --space {new} --strategy {args.space}",
              file=sys.stderr)
    if args.data_dir is not None:
        settings["data_dir"] = args.data_dir
    if "data_dir" not in settings:
        raise ConfigError("no dataset given: pass DATA_DIR or set data_dir in the config file")
    from mbnas.data.nnunet import resolve_dataset

    # The dataset first: the sites, the splits and the paper preset all read it.
    settings["data_dir"] = str(resolve_dataset(settings["data_dir"]).resolve())
    resolve_split(args, settings["data_dir"], settings)
    protocol = protocol_settings(args, settings, settings["data_dir"])
    fields = {f.name for f in dataclasses.fields(SearchConfig)}
    for name in fields - {"protocol", "data_dir", "ray", "sites_file"}:
        value = getattr(args, name, None)
        if value is not None:
            settings[name] = value
    for figure in limit_figures().values():  # a plugin figure's limit: no field of its own
        value = getattr(args, figure.limit_field, None)
        if figure.limit_field not in fields and value is not None:
            settings[figure.limit_field] = value
    if getattr(args, "strategy_option", None):
        options = settings.get("strategy_options") or {}
        if not isinstance(options, dict):
            raise ConfigError(f"strategy_options must be a mapping of options, got {options!r}")
        settings["strategy_options"] = {**options,
                                        **parse_assignments(args.strategy_option)}
    settings["protocol"] = protocol
    settings["ray"] = ray_settings(args, settings)
    return SearchConfig.from_dict(settings)


def _old_space_names() -> tuple[str, ...]:
    """Strategies older versions took as --space (bilevel): still accepted, with a note."""
    return tuple(n for n in strategy_names() if strategy_definition(n).was_space)


def check_writes(args: argparse.Namespace, config: Any) -> None:
    """Check what the options that write would write (``--splits``, ``--repeats``).

    Runs before anything is written, also for ``--dry-run`` and ``--estimate`` (which then
    write nothing): a refused option leaves no file behind to lock the folder.
    """
    if args.repeats is not None and args.repeats < 2:
        raise ConfigError(f"--repeats needs at least 2 searches, got {args.repeats}")
    if args.splits is not None:
        from mbnas.commands.common.runfolder import RunFolder
        from mbnas.data.formats import read_dataset
        from mbnas.data.nnunet import adopt_splits

        cases = [c.case_id for c in read_dataset(config.data_dir).cases]
        adopt_splits(args.splits, RunFolder(args.out).splits, cases, config.protocol.folds,
                     write=False)


def cmd_search(args: argparse.Namespace) -> int:
    from mbnas.api import search
    from mbnas.cli.steps import console
    from mbnas.commands.common.live import SearchProgress
    from mbnas.commands.common.runfolder import RunFolder
    from mbnas.training.executors import make_executor

    config = search_config(args)
    check_writes(args, config)  # all checked before anything is written
    if args.dry_run:
        resolved = json.loads(json.dumps({"out": str(Path(args.out).resolve()),
                                          **config.to_dict()}))
        print(yaml.safe_dump(resolved, sort_keys=False), end="")
        samples = config.protocol.samples_per_epoch
        epoch = (f"an epoch is at least {samples} samples (whole passes over the training "
                 "slices)" if samples > 0 else "an epoch is one pass over the training slices")
        print(f"protocol key {config.protocol.key}; {epoch}; nothing written (--dry-run)")
        from mbnas.data.spacing import dataset_spacing_lines

        for line in dataset_spacing_lines(config.data_dir, config.protocol.image_size):
            print(f"# {line}")  # as `mbnas check DATA --image-size N`; a YAML comment
        return 0
    if args.estimate:
        estimate = search_estimate(config)
        print_estimate(estimate, "search")
        if config.scoring == "supernet":
            from mbnas.commands.common.estimate import supernet_lines
            from mbnas.scoring.supernet_scoring import phase_kernel
            from mbnas.spaces.mbnas import get_space

            space = get_space(config.space, config.max_depth, config.block)
            for line in supernet_lines(estimate, space, config.budget, config.retrain_top,
                                       phase_kernel(config.strategy)):
                print(line)
        return 0
    if args.splits is not None:
        from mbnas.data.nnunet import adopt_splits

        adopt_splits(args.splits, RunFolder(args.out).splits)
    guard_search(config)
    executor = make_executor(config.executor, config.ray, config.threads,
                             config.runs_per_device, config.fuse)
    executor.start()  # connect and print the Ray dashboard before the live display
    plan, shared = [(config, Path(args.out))], None
    if args.repeats is not None:
        from mbnas.commands.common.repeats import prepare_repeats

        plan, shared = prepare_repeats(config, args.out, args.repeats), Path(args.out)
    try:
        for k, (repeat, folder) in enumerate(plan):
            if shared is not None:
                print(f"repeat {k + 1} of {len(plan)}: search seed {repeat.seed} in {folder}")
            with SearchProgress(repeat.budget, console=console()) as progress:
                outcome = search(None, folder, config=repeat, hooks=progress,
                                 executor=executor, on_evaluation=progress.evaluation_done,
                                 shared=shared, retry_failed=args.retry_failed)
            print(f"{'resumed' if outcome.resumed else 'finished'} search in "
                  f"{outcome.folder}: {outcome.n_evaluated} evaluations, best score "
                  f"{outcome.best_score:.4f}")
            if RunFolder(outcome.folder).best.is_file():
                print(f"best architecture: {RunFolder(outcome.folder).best}")
            from mbnas.reporting.noise import best_vs_start

            if (verdict := best_vs_start(RunFolder(outcome.folder).read_search_log())):
                print(verdict)
            for line in front_lines(RunFolder(outcome.folder)):
                print(line)
    finally:
        executor.close()
    if shared is not None:
        print(f"{len(plan)} repeats share the store {RunFolder(shared).store}; stability: "
              f"mbnas report {shared} --out report")
    else:
        print(f"next: mbnas evaluate {args.out}")
    return 0


def front_lines(folder: Any) -> list[str]:
    """What a cost-aware search found: the front's size, its best network per objective
    and where ``front.json`` is; nothing for a search for Dice alone."""
    front = folder.read_front()
    if not front or not front.get("members"):
        return []
    members = front["members"]
    lines = [f"Pareto front: {len(members)} network(s) over "
             f"{', '.join(front['objectives'])}; {folder.front}"]
    best = max(members, key=lambda m: m["score"])
    lines.append(f"  best dice: {best['score']:.4f} ({best['arch_key'][:8]})")
    for cost in front["objectives"]:
        if cost == "dice":
            continue
        m = min(members, key=lambda member: member["figures"][cost])
        lines.append(f"  lowest {cost}: {m['figures'][cost]:.4g} ({m['arch_key'][:8]}, "
                     f"dice {m['score']:.4f})")
    lines.append(f"  evaluate every member: mbnas evaluate {folder.path} --front")
    return lines


def _search_defaults() -> dict[str, Any]:
    """The defaults of :class:`SearchConfig` (flags default to None: a --config file may
    set them), for `search --help`."""
    from mbnas.commands.search.config import SearchConfig

    return {f.name: f.default for f in dataclasses.fields(SearchConfig)
            if f.default is not dataclasses.MISSING}


def cmd_demo(args: argparse.Namespace) -> int:
    from mbnas.commands.demo.run import run_demo

    for name in ("budget", "cases", "epochs", "folds", "threads"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ConfigError(f"demo --{name} must be at least 1, got {getattr(args, name)}")
    if args.folds < 2:
        raise ConfigError(f"demo --folds must be at least 2, got {args.folds}")
    run_demo(Path(args.out), DemoSettings(budget=args.budget, cases=args.cases,
                                          epochs=args.epochs, folds=args.folds,
                                          threads=args.threads, cache_dir=args.cache_dir,
                                          space=args.space))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="search for the best architecture on a dataset")
    p.add_argument("data_dir", nargs="?", help="MSD or nnU-Net dataset folder, or an nnU-Net "
                   "dataset ID or name (9, Dataset009_Spleen) under $nnUNet_raw")
    p.add_argument("--splits", default=None, metavar="FILE",
                   help="use these folds (nnU-Net's splits_final.json, or a splits.json) "
                        "instead of making new ones; --folds must match its fold count")
    p.add_argument("--out", required=True, help="run folder (created, or resumed)")
    p.add_argument("--config", help="YAML file with any of the settings below")
    p.add_argument("--space", choices=(*space_names(), *_old_space_names()),
                   metavar="{" + ",".join(space_names()) + "}",
                   help=f"the search space (default {DEFAULT_SPACE}); `mbnas space info "
                        "--space NAME` describes one")
    p.add_argument("--strategy", choices=strategy_names(),
                   help=f"the search strategy (default {DEFAULT_STRATEGY}): " + "; ".join(
                       f"{n}: {strategy_definition(n).about}" for n in strategy_names()))
    p.add_argument("--budget", type=int, help="evaluations (architectures trained); paper: 150")
    p.add_argument("--seed", type=int, help="seed of the search and of the folds")
    p.add_argument("--start", help="'random', a preset name such as 'unet', or an authors' "
                                   "40-digit genotype string")
    p.add_argument("--block", choices=FIXED_BLOCKS,
                   help="the block of a space that fixes it (macro, and bilevel's phases): vgg "
                        "(k x k twice, the default) or vgg2 (k x k then 3 x 3: the authors' "
                        "VGG-only class; add --init he for its initialisation)")
    p.add_argument("--restarts", action=argparse.BooleanOptionalAction, default=None,
                   help="local/bilevel search: after a local optimum, start again from a "
                        "random network until the budget is spent (the authors' code); "
                        "default off: stop at the first local optimum (the paper's text)")
    p.add_argument("--strategy-option", action="append", metavar="KEY=VALUE",
                   dest="strategy_option",
                   help="an option of the strategy (repeatable), e.g. batch_size=4 with "
                        "--strategy random, arch_lr=0.01 with --strategy dnas; added to the "
                        "config file's strategy_options")
    p.add_argument("--max-depth", type=int, dest="max_depth",
                   help="deepest level (default: the space's own, 3 for the paper's)")
    p.add_argument("--device", help="auto, cpu or cuda")
    p.add_argument("--cache", dest="cache_dir", help="preprocessing cache folder")
    p.add_argument("--retry-failed", action="store_true",
                   help="train failed runs again (runs that failed because of the machine "
                        "are always retried) and replay the search from its seed")
    p.add_argument("--dry-run", action="store_true",
                   help="print the fully resolved settings and exit; writes nothing")
    p.add_argument("--scoring", choices=scoring_names(),
                   help="how each probed network gets its score: "
                        + "; ".join(f"{n}: {SCORINGS.get(n).about}" for n in scoring_names())
                        + f" (default {DEFAULT_SCORING})")
    p.add_argument("--retrain-top", type=int, dest="retrain_top", metavar="K",
                   help="--scoring supernet: train the best K networks by supernet score "
                        "stand-alone at the end; --strategy dnas: the K most probable "
                        "decoded networks; best.json is the best of them (default 5)")
    p.add_argument("--supernet-epochs", type=int, dest="supernet_epochs", metavar="N",
                   help="--scoring supernet: epochs of each fold's supernet; --strategy "
                        "dnas: of its supernets and architecture parameters, unless its "
                        "option epochs is set (default: --epochs)")
    p.add_argument("--repeats", type=int, metavar="K",
                   help="K independent searches (search seeds seed..seed+K-1) on the same "
                        "folds, sharing one store, in OUT/repeat0..; for search stability")
    add_cost_arguments(p)
    add_executor_arguments(p)
    add_protocol_arguments(p)
    add_site_arguments(p)
    add_speed_arguments(p, race=True)
    p.set_defaults(handler=cmd_search)
    p.defaults_from = _search_defaults  # grouped with --verbose, by build_parser

    d = sub.add_parser("demo", help="phantom data + a short search, on the CPU in minutes")
    d.add_argument("--out", default="runs/demo",
                   help="folder for the phantom data and the search (default runs/demo)")
    d.add_argument("--budget", type=int, default=DemoSettings.budget,
                   help="evaluations of the short search")
    d.add_argument("--threads", type=int, default=None,
                   help="CPU threads per training run (default: the CPUs this process may "
                        "use: affinity, cgroup quota, SLURM_CPUS_PER_TASK, OMP_NUM_THREADS)")
    d.add_argument("--cache", dest="cache_dir",
                   help="preprocessing cache folder (default: $MBNAS_CACHE, else OUT/cache)")
    d.add_argument("--cases", type=int, default=DemoSettings.cases,
                   help="phantom cases to write")
    d.add_argument("--epochs", type=int, default=DemoSettings.epochs,
                   help="training epochs of each run")
    d.add_argument("--folds", type=int, default=DemoSettings.folds,
                   help="cross-validation folds of the search")
    d.add_argument("--space", choices=space_names(), default=DemoSettings.space,
                   help="mbnas (2D slices, the paper's space; default) or mbnas-3d (3D "
                        "patches of the phantom volumes)")
    d.set_defaults(handler=cmd_demo)
