"""An MSD folder written by `mbnas sample` / `import dicom-rt` is one nnU-Net v2 converts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mbnas.data.msd_write import MsdCase, write_msd


def test_nnunetv2_convert_msd_dataset_accepts_a_written_folder(tmp_path: Path) -> None:
    sitk = pytest.importorskip("SimpleITK")
    if shutil.which("nnUNetv2_convert_MSD_dataset", path=str(Path(sys.executable).parent)) \
            is None:
        pytest.skip("nnU-Net v2 is not installed")
    image = sitk.GetImageFromArray(np.arange(4 * 8 * 8, dtype=np.int16).reshape(4, 8, 8))
    label = sitk.GetImageFromArray((np.arange(4 * 8 * 8) % 7 == 0).astype(np.uint8)
                                   .reshape(4, 8, 8))
    out = write_msd(tmp_path / "Task77_Tiny", [MsdCase("tiny_1", image, label)],
                    ["background", "tumour"], "CT", "Tiny", {"command": "test"})
    raw = tmp_path / "raw"
    env = {**os.environ, "nnUNet_raw": str(raw), "nnUNet_preprocessed": str(tmp_path / "pp"),
           "nnUNet_results": str(tmp_path / "res")}
    done = subprocess.run([str(Path(sys.executable).parent / "nnUNetv2_convert_MSD_dataset"),
                           "-i", str(out), "-np", "1"], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    converted = raw / "Dataset077_Tiny"
    assert (converted / "labelsTr" / "tiny_1.nii.gz").is_file()
    assert (converted / "imagesTr" / "tiny_1_0000.nii.gz").is_file()
