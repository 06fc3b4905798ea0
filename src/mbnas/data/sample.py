"""`mbnas sample lung-ct`: six real lung-tumour CT cases, from data files inside two packages.

The cases ship inside two packages of the package registry (PyPI), which is the only
place this reaches, through pip's own download command (``python -m pip download``) into
a cache; nothing is installed. Their SHA-256 are pinned here, so a changed or corrupt
download is refused and a warm cache works offline.

* pycerr 2.5.1 (wheel): ``cerr/datasets/radiomics_phantom_dicom/pat_1..pat_4``, four
  lung-cancer chest CT crops as DICOM series, each with an RTSTRUCT whose ROI "GTV-1" is
  the tumour; converted by :mod:`mbnas.data.dicom_rt`. Licence CC BY-NC 3.0.
* pyradiomics 3.0.1 (sdist): ``data/lung1``, ``data/lung2``: full-field CT as NRRD, with
  NRRD tumour label maps. BSD-3-Clause.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mbnas.data.dicom_rt import parse_rois, read_dicom_rt, refuse_if_errors
from mbnas.data.msd_write import MsdCase, locked, read_record, write_msd
from mbnas.errors import ConfigError, DatasetError
from mbnas.io import atomic_write_json, atomic_write_text, file_sha256


@dataclass(frozen=True)
class Source:
    """A package archive that holds some of a sample's cases."""

    package: str
    version: str
    archive: str  # file name pip saves
    sha256: str
    sdist: bool  # pip must build its metadata (needs numpy, versioneer, setuptools)
    licence_file: str  # inside the archive
    site: str


PYCERR = Source("pycerr", "2.5.1", "pycerr-2.5.1-py3-none-any.whl",
                "5c3e82cc387538c5c38143827314fc2aa743ef886e8518f7f52beff6805c635d", False,
                "cerr/datasets/radiomics_phantom_dicom/README_LICENSE.txt", "pycerr-crop")
PYRADIOMICS = Source("pyradiomics", "3.0.1", "pyradiomics-3.0.1.tar.gz",
                     "47c57f441d6cb7973fa3b2ea48d3948df78e3348e1c69e1e2ff19001601fc2f5", True,
                     "pyradiomics-3.0.1/LICENSE.txt", "pyradiomics-full")
_DICOM_DIR = "cerr/datasets/radiomics_phantom_dicom"
_NRRD_CASES = ("lung1", "lung2")
NON_COMMERCIAL = ("cases pycerr_pat_1..pycerr_pat_4 (from pycerr): CC BY-NC 3.0, "
                  "non-commercial use only, cite Lambin et al. 2017 and CancerData "
                  "doi:10.17195/candat.2016.08.1 (see LICENSE_pycerr_cases.txt)")
SAMPLES = ("lung-ct",)


def make_sample(name: str, out: str | Path, cache: str | Path,
                say: Callable[[str], None] = print) -> tuple[Path, bool]:
    """Build sample ``name`` at ``out``; the archives are kept under ``cache/downloads``.

    Returns:
        The folder and whether it was written (False: already there, nothing done).
    """
    if name not in SAMPLES:
        raise ConfigError(f"unknown sample {name!r}; choose one of: {', '.join(SAMPLES)}")
    out, downloads = Path(out), Path(cache) / "downloads"
    unpacked = Path(cache) / "samples" / f"{name}-src"
    with locked(out), locked(unpacked, f"building a sample from {unpacked}"):
        return _make_sample(name, out, downloads, unpacked, say)


def _make_sample(name: str, out: Path, downloads: Path, unpacked: Path,
                 say: Callable[[str], None]) -> tuple[Path, bool]:
    sources = (PYCERR, PYRADIOMICS)
    record = read_record(out)
    if record is not None and record.get("sample") == name and record.get("archives") == {
            s.archive: s.sha256 for s in sources} and _complete(out):
        return out, False
    archives = {s.archive: fetch_archive(s, downloads, say) for s in sources}
    cases, provenance = [], []
    dicom_root = _unpack(archives[PYCERR.archive], unpacked / "pycerr", _DICOM_DIR, say)
    dicom_cases, problems, _ = read_dicom_rt(dicom_root, parse_rois("tumour=GTV-1"), PYCERR.site)
    refuse_if_errors(dicom_root, problems)
    for case in dicom_cases:
        cases.append(MsdCase(f"pycerr_{case.case_id}", case.image, case.label, case.site))
    provenance += _provenance(PYCERR, dicom_root, unpacked / "pycerr")
    nrrd_root = _unpack(archives[PYRADIOMICS.archive], unpacked / "pyradiomics",
                        "pyradiomics-3.0.1/data", say)
    for case_name in _NRRD_CASES:
        cases.append(_nrrd_case(nrrd_root, case_name))
    provenance += _provenance(PYRADIOMICS, nrrd_root, unpacked / "pyradiomics",
                              [f"{c}_{k}.nrrd" for c in _NRRD_CASES for k in ("image", "label")])

    def extra(folder: Path) -> None:
        atomic_write_json(folder / "provenance.json", {
            "sample": name, "sources": [{"package": s.package, "version": s.version,
                                          "archive": s.archive, "sha256": s.sha256}
                                         for s in sources],
            "files": provenance})
        atomic_write_text(folder / "LICENSE_pycerr_cases.txt", _member(
            archives[PYCERR.archive], PYCERR.licence_file))
        atomic_write_text(folder / "LICENSE_pyradiomics_cases.txt", _member(
            archives[PYRADIOMICS.archive], PYRADIOMICS.licence_file))

    write_msd(out, cases, ["background", "tumour"], "CT", "LungCT sample", {
        "sample": name, "archives": {s.archive: s.sha256 for s in sources},
        "description": "6 real lung-tumour CT cases from pycerr 2.5.1 and pyradiomics 3.0.1",
        "licence": "cases 1-4 CC BY-NC 3.0; cases 5-6 BSD-3-Clause"}, extra)
    return out, True


