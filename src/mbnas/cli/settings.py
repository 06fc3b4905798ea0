"""Flags and settings shared by `mbnas search`, `evaluate` and `train`: the protocol, the
executor and cost flags, and the config file, each merged as preset <- file <- flags."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from mbnas.cli.sites import folds_value, intensity_settings
from mbnas.cli.volume import add_volume_arguments, volume_flags
from mbnas.costs.registry import limit_figures, objective_names
from mbnas.errors import ConfigError
from mbnas.nn import INITS
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
