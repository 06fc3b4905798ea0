"""Synthetic datasets that exercise the same code as real data: `mbnas phantom`.

A phantom is written exactly like an MSD v1 task (or an nnU-Net v2 raw dataset): NIfTI
volumes with realistic geometry (anisotropic spacing, voxel axes stored flipped like
DICOM's LPS order and slightly rotated, so reorientation matters), organ-like structures
of random shape, size and position, noise and a smooth bias field. Sites (scanner groups)
differ in intensity scale, contrast, noise, bias field strength, in-plane field of view,
in-plane resolution and slice thickness (recorded in ``dataset.json``). The spacing is
that of the real data (spleen about 0.8 x 0.8 x 5 mm, prostate 0.6 x 0.6 x 3.6-4 mm)
whatever the grid size, so a small phantom covers a smaller field of view.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from mbnas.data.anatomy import (
    NEUTRAL_SITE,
    SiteEffect,
    draw_site,
    prostate_case,
    spleen_case,
)
from mbnas.errors import ConfigError
from mbnas.io import atomic_write_json, naming

TASKS = ("spleen", "prostate")
FORMATS = ("msd", "nnunet")
DEFAULT_SHAPE = (64, 64, 24)
# The key that marks a folder as an mbnas phantom (so it may be replaced by a new one).
PHANTOM_KEY = "mbnas_phantom"

_TASK_INFO: dict[str, dict[str, Any]] = {
    "spleen": {
        "name": "Spleen", "channels": ("CT",), "labels": ("background", "spleen"),
        "case": "spleen_{}", "in_plane": (0.7, 0.9), "through": (2.5, 5.0),
    },
    "prostate": {
        "name": "Prostate", "channels": ("T2", "ADC"), "labels": ("background", "PZ", "TZ"),
        "case": "prostate_{:02d}", "in_plane": (0.6, 0.65), "through": (3.6, 4.0),
    },
}


def make_phantom(out: str | Path, task: str, n_cases: int, seed: int, sites: int = 1,
                 shape: tuple[int, int, int] = DEFAULT_SHAPE, fmt: str = "msd",
                 min_slices: int | None = None) -> Path:
    """Write a synthetic dataset folder.

    Args:
        out: The dataset folder to create. It must be absent, empty, or an earlier
            phantom (which is then replaced).
        task: ``"spleen"`` (CT, one label) or ``"prostate"`` (T2 + ADC, labels PZ, TZ).
        n_cases: Number of training cases.
        seed: Random seed; the same arguments give byte-identical arrays.
        sites: Number of scanner groups; case ``i`` belongs to site ``i % sites``. With
            more than one, the site is recorded in ``dataset.json``.
        shape: (X, Y, Z) in-plane size and the largest number of slices per case.
        fmt: ``"msd"`` (MSD v1 layout) or ``"nnunet"`` (nnU-Net v2 raw layout).
        min_slices: Fewest slices per case; each case draws its slice count from
            ``min_slices..Z``. Defaults to ``Z // 2`` (at least 2).

    Returns:
        The dataset folder.

    Raises:
        ConfigError: for invalid arguments or an ``out`` that holds other data.
    """
    _validate(task, n_cases, sites, shape, fmt)
    if seed < 0:
        raise ConfigError(f"the seed must be a non-negative integer, got {seed}")
    z_max = int(shape[2])
    z_min = max(2, z_max // 2) if min_slices is None else int(min_slices)
    if not 1 <= z_min <= z_max:
        raise ConfigError(f"min_slices must be between 1 and the shape's Z ({z_max}), "
                          f"got {min_slices}")
    out = Path(out)
    _check_out(out)
    info = _TASK_INFO[task]
    site_effects = [
        draw_site(np.random.default_rng([seed, 1, k]), task) if sites > 1 else NEUTRAL_SITE
        for k in range(sites)
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; a dataset is shared
        (tmp / "imagesTr").mkdir()
        (tmp / "labelsTr").mkdir()
        entries = []
        for i in range(n_cases):
            case_id = info["case"].format(i + 1 if task == "spleen" else i)
            site = i % sites
            rng = np.random.default_rng([seed, 0, i])
            n_slices = int(rng.integers(z_min, z_max + 1))
            spacing = (float(rng.uniform(*info["in_plane"])),) * 2 + (
                float(rng.choice(info["through"])) if task == "spleen"
                else float(rng.uniform(*info["through"])),)
            spacing, case_shape = site_geometry(site_effects[site], spacing,
                                                (int(shape[0]), int(shape[1]), n_slices))
            make = spleen_case if task == "spleen" else prostate_case
            image, label = make(rng, case_shape, site_effects[site])
            affine = _affine(rng, case_shape, spacing)
            _write_case(tmp, fmt, case_id, _to_storage(image), _to_storage(label), affine)
            entries.append((case_id, f"site{site}" if sites > 1 else None))
        record = {"task": task, "seed": seed, "sites": sites, "shape": list(shape),
                  "min_slices": z_min, "n_cases": n_cases,
                  "site_effects": {f"site{k}": dataclasses.asdict(e)
                                   for k, e in enumerate(site_effects)} if sites > 1 else {}}
        atomic_write_json(tmp / "dataset.json", _dataset_json(info, fmt, entries, record))
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _validate(task: str, n_cases: int, sites: int, shape: tuple[int, int, int],
              fmt: str) -> None:
    if task not in TASKS:
        raise ConfigError(f"unknown phantom task {task!r}; choose one of {', '.join(TASKS)}")
    if fmt not in FORMATS:
        raise ConfigError(f"unknown dataset format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if n_cases < 1:
        raise ConfigError(f"a phantom needs at least 1 case, got {n_cases}")
    if not 1 <= sites <= n_cases:
        raise ConfigError(f"sites must be between 1 and the number of cases ({n_cases}), "
                          f"got {sites}")
    if len(shape) != 3 or min(shape[:2]) < 16 or shape[2] < 2:
        raise ConfigError(f"shape must be X Y Z with X, Y >= 16 and Z >= 2, got {tuple(shape)}")


def site_geometry(site: SiteEffect, spacing: tuple[float, float, float],
                  shape: tuple[int, int, int]
                  ) -> tuple[tuple[float, float, float], tuple[int, int, int]]:
    """A case's voxel size (mm) and grid on a site's scanner.

    The in-plane field of view scales the voxel size (the anatomy keeps its size, see
    :func:`mbnas.data.anatomy.grid`), the matrix scales the number of voxels at the same
    field of view, and the site's slice thickness replaces the task's.
    """
    n_xy = [max(16, round(n * site.matrix)) for n in shape[:2]]
    in_plane = [spacing[0] * site.fov * shape[0] / n_xy[0],
                spacing[1] * site.fov * shape[1] / n_xy[1]]
    thickness = spacing[2] if site.thickness is None else site.thickness
    return (in_plane[0], in_plane[1], thickness), (n_xy[0], n_xy[1], shape[2])


def _check_out(out: Path) -> None:
    """Refuse to replace anything but an empty folder or an earlier phantom."""
    if not out.exists():
        return
    if not out.is_dir():
        raise ConfigError(f"{out} exists and is not a folder; choose another output folder")
    if not any(out.iterdir()):
        return
    try:
        meta = json.loads((out / "dataset.json").read_text())
        is_phantom = isinstance(meta, dict) and PHANTOM_KEY in meta
    except (OSError, ValueError):
        is_phantom = False
    if not is_phantom:
        raise ConfigError(f"{out} is not empty and is not an mbnas phantom; "
                          "choose another output folder")
    foreign = _foreign_entries(out)
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5
                                          else "")
        raise ConfigError(f"{out} is an earlier phantom but also holds files it did not write "
                          f"({shown}); move them away or choose another output folder")


def _foreign_entries(out: Path) -> list[str]:
    """What a phantom folder holds besides dataset.json and the image and label files."""
    foreign = []
    for entry in sorted(out.iterdir()):
        if entry.name == "dataset.json" and entry.is_file() and not entry.is_symlink():
            continue
        if entry.name in ("imagesTr", "labelsTr") and entry.is_dir() and not entry.is_symlink():
            foreign += [f"{entry.name}/{f.name}" for f in sorted(entry.iterdir())
                        if f.is_symlink() or not f.is_file()
                        or not f.name.endswith((".nii.gz", ".nii"))]
            continue
        foreign.append(entry.name)
    return foreign


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _to_storage(canonical: np.ndarray) -> np.ndarray:
    """Store the voxel axes flipped in x and y, like DICOM's LPS order (MSD spleen does)."""
    return canonical[::-1, ::-1]


