"""``mbnas export nnunet``: add a found network to an nnU-Net v2 plans file.

The new configuration (``2d_mbnas`` by default) inherits nnU-Net's ``2d`` configuration
(``inherits_from``), so it reuses that configuration's preprocessed data, patch size,
batch size, spacing and normalisation, and only replaces ``architecture``:

.. code-block:: json

    "2d_mbnas": {
      "inherits_from": "2d",
      "architecture": {
        "network_class_name": "mbnas.export.nnunet.MBNASNetwork",
        "arch_kwargs": {"genotype": {...}, "base_channels": 32, "strides": [[1, 1], ...]},
        "_kw_requires_import": []
      },
      "mbnas": {"genotype_key": "...", "source": "..."}
    }

The user's next command is nnU-Net's own ``nnUNetv2_train DATASET 2d_mbnas FOLD``.
The plans file is written atomically after a copy of the previous version is kept: the
first as ``<plans>.mbnas-backup.json`` (nnU-Net's original plans, never overwritten), later
ones as ``<plans>.mbnas-backup.2.json``, ``.3`` ...

Refused, with nothing written:

* a name nnU-Net uses itself (:data:`NNUNET_CONFIGURATIONS`), one another configuration
  inherits from, or one mbnas did not write (even with ``force``, which only replaces a
  configuration of an earlier export); a name nnU-Net cannot use as a folder name
  (anything outside ``[A-Za-z0-9_.-]``, or ``..``);
* an existing name without ``force``;
* more than :data:`MAX_BASE_CHANNELS` base channels, or a network whose estimated training
  memory at the plans' patch and batch size exceeds :data:`MAX_TRAINING_BYTES`;
* a search made on a dataset whose channels or classes differ from the plans' dataset
  (its ``dataset.json`` beside the plans file), unless ``force``.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mbnas.errors import ConfigError, GenotypeError
from mbnas.export.nnunet import CLASS_NAME
from mbnas.io import atomic_write, atomic_write_json
from mbnas.spaces.mbnas import Genotype, load_genotype
from mbnas.spaces.mbnas.genotype import BASE_CHANNELS, level_text

DEFAULT_NAME = "2d_mbnas"
PARENT = "2d"
#: The configuration a 3D network inherits, and its default name.
PARENT_3D, DEFAULT_NAME_3D = "3d_fullres", "3d_fullres_mbnas"
#: The configurations nnU-Net v2's planners write; never replaced.
NNUNET_CONFIGURATIONS = ("2d", "3d_fullres", "3d_lowres", "3d_cascade_fullres")
#: Widest network exported: 16 times the paper's 32 (nnU-Net's 2D nets stop at 512 features).
MAX_BASE_CHANNELS = 512
#: Most estimated training memory (activations of a batch, weights, gradients, momentum):
#: the largest single GPUs nnU-Net trains on hold 80 GB.
MAX_TRAINING_BYTES = 80 * 10**9
_AUTHORS_STRING = re.compile(r"^\d{40}$")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


@dataclass(frozen=True)
class ExportedConfiguration:
    """What ``mbnas export nnunet`` wrote.

    Attributes:
        plans: The plans file changed.
        backup: The copy of its previous version.
        name: The configuration added.
        patch_size: The inherited patch size.
        replaced: Whether a configuration of that name was overwritten (``force``).
        notes: What the user should know (a changed width, the memory estimate, a
            dataset mismatch passed with ``force``).
    """

    plans: Path
    backup: Path
    name: str
    patch_size: tuple[int, ...]
    replaced: bool
    notes: tuple[str, ...] = ()


def require_nnunet() -> None:
    """Refuse early when nnunetv2 is not installed: the configuration would be unusable."""
    if importlib.util.find_spec("nnunetv2") is None:
        raise ConfigError("nnU-Net v2 is not installed (no module nnunetv2); install it with "
                          "`pip install 'mbnas[nnunet]'`")


@dataclass(frozen=True)
class SearchedWith:
    """What the search of an exported genotype ran on: its dataset and width."""

    data_dir: str
    base_channels: int | None
    spatial_dims: int = 2


def genotype_from_source(source: str) -> tuple[Genotype, SearchedWith | None]:
    """The genotype of a search run folder, a genotype/best.json file or an authors' string,
    and, for a run folder, the dataset and width it was searched with.

    Raises:
        ConfigError / GenotypeError: naming the source and the problem.
    """
    path = Path(source)
    if path.is_dir():
        from mbnas.commands.common.search_runs import read_search_run

        run = read_search_run(path)
        protocol = run.config.get("protocol") or {}
        width = protocol.get("base_channels")
        return Genotype.from_dict(run.genotype), SearchedWith(
            run.data_dir, width if isinstance(width, int) else None,
            3 if protocol.get("volume") else 2)
    if path.is_file():
        return load_genotype(path), None
    if _AUTHORS_STRING.match(source):
        from mbnas.spaces.mbnas.authors import from_authors_string

        return from_authors_string(source), None
    raise ConfigError(f"{source}: not a search run folder, a genotype JSON file or the "
                      "authors' 40-digit genotype string")


def read_plans(path: Path, parent: str = PARENT) -> dict[str, Any]:
    """Read a plans file and check it is nnU-Net v2's, with a usable ``parent``
    configuration (``2d``, or ``3d_fullres`` for a 3D network)."""
    if not path.is_file():
        raise ConfigError(f"plans file {path} does not exist (nnUNetv2_plan_and_preprocess "
                          "writes nnUNet_preprocessed/DatasetXXX_Name/nnUNetPlans.json)")
    try:
        plans = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable JSON plans file ({exc})") from None
    configs = plans.get("configurations") if isinstance(plans, dict) else None
    if not isinstance(configs, dict) or "plans_name" not in plans:
        raise ConfigError(f"{path}: not an nnU-Net v2 plans file (no 'plans_name' and "
                          "'configurations')")
    if parent not in configs:
        raise ConfigError(f"{path}: has no '{parent}' configuration to inherit from "
                          f"(it has {', '.join(configs) or 'none'})")
    return plans


def _resolved(configs: dict[str, Any], name: str, path: Path) -> dict[str, Any]:
    """A configuration with its ``inherits_from`` chain applied (as nnU-Net does)."""
    seen: list[str] = []
    chain: list[dict[str, Any]] = []
    while name is not None:
        if name in seen or name not in configs:
            raise ConfigError(f"{path}: configuration '{name}' is missing or inherits in a "
                              "circle")
        seen.append(name)
        chain.append(configs[name])
        name = configs[name].get("inherits_from")
    out: dict[str, Any] = {}
    for config in reversed(chain):
        out.update(config)
    return out


def _parent_geometry(plans: dict[str, Any], path: Path, name: str = PARENT, dims: int = 2
                     ) -> tuple[list[int], list[list[int]]]:
    parent = _resolved(plans["configurations"], name, path)
    try:
        patch = [int(v) for v in parent["patch_size"]]
        strides = [[int(v) for v in s] for s in parent["architecture"]["arch_kwargs"]["strides"]]
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"{path}: configuration '{name}' has no patch_size and "
                          "architecture.arch_kwargs.strides; not an nnU-Net v2 plans "
                          "file") from None
    if len(patch) != dims or not strides or any(len(s) != dims for s in strides):
        raise ConfigError(f"{path}: configuration '{name}' is not {dims}D (patch size {patch})")
    return patch, strides


def check_name(name: str, configs: dict[str, Any], path: Path, force: bool) -> bool:
    """Refuse a configuration name that is unsafe or belongs to nnU-Net; True when an
    earlier export's configuration of that name is replaced."""
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise ConfigError(f"configuration name {name!r} is not allowed: nnU-Net makes folder "
                          "names of it, so use 1-100 of A-Z a-z 0-9 _ . - (no '..')")
    heirs = sorted(n for n, c in configs.items()
                   if isinstance(c, dict) and c.get("inherits_from") == name)
    if name in NNUNET_CONFIGURATIONS or heirs:
        why = (f"{', '.join(heirs)} inherit(s) from it" if heirs
               else "it is one of nnU-Net's own configurations")
        raise ConfigError(f"{path}: configuration name '{name}' is refused even with --force: "
                          f"{why}; choose another --name")
    if name not in configs:
        return False
    if not isinstance(configs[name], dict) or "mbnas" not in configs[name]:
        raise ConfigError(f"{path}: configuration '{name}' was not written by mbnas; it is "
                          "not replaced even with --force; choose another --name")
    if not force:
        raise ConfigError(f"{path}: configuration '{name}' exists already; pass --force to "
                          "replace it or choose another --name")
    return True


