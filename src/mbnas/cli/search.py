"""`mbnas search` and `mbnas demo`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from mbnas.cli.sites import (
    add_site_arguments,
    folds_value,
    intensity_settings,
    resolve_split,
)
from mbnas.cli.speed import (
    add_speed_arguments,
    guard_search,
    print_estimate,
    search_estimate,
)
from mbnas.cli.volume import add_volume_arguments, volume_flags
from mbnas.commands.demo.settings import DemoSettings
from mbnas.costs.registry import limit_figures, objective_names
from mbnas.errors import ConfigError
from mbnas.nn import INITS
from mbnas.scoring.registry import DEFAULT_SCORING, SCORINGS, scoring_names
from mbnas.spaces.registry import DEFAULT_SPACE, FIXED_BLOCKS, space_names
from mbnas.strategies import DEFAULT_STRATEGY, strategy_definition, strategy_names
from mbnas.strategies.options import parse_assignments
from mbnas.training.executors import DEFAULT_EXECUTOR, executor_names
from mbnas.training.protocol import PAPER, get_protocol, protocol_names, resolve_preset

# Command-line flags that map onto protocol fields.
_PROTOCOL_FLAGS = ("epochs", "folds", "batch_size", "image_size", "lr", "init")


def add_protocol_arguments(p: argparse.ArgumentParser, seeds: bool = True) -> None:
    """The protocol flags; ``seeds=False`` for a command that trains one seed (train)."""
    p.add_argument("--protocol", choices=protocol_names(), default=None,
                   help="protocol preset: 'paper' (the default: paper-prostate or "
                        "paper-spleen by the dataset's name, paper-spleen for other "
                        "datasets), one of those two, or 'quick' (small and fast, for "
                        "trying the tool)")
    p.add_argument("--epochs", type=int, help="training epochs of every run")
    p.add_argument("--folds", type=folds_value,
                   help="cross-validation folds: a number, or 'site' (one fold per "
                        "held-out site: the score becomes held-out-site Dice)")
    if seeds:
        p.add_argument("--seeds", type=int, help="network initialisations per fold")
    p.add_argument("--batch-size", type=int, help="training batch size (slices)")
    p.add_argument("--image-size", type=int,
                   help="in-plane size slices are resampled to (pixels)")
    p.add_argument("--lr", type=float, help="initial learning rate (poly decay)")
    p.add_argument("--init", choices=INITS,
                   help="weight initialisation: default (PyTorch's; the authors' mixed-block "
                        "class) or he (He-normal; their VGG-only class, with --block vgg2)")
    p.add_argument("--intensity-augment", choices=("off", "robust"), dest="intensity",
                   help="intensity augmentation for robustness to other sites (gamma, "
                        "contrast, bias field, noise, blur); 'robust': training/intensity.py's "
                        "ROBUST values (default: the preset's, off)")
    p.add_argument("--normalisation", metavar="SCHEME[,SCHEME..]",
                   help="intensity normalisation per channel (or one for all): default, ct, "
                        "zscore or percentile (default: CT scheme for CT, z-score otherwise)")
    p.add_argument("--target-spacing", metavar="MM|median",
                   help="resample slices in-plane to this spacing (mm; 'median': the "
                        "dataset's median), then crop (a window placed to keep each case's "
                        "labels) or pad to the image size (default: the preset's, 0: resize "
                        "each slice to the image size)")
    p.add_argument("--allow-cropped-labels", action="store_true", default=None,
                   help="go on when the --target-spacing window drops all of a case's "
                        "labelled voxels (default: an error naming the case)")
    p.add_argument("--foreground-fraction", type=float, metavar="F",
                   help="fraction of every batch drawn from slices with foreground "
                        "(nnU-Net: 0.33; default: the preset's, 0)")
    add_volume_arguments(p)


def add_executor_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--executor", choices=executor_names(),
                   help=f"where training runs execute (default: {DEFAULT_EXECUTOR}, in this "
                        "process)")
    p.add_argument("--threads", type=int,
                   help="CPU threads per training run, in either executor (default: the "
                        "CPUs this process may use (affinity, cgroup quota, "
                        "SLURM_CPUS_PER_TASK, OMP_NUM_THREADS) divided by the runs at "
                        "once; --cpus-per-run on Ray); equal values give bit-identical "
                        "results across executors")
    p.add_argument("--address", help="Ray cluster address: 'auto' or HOST:PORT "
                   "(default: start a local Ray instance)")
    p.add_argument("--cpus-per-run", type=float, help="Ray: CPUs reserved per training run")
    p.add_argument("--gpus-per-run", type=float,
                   help="Ray: GPUs per training run; fractions share a GPU (e.g. 0.25)")


#: Examples of limit values in ``--help``, by figure (others: none).
_LIMIT_EXAMPLES = {"params": "2M", "macs": "50M", "memory": "2G"}


def add_cost_arguments(p: argparse.ArgumentParser) -> None:
    """Objectives and a ``--max-<name>`` flag per registered cost figure that can be a limit
    (mbnas.costs.registry.COSTS); amounts take K/M/G."""
    p.add_argument("--objectives", help="dice (default), or dice and any of "
                   f"{', '.join(objective_names())}, e.g. dice,macs: Pareto local search")
    for name, figure in limit_figures().items():
        unit = f" ({figure.unit})" if figure.unit else ""
        example = f", e.g. {_LIMIT_EXAMPLES[name]}" if name in _LIMIT_EXAMPLES else ""
        p.add_argument(figure.flag, dest=figure.limit_field,
                       help=f"most {name}{unit}: {figure.about}{example}")
    p.add_argument("--latency-device", help="where latency is timed: cpu (default), cuda")


def ray_settings(args: argparse.Namespace, base: dict[str, Any]) -> dict[str, Any]:
    """Ray options: config file's ``ray`` section <- command-line flags."""
    ray = dict(base.get("ray") or {})
    for flag, key in (("address", "address"), ("cpus_per_run", "cpus_per_run"),
                      ("gpus_per_run", "gpus_per_run")):
        if getattr(args, flag, None) is not None:
            ray[key] = getattr(args, flag)
    return ray