def _affine(rng: np.random.Generator, shape: tuple[int, int, int],
            spacing: tuple[float, float, float]) -> np.ndarray:
    """Voxel -> RAS world (mm) for the stored (flipped) axes, slightly rotated."""
    theta = np.deg2rad(rng.uniform(-8, 8))
    c, s = np.cos(theta), np.sin(theta)
    rotation = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    linear = rotation @ np.diag([-spacing[0], -spacing[1], spacing[2]])
    center = (np.asarray(shape, dtype=float) - 1) / 2
    affine = np.eye(4)
    affine[:3, :3] = linear
    affine[:3, 3] = -linear @ center + rng.uniform(-20, 20, 3)
    return affine


def _save(array: np.ndarray, affine: np.ndarray, path: Path) -> None:
    import nibabel as nib  # here, not at the top: the CLI's parser reads TASKS and FORMATS

    img = nib.Nifti1Image(np.ascontiguousarray(array), affine)
    img.header.set_xyzt_units("mm", "sec")
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    with naming(path):
        nib.save(img, path)


def _write_case(root: Path, fmt: str, case_id: str, image: np.ndarray, label: np.ndarray,
                affine: np.ndarray) -> None:
    if fmt == "msd":
        _save(image, affine, root / "imagesTr" / f"{case_id}.nii.gz")
    else:
        channels = [image] if image.ndim == 3 else [image[..., c] for c in range(image.shape[3])]
        for c, channel in enumerate(channels):
            _save(channel, affine, root / "imagesTr" / f"{case_id}_{c:04d}.nii.gz")
    _save(label, affine, root / "labelsTr" / f"{case_id}.nii.gz")


