"""Write an MSD v1 dataset folder from SimpleITK volumes, all at once or not at all.

Used by ``mbnas import dicom-rt`` and ``mbnas sample``. The whole folder is written into a
temporary sibling and renamed into place, so a killed run leaves no half folder; an
existing folder is only replaced when it was written by this module (``IMPORT_KEY`` in
its ``dataset.json``) and holds nothing else.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mbnas.errors import ConfigError
from mbnas.io import atomic_write_json

if TYPE_CHECKING:
    import SimpleITK as sitk

# dataset.json key that marks a folder written by mbnas import/sample.
IMPORT_KEY = "mbnas_import"


@dataclass(frozen=True)
class MsdCase:
    """One case to write: its id, CT/MR image, label map (same grid) and site."""

    case_id: str
    image: sitk.Image
    label: sitk.Image
    site: str | None = None


def write_msd(out: str | Path, cases: list[MsdCase], labels: list[str], modality: str,
              name: str, record: dict[str, Any],
              extra: Callable[[Path], None] | None = None) -> Path:
    """Write ``cases`` as an MSD folder at ``out``, atomically.

    Args:
        out: Dataset folder to create (or replace, when an earlier import).
        cases: The cases, in order.
        labels: Label names, background first.
        modality: "CT" or "MR".
        name: ``dataset.json`` name.
        record: What made the folder (saved under ``IMPORT_KEY``).
        extra: Writes more files (provenance, licences) into the temporary folder.

    Returns:
        ``out``.
    """
    import SimpleITK as sitk

    out = Path(out)
    check_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in out.parent.glob(f".{out.name}.*.tmp"):  # left by a killed run
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        (tmp / "imagesTr").mkdir()
        (tmp / "labelsTr").mkdir()
        (tmp / "imagesTs").mkdir()  # empty, but nnUNetv2_convert_MSD_dataset requires it
        for case in cases:
            sitk.WriteImage(case.image, str(tmp / "imagesTr" / f"{case.case_id}.nii.gz"), True)
            sitk.WriteImage(case.label, str(tmp / "labelsTr" / f"{case.case_id}.nii.gz"), True)
        meta = {
            "name": name, "description": record.get("description", name),
            "reference": record.get("reference", ""), "licence": record.get("licence", ""),
            "release": "1.0", "tensorImageSize": "3D", "modality": {"0": modality},
            "labels": {str(i): n for i, n in enumerate(labels)},
            "numTraining": len(cases), "numTest": 0, "test": [],
            "training": [{"image": f"./imagesTr/{c.case_id}.nii.gz",
                          "label": f"./labelsTr/{c.case_id}.nii.gz",
                          **({"site": c.site} if c.site is not None else {})} for c in cases],
            IMPORT_KEY: record,
        }
        if extra is not None:
            extra(tmp)
        atomic_write_json(tmp / "dataset.json", meta)
        os.chmod(tmp, 0o777 & ~_umask())
        if out.exists():  # an earlier import (check_out said so): swap it out
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def read_record(out: Path) -> dict[str, Any] | None:
    """The ``IMPORT_KEY`` record of a folder written by :func:`write_msd` (None: not one)."""
    try:
        meta = json.loads((out / "dataset.json").read_text())
    except (OSError, ValueError):
        return None
    record = meta.get(IMPORT_KEY) if isinstance(meta, dict) else None
    return record if isinstance(record, dict) else None


def check_out(out: Path) -> None:
    """Refuse to replace anything but a missing or empty folder or an earlier import."""
    if not out.exists():
        return
    if not out.is_dir():
        raise ConfigError(f"{out} exists and is not a folder; choose another output folder")
    if not any(out.iterdir()):
        out.rmdir()
        return
    if read_record(out) is None:
        raise ConfigError(f"{out} is not empty and was not written by mbnas import or sample; "
                          "choose another output folder")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
