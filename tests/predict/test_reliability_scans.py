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


def _bomb(path, shape=(2000, 2000, 500)) -> None:  # noqa: ANN001
    """A small file whose header declares ``shape`` (int16): 4 GB for the default."""
    import gzip

    img = nib.Nifti1Image(np.zeros((16, 16, 4), np.int16), np.eye(4))
    img.header.set_data_shape(shape)
    raw = img.header.binaryblock + b"\0" * 4 + np.random.default_rng(0).bytes(12000)
    path.write_bytes(gzip.compress(raw) if path.name.endswith(".gz") else raw)


@pytest.mark.parametrize("name", ["bomb.nii.gz", "bomb.nii"])
def test_a_header_declaring_more_than_the_file_holds_is_refused_before_reading(
        tmp_path, name) -> None:  # noqa: ANN001
    import tracemalloc

    path = tmp_path / name
    _bomb(path)
    assert path.stat().st_size < 13000
    tracemalloc.start()
    try:
        with pytest.raises(ScanError, match=f"{name}: its header declares 2000 x 2000 x 500"):
            read_scan(find_scans(path)[0], ("CT",))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 50_000_000  # nothing near the declared 4 GB was allocated


def test_a_header_over_the_size_limit_is_refused(tmp_path) -> None:  # noqa: ANN001
    from mbnas.data.check import MAX_VOXELS

    path = tmp_path / "huge.nii.gz"
    _bomb(path, (32767, 32767, 2))  # 2.1e9 voxels: over the limit
    with pytest.raises(ScanError, match=f"at most {MAX_VOXELS:,} are read"):
        read_scan(find_scans(path)[0], ("CT",))
