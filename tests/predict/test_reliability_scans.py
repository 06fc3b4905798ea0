"""Scans that must not produce labels: zero-sized, or intensities that overflow float32
through the header's scl_slope (issue 11, items 10 and 11)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from mbnas.predict import ScanError, find_scans, read_scan


def test_overflowing_scl_slope_is_refused(tmp_path) -> None:
    img = nib.Nifti1Image(np.full((16, 16, 4), 30000, dtype=np.int16), np.eye(4))
    img.header.set_slope_inter(3e38, 0.0)
    path = tmp_path / "scan.nii.gz"
    nib.save(img, path)
    with pytest.raises(ScanError, match="scan.nii.gz.*(float32|NaN or Inf)"):
        read_scan(find_scans(path)[0], ("CT",))


def test_zero_sized_scan_is_refused(tmp_path) -> None:
    path = tmp_path / "empty.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((16, 16, 0), dtype=np.int16), np.eye(4)), path)
    with pytest.raises(ScanError, match="empty.nii.gz"):
        read_scan(find_scans(path)[0], ("CT",))