def _dataset_json(info: dict[str, Any], fmt: str, entries: list[tuple[str, str | None]],
                  record: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": f"{info['name']} phantom",
        "description": f"mbnas synthetic {info['name'].lower()} phantom (not patient data)",
        "numTraining": len(entries),
        PHANTOM_KEY: record,
    }
    if fmt == "nnunet":
        meta["channel_names"] = {str(i): n for i, n in enumerate(info["channels"])}
        meta["labels"] = {n: i for i, n in enumerate(info["labels"])}
        meta["file_ending"] = ".nii.gz"
        sites = {case_id: site for case_id, site in entries if site is not None}
        if sites:
            meta["sites"] = sites
        return meta
    meta.update({
        "reference": "mbnas", "licence": "CC0", "release": "1.0",
        "tensorImageSize": "4D" if len(info["channels"]) > 1 else "3D",
        "modality": {str(i): n for i, n in enumerate(info["channels"])},
        "labels": {str(i): n for i, n in enumerate(info["labels"])},
        "numTest": 0, "test": [],
        "training": [
            {"image": f"./imagesTr/{case_id}.nii.gz", "label": f"./labelsTr/{case_id}.nii.gz",
             **({"site": site} if site is not None else {})}
            for case_id, site in entries
        ],
    })
    return meta