def fetch_archive(source: Source, downloads: Path, say: Callable[[str], None]) -> Path:
    """The package archive, from the cache or by ``pip download`` (no install, no deps)."""
    path = downloads / source.archive
    if path.is_file() and file_sha256(path) == source.sha256:
        return path
    downloads.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "--dest", str(downloads), f"{source.package}=={source.version}"]
    if source.sdist:  # the data folder is only in the sdist; its build needs numpy etc.
        command[5:5] = ["--no-binary", source.package, "--no-build-isolation"]
    else:
        command[5:5] = ["--only-binary", ":all:"]
    say(f"downloading {source.package}=={source.version} from the package registry (pip)")
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0 or not path.is_file():
        lines = [ln.strip() for ln in (done.stderr or done.stdout).splitlines() if ln.strip()]
        why = lines[-1] if lines else f"exit code {done.returncode}"
        raise DatasetError(f"could not download {source.package}=={source.version} with "
                           f"`pip download` into {downloads} ({why}); connect to the package "
                           f"registry, or copy {source.archive} there")
    digest = file_sha256(path)
    if digest != source.sha256:
        path.unlink()
        raise DatasetError(f"{path}: SHA-256 {digest} is not the pinned {source.sha256}; "
                           "the download was removed, run again")
    return path


def _complete(out: Path) -> bool:
    return (out / "provenance.json").is_file() and len(list((out / "labelsTr").glob(
        "*.nii.gz"))) == 6


def _unpack(archive: Path, dest: Path, prefix: str, say: Callable[[str], None]) -> Path:
    """Extract the members under ``prefix``; extract again when what is there differs from
    the (pinned) archive, so a changed file in the cache is never converted."""
    wanted = _member_digests(archive, prefix)
    done = dest / ".complete"
    if done.is_file() and _digests(dest, prefix) == wanted:
        return dest / prefix
    if done.is_file():
        say(f"{dest}: the unpacked files differ from {archive.name}; unpacking it again")
    shutil.rmtree(dest, ignore_errors=True)  # the cache's own folder, from this function
    dest.mkdir(parents=True, exist_ok=True)
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z:
            z.extractall(dest, [m for m in z.namelist() if m.startswith(prefix + "/")])
    else:
        with tarfile.open(archive) as t:
            t.extractall(dest, [m for m in t.getmembers()
                                if m.name.startswith(prefix + "/") and m.isfile()],
                         filter="data")
    if _digests(dest, prefix) != wanted:
        raise DatasetError(f"{dest}: files unpacked from {archive.name} differ from it; "
                           "check the disk, delete the folder and run again")
    done.touch()
    return dest / prefix


def _member_digests(archive: Path, prefix: str) -> dict[str, str]:
    """SHA-256 of each file under ``prefix`` in the archive, by member name."""
    out = {}
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z:
            for info in z.infolist():
                if info.filename.startswith(prefix + "/") and not info.is_dir():
                    out[info.filename] = hashlib.sha256(z.read(info)).hexdigest()
        return out
    with tarfile.open(archive) as t:
        for member in t:
            f = t.extractfile(member) if member.isfile() and member.name.startswith(
                prefix + "/") else None
            if f is not None:
                out[member.name] = hashlib.sha256(f.read()).hexdigest()
    return out


def _digests(dest: Path, prefix: str) -> dict[str, str]:
    """SHA-256 of each file unpacked under ``dest / prefix``, by path under ``dest``."""
    return {p.relative_to(dest).as_posix(): file_sha256(p)
            for p in sorted((dest / prefix).rglob("*")) if p.is_file()}


def _member(archive: Path, name: str) -> str:
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z:
            return z.read(name).decode("utf-8", "replace")
    with tarfile.open(archive) as t:
        f = t.extractfile(name)
        if f is None:
            raise DatasetError(f"{archive}: {name} is missing")
        return f.read().decode("utf-8", "replace")


def _provenance(source: Source, root: Path, base: Path,
                names: list[str] | None = None) -> list[dict[str, Any]]:
    files = sorted(p for p in root.rglob("*") if p.is_file()) if names is None else \
        [root / n for n in names]
    return [{"package": source.package, "version": source.version,
             "file": p.relative_to(base).as_posix(), "sha256": file_sha256(p)} for p in files]


def _nrrd_case(root: Path, name: str) -> MsdCase:
    import SimpleITK as sitk

    image = sitk.ReadImage(str(root / f"{name}_image.nrrd"))
    label = sitk.Cast(sitk.ReadImage(str(root / f"{name}_label.nrrd")), sitk.sitkUInt8)
    label.CopyInformation(image)  # same grid in these files; the header's rounding differs
    return MsdCase(f"pyradiomics_{name}", image, label, PYRADIOMICS.site)