def backup_path(path: Path) -> Path:
    """Where this export keeps the plans it replaces: the first backup is never overwritten."""
    first = path.with_name(f"{path.stem}.mbnas-backup.json")
    k = 2
    backup = first
    while backup.exists():
        backup = path.with_name(f"{path.stem}.mbnas-backup.{k}.json")
        k += 1
    return backup


def training_bytes(genotype: Genotype, in_channels: int, n_classes: int, base_channels: int,
                   patch: list[int], batch_size: int,
                   strides: list[list[int]] | None = None) -> int:
    """Estimated memory of one nnU-Net training step: a batch's activations, plus weights,
    gradients and SGD momentum (float32).

    The network is measured at the smallest input the genotype takes (2x2 at its deepest
    level, a batch of 2) and scaled: activations grow linearly with the patch area and the
    batch. Call it only with a bounded width (:data:`MAX_BASE_CHANNELS`).
    """
    from mbnas.costs.measure import count_parameters, peak_activation_memory
    from mbnas.spaces.mbnas import build_network

    dims = len(patch)
    build: dict[str, Any] = {}
    if dims == 3:  # per axis: twice the product of the strides the genotype reaches
        build = {"spatial_dims": 3, "strides": [tuple(s) for s in (strides or [])[1:]]}
        sides = [2 * math.prod(s[a] for s in build["strides"][:genotype.depth()])
                 for a in range(3)]
    else:
        sides = [2 * 2 ** genotype.depth()] * 2
    net = build_network(genotype, in_channels, n_classes, base_channels, **build)
    per_sample = peak_activation_memory(net, (2, in_channels, *sides)) / 2
    activations = batch_size * per_sample * math.prod(patch) / math.prod(sides)
    return int(activations + 3 * 4 * count_parameters(net))


