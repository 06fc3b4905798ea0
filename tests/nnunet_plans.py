"""A minimal nnU-Net v2 plans file with a ``3d_fullres`` configuration, for the tests that
export a found 3D network as a configuration inheriting it."""

from __future__ import annotations

import json
from pathlib import Path


def write_3d_plans(path: Path, dataset: str, patch_size: list[int],
                   strides: list[list[int]]) -> Path:
    """Write plans naming ``dataset`` whose ``3d_fullres`` has ``patch_size`` and a plain
    U-Net of ``strides``; return ``path``."""
    plans = {"dataset_name": dataset, "plans_name": "nnUNetPlans",
             "configurations": {"3d_fullres": {
                 "data_identifier": "nnUNetPlans_3d_fullres", "batch_size": 2,
                 "patch_size": patch_size,
                 "architecture": {
                     "network_class_name":
                         "dynamic_network_architectures.architectures.unet.PlainConvUNet",
                     "arch_kwargs": {"n_stages": len(strides), "strides": strides},
                     "_kw_requires_import": []}}}}
    path.write_text(json.dumps(plans))
    return path
