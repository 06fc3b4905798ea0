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
The plans file is written atomically after a copy of the previous version is kept as
``<plans>.mbnas-backup.json``; an existing configuration name is refused unless ``force``.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mbnas.errors import ConfigError, GenotypeError
from mbnas.export.nnunet import CLASS_NAME
from mbnas.io import atomic_write, atomic_write_json
from mbnas.space import Genotype, load_genotype
from mbnas.space.genotype import BASE_CHANNELS, level_text

DEFAULT_NAME = "2d_mbnas"
PARENT = "2d"
_AUTHORS_STRING = re.compile(r"^\d{40}$")


@dataclass(frozen=True)
class ExportedConfiguration:
    """What ``mbnas export nnunet`` wrote.

    Attributes:
        plans: The plans file changed.
        backup: The copy of its previous version.
        name: The configuration added.
        patch_size: The inherited patch size.
        replaced: Whether a configuration of that name was overwritten (``force``).
    """

    plans: Path
    backup: Path
    name: str
    patch_size: tuple[int, ...]
    replaced: bool


def require_nnunet() -> None:
    """Refuse early when nnunetv2 is not installed: the configuration would be unusable."""
    if importlib.util.find_spec("nnunetv2") is None:
        raise ConfigError("nnU-Net v2 is not installed (no module nnunetv2); install it with "
                          "`pip install 'mbnas[nnunet]'`")


def genotype_from_source(source: str) -> Genotype:
    """The genotype of a search run folder, a genotype/best.json file or an authors' string.

    Raises:
        ConfigError / GenotypeError: naming the source and the problem.
    """
    path = Path(source)
    if path.is_dir():
        from mbnas.driver.search_runs import read_search_run

        return Genotype.from_dict(read_search_run(path).genotype)
    if path.is_file():
        return load_genotype(path)
    if _AUTHORS_STRING.match(source):
        from mbnas.space.authors import from_authors_string

        return from_authors_string(source)
    raise ConfigError(f"{source}: not a search run folder, a genotype JSON file or the "
                      "authors' 40-digit genotype string")


def read_plans(path: Path) -> dict[str, Any]:
    """Read a plans file and check it is nnU-Net v2's, with a usable ``2d`` configuration."""
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
    if PARENT not in configs:
        raise ConfigError(f"{path}: has no '{PARENT}' configuration to inherit from "
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


def _parent_geometry(plans: dict[str, Any], path: Path) -> tuple[list[int], list[list[int]]]:
    parent = _resolved(plans["configurations"], PARENT, path)
    try:
        patch = [int(v) for v in parent["patch_size"]]
        strides = [[int(v) for v in s] for s in parent["architecture"]["arch_kwargs"]["strides"]]
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"{path}: configuration '{PARENT}' has no patch_size and "
                          "architecture.arch_kwargs.strides; not an nnU-Net v2 plans "
                          "file") from None
    if len(patch) != 2 or not strides or any(len(s) != 2 for s in strides):
        raise ConfigError(f"{path}: configuration '{PARENT}' is not 2D (patch size {patch})")
    return patch, strides


def add_configuration(plans_path: str | Path, genotype: Genotype, *, name: str = DEFAULT_NAME,
                      base_channels: int = BASE_CHANNELS, force: bool = False,
                      source: str = "") -> ExportedConfiguration:
    """Add a configuration that trains ``genotype`` to an nnU-Net v2 plans file.

    Args:
        plans_path: ``nnUNet_preprocessed/DatasetXXX_Name/nnUNetPlans.json``.
        genotype: The network.
        name: The new configuration's name.
        base_channels: Channels after the stem (the paper: 32).
        force: Replace an existing configuration of that name.
        source: Where the genotype came from, recorded in the configuration.

    Raises:
        ConfigError: If nnU-Net is missing, the plans file is not nnU-Net's, the name
            exists (without ``force``) or the patch size does not fit the genotype's depth.
            Nothing is written then.
    """
    require_nnunet()
    path = Path(plans_path)
    plans = read_plans(path)
    configs = plans["configurations"]
    if not name or name == PARENT:
        raise ConfigError(f"configuration name {name!r} is not allowed; choose a new name")
    replaced = name in configs
    if replaced and not force:
        raise ConfigError(f"{path}: configuration '{name}' exists already; pass --force to "
                          "replace it or choose another --name")
    patch, strides = _parent_geometry(plans, path)
    factor = 2 ** genotype.depth()
    if any(p % factor for p in patch):
        raise GenotypeError(
            f"{path}: the '{PARENT}' patch size {patch} is not divisible by {factor}: the "
            f"genotype reaches level {genotype.depth()} ({level_text(genotype.depth())}); "
            "choose a genotype with fewer down cells or plan a patch size divisible by "
            f"{factor}")
    if isinstance(base_channels, bool) or not isinstance(base_channels, int) \
            or base_channels < 4:
        raise ConfigError(f"base channels must be an integer >= 4, got {base_channels!r}")
    configs[name] = {
        "inherits_from": PARENT,
        "architecture": {
            "network_class_name": CLASS_NAME,
            "arch_kwargs": {"genotype": genotype.to_dict(), "base_channels": base_channels,
                            "strides": strides},
            "_kw_requires_import": [],
        },
        "mbnas": {"genotype_key": genotype.key, "source": source},
    }
    backup = path.with_name(f"{path.stem}.mbnas-backup.json")
    with path.open("rb") as src:
        atomic_write(backup, lambda f: shutil.copyfileobj(src, f))
    atomic_write_json(path, plans)
    return ExportedConfiguration(path, backup, name, tuple(patch), replaced)


__all__ = ["DEFAULT_NAME", "ExportedConfiguration", "add_configuration",
           "genotype_from_source", "read_plans", "require_nnunet"]
