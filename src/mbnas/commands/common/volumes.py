"""The 3D side of a driver: plan the protocol's volume on the dataset, then load the volumes.

The plan (:mod:`mbnas.data.planning`) is made once per dataset and written into the
protocol, so ``config.yaml`` records it and every run's key depends on it; a resumed
search plans again from the same files and gets the same plan.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from mbnas.data.formats import read_dataset
from mbnas.data.planning import (
    canonical_geometry,
    check_patch,
    check_patch_budget,
    median_geometry,
    plan_patch,
    plan_strides,
    resolve_spacing,
)
from mbnas.data.volumes import VolumeData, VolumePrepConfig, load_volumes
from mbnas.errors import ConfigError
from mbnas.training.protocol import Protocol
from mbnas.training.volume import VolumeConfig


def plan_protocol(protocol: Protocol, data_dir: str | Path, levels: int) -> Protocol:
    """``protocol`` with its volume planned on the dataset (spacing, strides, patch).

    Given values (a patch size, a spacing) are kept and checked; the rest is planned.
    ``protocol.target_spacing`` (``--target-spacing``), when set, is the in-plane target
    spacing; the through-plane one stays the dataset's median.

    Raises:
        ConfigError: for a dataset of 2D images, a patch the strides do not divide or one
            over the memory budget (each saying what would fit).
    """
    vol = protocol.volume or VolumeConfig()
    dataset = read_dataset(data_dir)
    paths = [c.images[0] for c in dataset.cases]
    flat = [p for p in paths if min(canonical_geometry(p)[1]) < 2]
    if flat:
        raise ConfigError(f"{flat[0]}: a 3D space needs volumes, but this dataset holds 2D "
                          f"images ({len(flat)} of {len(paths)} have a single slice); use a "
                          "2D space such as mbnas")
    median, _ = median_geometry(paths)
    given = vol.spacing or ((protocol.target_spacing,) * 2 + (median[2],)
                            if protocol.target_spacing else ())
    spacing = resolve_spacing(given, median)
    strides = vol.strides or plan_strides(spacing, levels)
    if len(strides) < levels:
        raise ConfigError(f"protocol.volume.strides plans {len(strides)} levels but the space "
                          f"reaches {levels}")
    _, shape = median_geometry(paths, spacing)
    budget = (protocol.batch_size, protocol.base_channels, vol.memory_budget_gb)
    if vol.patch_size:
        check_patch(vol.patch_size, strides)
        check_patch_budget(vol.patch_size, spacing, strides, *budget)
        patch = vol.patch_size
    else:
        patch = plan_patch(shape, spacing, strides, *budget)
    return dataclasses.replace(protocol, volume=dataclasses.replace(
        vol, spacing=spacing, strides=tuple(strides), patch_size=tuple(patch)))


def volume_normalisation(data_dir: str | Path, data: VolumeData, protocol: Protocol
                         ) -> dict[str, dict[str, Any]]:
    """Channel name -> scheme dict for a 3D model folder, from the volumes' statistics."""
    from mbnas.data.normalise import resolve_schemes
    from mbnas.inference.model_folder import channel_schemes

    schemes = resolve_schemes(protocol.normalisation, read_dataset(data_dir).ct_channels)
    return channel_schemes(data.channel_names, schemes, data.statistics.get("ct", {}))


def training_volumes(data_dir: str | Path, cache_dir: str | Path | None,
                     protocol: Protocol) -> VolumeData:
    """The dataset's volumes at the protocol's planned spacing, preprocessed once and cached."""
    from mbnas.commands.common.dataset import default_cache_dir

    if protocol.volume is None or not protocol.volume.planned:
        raise ConfigError("the protocol's volume is not planned (plan_protocol first)")
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    sx, sy, sz = protocol.volume.spacing  # planned: three values (VolumeConfig checks)
    return load_volumes(data_dir, cache, VolumePrepConfig(
        spacing=(sx, sy, sz), normalisation=protocol.normalisation))
