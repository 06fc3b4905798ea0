"""`mbnas sample` converts only files that match the pinned archive (issue 34, item 6)."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

from mbnas.data.sample import _DICOM_DIR, PYCERR, _provenance, _unpack


def test_a_tampered_unpacked_file_is_unpacked_again_before_conversion(
        lung_archives: Path, tmp_path: Path) -> None:
    archive = lung_archives / PYCERR.archive
    said: list[str] = []
    root = _unpack(archive, tmp_path / "pycerr", _DICOM_DIR, said.append)
    (rs,) = sorted((root / "pat_1").glob("*RS*.dcm"))
    pinned = rs.read_bytes()
    rs.write_bytes(pinned[:len(pinned) // 2] + bytes(len(pinned) - len(pinned) // 2))
    (root / "pat_1" / "extra.dcm").write_bytes(b"slipped in")
    assert said == []
    again = _unpack(archive, tmp_path / "pycerr", _DICOM_DIR, said.append)
    assert len(said) == 1 and "differ" in said[0]
    assert rs.read_bytes() == pinned and not (again / "pat_1" / "extra.dcm").exists()
    # the provenance records the archive's own files
    with zipfile.ZipFile(archive) as z:
        members = {n: hashlib.sha256(z.read(n)).hexdigest() for n in z.namelist()
                   if n.startswith(_DICOM_DIR + "/") and not n.endswith("/")}
    recorded = {f["file"]: f["sha256"] for f in _provenance(PYCERR, again, tmp_path / "pycerr")}
    assert recorded == members
