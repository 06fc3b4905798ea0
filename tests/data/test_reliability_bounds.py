"""Settings that would allocate without bound are refused first (issue 34, item 10)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mbnas.cli import main
from mbnas.data.spacing import MAX_RESAMPLED_SIDE


@pytest.mark.parametrize("spacing", ["0.001", "1e-6", "1e-300"])
def test_a_tiny_target_spacing_is_refused_before_allocating(
        spleen_msd: Path, tmp_path: Path, spacing: str, capsys) -> None:  # noqa: ANN001
    code = main(["preprocess", str(spleen_msd), "--size", "32", "--target-spacing", spacing,
                 "--cache", str(tmp_path / "cache"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert f"at most {MAX_RESAMPLED_SIDE} px" in err and "--target-spacing" in err


def test_a_fine_target_spacing_within_the_bound_still_resamples(spleen_msd: Path,
                                                                tmp_path: Path) -> None:
    assert main(["preprocess", str(spleen_msd), "--size", "32", "--target-spacing", "0.5",
                 "--cache", str(tmp_path / "cache"), "--quiet"]) == 0


def test_check_refuses_a_label_whose_header_declares_more_than_the_file_holds(
        spleen_msd: Path, copy_dataset, capsys) -> None:  # noqa: ANN001
    import gzip

    import nibabel as nib

    data = copy_dataset(spleen_msd)
    label = sorted((data / "labelsTr").glob("*.nii.gz"))[0]
    header = nib.load(label).header.copy()
    header.set_data_shape((2000, 2000, 500))
    label.write_bytes(gzip.compress(header.binaryblock + b"\0" * 4 + bytes(12000)))
    assert main(["check", str(data)]) == 2
    out = capsys.readouterr()
    assert f"{label}: its header declares 2000 x 2000 x 500" in out.out + out.err