def _dataset_shape(dataset_json: Path) -> tuple[list[str], list[str]] | None:
    """Channel names and class names (by label id) of an nnU-Net or MSD dataset.json."""
    try:
        meta = json.loads(dataset_json.read_text(encoding="utf-8"))
        channels = meta.get("channel_names", meta.get("modality"))
        labels = meta["labels"]
        by_id = ({int(v): str(k) for k, v in labels.items()} if all(
            isinstance(v, int) for v in labels.values())
            else {int(k): str(v) for k, v in labels.items()})
        return ([str(channels[k]) for k in sorted(channels, key=int)],
                [by_id[k] for k in sorted(by_id)])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def dataset_differences(search_data: str | Path, plans_path: Path) -> list[str]:
    """How the searched dataset differs from the plans' dataset (channels, classes);
    empty when they match or either is unreadable."""
    ours = _dataset_shape(Path(search_data) / "dataset.json")
    theirs = _dataset_shape(plans_path.parent / "dataset.json")
    if ours is None or theirs is None:
        return []
    diffs = []
    for what, a, b in (("channels", ours[0], theirs[0]), ("classes", ours[1], theirs[1])):
        if a != b:
            diffs.append(f"{what} {', '.join(a)} searched, {', '.join(b)} in the plans' "
                         "dataset")
    return diffs


