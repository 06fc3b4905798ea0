"""`mbnas search` and `mbnas demo`."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import yaml

from mbnas.cli.speed import (
    add_speed_arguments,
    guard_search,
    print_estimate,
    search_estimate,
)
from mbnas.engine.config import PROTOCOLS, get_protocol
from mbnas.errors import ConfigError

# Command-line flags that map onto protocol fields.
_PROTOCOL_FLAGS = ("epochs", "folds", "batch_size", "image_size", "lr")


def add_protocol_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--protocol", choices=sorted(PROTOCOLS), default=None,
                   help="protocol preset: 'paper' (the paper's numbers, the default) or "
                        "'quick' (small and fast, for trying the tool)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--folds", type=int)
    p.add_argument("--seeds", type=int, help="network initialisations per fold")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--image-size", type=int)
    p.add_argument("--lr", type=float)


def add_executor_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--executor", choices=("inprocess", "ray"),
                   help="where training runs execute (default: in this process)")
    p.add_argument("--threads", type=int,
                   help="CPU threads per training run, in either executor (default: all "
                        "cores in process, --cpus-per-run on Ray); equal values give "
                        "bit-identical results across executors")
    p.add_argument("--address", help="Ray cluster address: 'auto' or HOST:PORT "
                   "(default: start a local Ray instance)")
    p.add_argument("--cpus-per-run", type=float, help="Ray: CPUs reserved per training run")
    p.add_argument("--gpus-per-run", type=float,
                   help="Ray: GPUs per training run; fractions share a GPU (e.g. 0.25)")


def ray_settings(args: argparse.Namespace, base: dict[str, Any]) -> dict[str, Any]:
    """Ray options: config file's ``ray`` section <- command-line flags."""
    ray = dict(base.get("ray") or {})
    for flag, key in (("address", "address"), ("cpus_per_run", "cpus_per_run"),
                      ("gpus_per_run", "gpus_per_run")):
        if getattr(args, flag, None) is not None:
            ray[key] = getattr(args, flag)
    return ray


def protocol_settings(args: argparse.Namespace, base: dict[str, Any]) -> dict[str, Any]:
    """Protocol dict: preset <- config file's protocol section <- command-line flags."""
    name = args.protocol or base.pop("protocol_preset", None) or "paper"
    file_values = base.get("protocol", {}) or {}
    flags = {k: getattr(args, k) for k in _PROTOCOL_FLAGS if getattr(args, k) is not None}
    if args.seeds is not None:
        flags["seeds"] = list(range(args.seeds))
    return get_protocol(name, **{**file_values, **flags}).to_dict()


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


def search_config(args: argparse.Namespace):  # noqa: ANN201
    from mbnas.driver.search import SearchConfig

    settings = read_config_file(args.config)
    protocol = protocol_settings(args, settings)
    fields = {f.name for f in dataclasses.fields(SearchConfig)}
    for name in fields - {"protocol", "data_dir", "ray"}:
        value = getattr(args, name, None)
        if value is not None:
            settings[name] = value
    if args.data_dir is not None:
        settings["data_dir"] = args.data_dir
    if "data_dir" not in settings:
        raise ConfigError("no dataset given: pass DATA_DIR or set data_dir in the config file")
    settings["data_dir"] = str(Path(settings["data_dir"]).resolve())
    settings["protocol"] = protocol
    settings["ray"] = ray_settings(args, settings)
    return SearchConfig.from_dict(settings)


def cmd_search(args: argparse.Namespace) -> int:
    from mbnas.driver.progress import SearchProgress
    from mbnas.driver.search import run_search
    from mbnas.engine.runs import make_executor

    config = search_config(args)
    if args.estimate:
        return print_estimate(search_estimate(config), "search")
    guard_search(config)
    executor = make_executor(config.executor, config.ray, config.threads,
                             config.runs_per_device, config.fuse)
    if hasattr(executor, "start"):
        executor.start()  # connect and print the Ray dashboard before the live display
    try:
        with SearchProgress(config.budget) as progress:
            outcome = run_search(config, args.out, hooks=progress, executor=executor,
                                 on_evaluation=progress.evaluation_done)
    finally:
        if hasattr(executor, "close"):
            executor.close()
    print(f"{'resumed' if outcome.resumed else 'finished'} search in {outcome.folder}: "
          f"{outcome.n_evaluated} evaluations, best score {outcome.best_score:.4f}")
    print(f"best architecture: {outcome.folder / 'best.json'}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from mbnas.driver.demo import run_demo

    run_demo(Path(args.out), budget=args.budget)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="search for the best architecture on a dataset")
    p.add_argument("data_dir", nargs="?", help="MSD or nnU-Net dataset folder")
    p.add_argument("--out", required=True, help="run folder (created, or resumed)")
    p.add_argument("--config", help="YAML file with any of the settings below")
    p.add_argument("--space", choices=("mbnas", "macro", "micro", "bilevel"))
    p.add_argument("--strategy", choices=("local", "random"))
    p.add_argument("--budget", type=int, help="evaluations (architectures trained); paper: 150")
    p.add_argument("--seed", type=int, help="seed of the search and of the folds")
    p.add_argument("--start", help="'random' or a preset name such as 'unet'")
    p.add_argument("--max-depth", type=int, dest="max_depth")
    p.add_argument("--device", help="auto, cpu or cuda")
    p.add_argument("--cache", dest="cache_dir", help="preprocessing cache folder")
    add_executor_arguments(p)
    add_protocol_arguments(p)
    add_speed_arguments(p, race=True)
    p.set_defaults(handler=cmd_search)

    d = sub.add_parser("demo", help="phantom data + a short search, on the CPU in minutes")
    d.add_argument("--out", default="runs/demo")
    d.add_argument("--budget", type=int, default=8)
    d.set_defaults(handler=cmd_demo)