def protocol_settings(args: argparse.Namespace, base: dict[str, Any],
                      data_dir: str | Path | None = None) -> dict[str, Any]:
    """Protocol dict: preset <- config file's protocol section <- command-line flags.

    ``paper`` resolves to a preset by the name of the dataset in ``data_dir``, and says
    which on stderr.
    """
    name = args.protocol or base.pop("protocol_preset", None) or PAPER
    file_values = base.get("protocol", {}) or {}
    flags = {k: getattr(args, k) for k in _PROTOCOL_FLAGS if getattr(args, k) is not None}
    if flags.get("folds") == "site":
        raise ConfigError("--folds site is for mbnas search and evaluate (give a number here)")
    if getattr(args, "seeds", None) is not None:
        flags["seeds"] = list(range(args.seeds))
    if getattr(args, "supernet_epochs", None) is not None:
        flags["supernet_epochs"] = args.supernet_epochs
    if getattr(args, "intensity", None) is not None:
        flags["intensity"] = intensity_settings(args.intensity)
    if getattr(args, "normalisation", None) is not None:
        flags["normalisation"] = [n.strip() for n in args.normalisation.split(",")]
    flags.update(real_data_flags(args, data_dir))
    name, note = resolve_preset(name, data_dir)
    if note is not None:
        # Information, so on stdout (stderr is for errors); a YAML comment, so that the
        # output of --dry-run stays valid YAML.
        print(f"# {note}", flush=True)
    if "volume" in flags:  # the flags refine the config file's volume section
        flags["volume"] = {**(file_values.get("volume") or {}), **flags["volume"]}
    return get_protocol(name, **{**file_values, **flags}).to_dict()


def real_data_flags(args: argparse.Namespace, data_dir: str | Path | None) -> dict[str, Any]:
    """``target_spacing`` and ``foreground_fraction`` from the flags given; 'median'
    becomes the dataset's median in-plane spacing, so the protocol key records the mm."""
    flags: dict[str, Any] = {}
    value = getattr(args, "target_spacing", None)
    if value is not None:
        if value.strip().casefold() == "median":
            if data_dir is None:
                raise ConfigError("--target-spacing median needs a dataset")
            from mbnas.data.spacing import dataset_median_spacing

            flags["target_spacing"] = dataset_median_spacing(data_dir)
            print(f"# target spacing median -> {flags['target_spacing']} mm", flush=True)
        else:
            try:
                flags["target_spacing"] = float(value)
            except ValueError:
                raise ConfigError(f"--target-spacing: {value!r} is not a number of mm or "
                                  "'median'") from None
    if getattr(args, "foreground_fraction", None) is not None:
        flags["foreground_fraction"] = args.foreground_fraction
    if getattr(args, "allow_cropped_labels", None):
        flags["allow_cropped_labels"] = True
    volume = volume_flags(args)
    if volume:
        flags["volume"] = volume
    return flags


def read_config_file(path: str | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        value = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: a config file must be a mapping of settings")
    return value


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