def add_configuration(plans_path: str | Path, genotype: Genotype, *, name: str | None = None,
                      base_channels: int = BASE_CHANNELS, force: bool = False,
                      source: str = "", searched: SearchedWith | None = None,
                      spatial_dims: int | None = None) -> ExportedConfiguration:
    """Add a configuration that trains ``genotype`` to an nnU-Net v2 plans file.

    Args:
        plans_path: ``nnUNet_preprocessed/DatasetXXX_Name/nnUNetPlans.json``.
        genotype: The network.
        name: The new configuration's name.
        base_channels: Channels after the stem (the paper: 32).
        force: Replace an earlier export's configuration of that name; export a search
            of a dataset with other channels or classes.
        source: Where the genotype came from, recorded in the configuration.
        searched: The search's dataset and width, when the genotype comes from a run.
        spatial_dims: 2 (inherits ``2d``) or 3 (inherits ``3d_fullres``, whose planned
            strides the network's levels use); default: the search's, else 2.

    Raises:
        ConfigError: If nnU-Net is missing, the plans file is not nnU-Net's, the name is
            refused, the width or its memory is too large, the patch size does not fit the
            genotype's depth, or the datasets differ (without ``force``). Nothing is
            written then.
    """
    require_nnunet()
    dims = spatial_dims or (searched.spatial_dims if searched is not None else 2)
    parent_name = PARENT if dims == 2 else PARENT_3D
    if name is None:
        name = DEFAULT_NAME if dims == 2 else DEFAULT_NAME_3D
    path = Path(plans_path)
    plans = read_plans(path, parent_name)
    configs = plans["configurations"]
    replaced = check_name(name, configs, path, force)
    patch, strides = _parent_geometry(plans, path, parent_name, dims)
    if dims == 3 and len(strides) - 1 < genotype.depth():
        raise GenotypeError(f"{path}: '{parent_name}' plans {len(strides) - 1} downsampling "
                            f"levels but the genotype reaches level {genotype.depth()}")
    multiple = ([2 ** genotype.depth()] * 2 if dims == 2 else
                [math.prod(s[a] for s in strides[1:1 + genotype.depth()]) for a in range(3)])
    factor = multiple[0] if dims == 2 else "x".join(map(str, multiple))
    if any(p % m for p, m in zip(patch, multiple, strict=True)):
        raise GenotypeError(
            f"{path}: the '{parent_name}' patch size {patch} is not divisible by {factor}: the "
            f"genotype reaches level {genotype.depth()} ({level_text(genotype.depth())}); "
            "choose a genotype with fewer down cells or plan a patch size divisible by "
            f"{factor}")
    if isinstance(base_channels, bool) or not isinstance(base_channels, int) \
            or not 4 <= base_channels <= MAX_BASE_CHANNELS:
        raise ConfigError(f"base channels must be an integer from 4 to {MAX_BASE_CHANNELS}, "
                          f"got {base_channels!r}")
    notes = []
    if searched is not None:
        diffs = dataset_differences(searched.data_dir, path)
        if diffs and not force:
            raise ConfigError(f"{path}: the search {source} was made on another dataset "
                              f"({'; '.join(diffs)}); pass --force to export it anyway")
        if diffs:
            notes.append(f"exported with --force although {'; '.join(diffs)}")
        if searched.base_channels is not None and searched.base_channels != base_channels:
            notes.append(f"width changed: the search trained {searched.base_channels} base "
                         f"channels, the configuration has {base_channels} (--base-channels)")
    shape = _dataset_shape(path.parent / "dataset.json")
    parent = _resolved(configs, parent_name, path)
    batch = int(parent.get("batch_size", 2)) if isinstance(parent.get("batch_size", 2), int) \
        else 2
    need = training_bytes(genotype, len(shape[0]) if shape else 1,
                          len(shape[1]) if shape else 2, base_channels, patch, batch, strides)
    gb = f"{need / 1e9:.1f} GB"
    if need > MAX_TRAINING_BYTES:
        raise ConfigError(f"{path}: {base_channels} base channels need about {gb} to train at "
                          f"patch size {patch}, batch {batch} (more than "
                          f"{MAX_TRAINING_BYTES / 1e9:.0f} GB); lower --base-channels")
    notes.append(f"estimated training memory {gb} at patch size {patch}, batch {batch}")
    configs[name] = {
        "inherits_from": parent_name,
        "architecture": {
            "network_class_name": CLASS_NAME,
            "arch_kwargs": {"genotype": genotype.to_dict(), "base_channels": base_channels,
                            "strides": strides},
            "_kw_requires_import": [],
        },
        "mbnas": {"genotype_key": genotype.key, "source": source},
    }
    backup = backup_path(path)
    with path.open("rb") as src:
        atomic_write(backup, lambda f: shutil.copyfileobj(src, f))
    atomic_write_json(path, plans)
    return ExportedConfiguration(path, backup, name, tuple(patch), replaced, tuple(notes))


__all__ = ["DEFAULT_NAME", "MAX_BASE_CHANNELS", "MAX_TRAINING_BYTES", "NNUNET_CONFIGURATIONS",
           "ExportedConfiguration", "SearchedWith", "add_configuration", "backup_path",
           "check_name", "dataset_differences", "genotype_from_source", "read_plans",
           "require_nnunet", "training_bytes"]
