"""Write an MSD v1 dataset folder from SimpleITK volumes, all at once or not at all.

Used by ``mbnas import dicom-rt`` and ``mbnas sample``. The whole folder is written into a
temporary sibling, checked (every file re-read, as `mbnas check` reads it) and renamed
into place, so a killed run or a failed write (a full disk, a file-size limit) leaves no
half folder and no corrupt file behind a success message.

An existing folder is only replaced when this module wrote it (``IMPORT_KEY`` in its
``dataset.json``) from the same source, and every file in it is one it wrote, unchanged
(the record lists each file's SHA-256). ``--out`` is locked while it is written
(``.NAME.lock`` beside it, the run folders' :class:`~mbnas.store.lock.FileLock`), and a
temporary folder is only removed when it is this module's (a marker inside) and stale.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mbnas.errors import ConfigError, DatasetError
from mbnas.io import atomic_write_json, atomic_write_text, file_sha256
from mbnas.store.lock import FileLock

if TYPE_CHECKING:
    import SimpleITK as sitk

# dataset.json key that marks a folder written by mbnas import/sample.
IMPORT_KEY = "mbnas_import"
# Locks (see :func:`locked`) this process holds.
_HELD: set[Path] = set()
# A file inside a temporary folder while this module writes it (holds the writer's pid).
_MARKER = ".mbnas_import_tmp"


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
        out: Dataset folder to create (or replace, when an earlier import of the same
            source holding only its own files).
        cases: The cases, in order.
        labels: Label names, background first.
        modality: "CT" or "MR".
        name: ``dataset.json`` name.
        record: What made the folder (saved under ``IMPORT_KEY``, with the files written).
        extra: Writes more files (provenance, licences) into the temporary folder.

    Returns:
        ``out``.

    Raises:
        ConfigError: ``out`` holds something else, or another process writes it.
        DatasetError: A written file does not read back (the folder is not created).
    """
    out = Path(out)
    with locked(out):
        check_out(out, record)
        _remove_stale(out)
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
        try:
            atomic_write_text(tmp / _MARKER, str(os.getpid()))
            _write(tmp, cases, labels, modality, name, record, extra)
            _verify(tmp, out)
            (tmp / _MARKER).unlink()
            os.chmod(tmp, 0o777 & ~_umask())
            _put_in_place(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return out


def _write(tmp: Path, cases: list[MsdCase], labels: list[str], modality: str, name: str,
           record: dict[str, Any], extra: Callable[[Path], None] | None) -> None:
    import SimpleITK as sitk

    (tmp / "imagesTr").mkdir()
    (tmp / "labelsTr").mkdir()
    (tmp / "imagesTs").mkdir()  # empty, but nnUNetv2_convert_MSD_dataset requires it
    for case in cases:
        for folder, volume in (("imagesTr", case.image), ("labelsTr", case.label)):
            # SimpleITK may only print a failed write (a full disk): _verify finds it.
            sitk.WriteImage(volume, str(tmp / folder / f"{case.case_id}.nii.gz"), True)
    if extra is not None:
        extra(tmp)
    files = {p.relative_to(tmp).as_posix(): file_sha256(p) for p in sorted(tmp.rglob("*"))
             if p.is_file() and p.name != _MARKER}
    meta = {
        "name": name, "description": record.get("description", name),
        "reference": record.get("reference", ""), "licence": record.get("licence", ""),
        "release": "1.0", "tensorImageSize": "3D", "modality": {"0": modality},
        "labels": {str(i): n for i, n in enumerate(labels)},
        "numTraining": len(cases), "numTest": 0, "test": [],
        "training": [{"image": f"./imagesTr/{c.case_id}.nii.gz",
                      "label": f"./labelsTr/{c.case_id}.nii.gz",
                      **({"site": c.site} if c.site is not None else {})} for c in cases],
        IMPORT_KEY: {**record, "files": files},
    }
    atomic_write_json(tmp / "dataset.json", meta)


def _verify(tmp: Path, out: Path) -> None:
    """Every written file must read back whole and the folder pass `mbnas check`."""
    from mbnas.data.check import check_dataset

    errors = [p for p in check_dataset(tmp) if p.is_error]
    if errors:
        lines = [str(p).replace(str(tmp), str(out)) for p in errors[:10]]
        raise DatasetError(f"{out}: the files written fail `mbnas check` ({len(errors)} "
                           "error(s); a truncated file: a full disk or a file-size limit?), "
                           "so nothing was put in place:\n  " + "\n  ".join(lines))


def _put_in_place(tmp: Path, out: Path) -> None:
    if out.exists():  # an earlier import of this source, its own files only (check_out)
        old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".old"))
        os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out)


@contextlib.contextmanager
def locked(out: Path, doing: str = "writing this folder") -> Iterator[None]:
    """Hold ``out``'s lock (``.NAME.lock`` beside it) for the block; a lock this process
    holds already is held again (``mbnas sample`` locks ``--out`` around its write)."""
    if out.name in ("", ".", ".."):
        raise ConfigError(f"{out}: name the dataset folder to write (--out)")
    out.parent.mkdir(parents=True, exist_ok=True)
    path = out.parent.resolve() / f".{out.name}.lock"
    if path in _HELD:
        yield
        return
    lock = FileLock(path)
    holder = lock.acquire()
    if holder is not None:
        raise ConfigError(f"{out}: another mbnas process (pid {holder}) is {doing}; wait "
                          "for it to finish or choose another --out")
    _HELD.add(path)
    try:
        yield
    finally:
        _HELD.discard(path)
        lock.release()


def _remove_stale(out: Path) -> None:
    """Remove temporary folders of earlier, killed writes of ``out``: named exactly as
    :func:`write_msd` names them and holding its marker (the lock, held, says no other
    write of ``out`` is running)."""
    pattern = re.compile(re.escape(f".{out.name}.") + r"[a-z0-9_]{8}\.tmp")
    for entry in out.parent.iterdir():
        if pattern.fullmatch(entry.name) and entry.is_dir() and not entry.is_symlink() \
                and (entry / _MARKER).is_file():
            shutil.rmtree(entry, ignore_errors=True)


def read_record(out: Path) -> dict[str, Any] | None:
    """The ``IMPORT_KEY`` record of a folder written by :func:`write_msd` (None: not one)."""
    try:
        meta = json.loads((out / "dataset.json").read_text())
    except (OSError, ValueError):
        return None
    record = meta.get(IMPORT_KEY) if isinstance(meta, dict) else None
    return record if isinstance(record, dict) else None


def check_out(out: Path, record: dict[str, Any] | None = None) -> None:
    """Refuse to replace anything but a missing or empty folder or an earlier import of
    the same source (``record``'s) that holds only the files it wrote, unchanged."""
    if not out.exists() and not out.is_symlink():
        return
    if not out.is_dir() or out.is_symlink():
        what = "a symbolic link" if out.is_symlink() else "not a folder"
        raise ConfigError(f"{out} exists and is {what}; choose another output folder")
    if not any(out.iterdir()):
        out.rmdir()
        return
    old = read_record(out)
    if old is None:
        raise ConfigError(f"{out} is not empty and was not written by mbnas import or sample; "
                          "choose another output folder")
    if record is not None and _source(old) != _source(record):
        raise ConfigError(f"{out} holds {_describe(old)}, not {_describe(record)}; choose "
                          "another output folder (or delete it yourself)")
    foreign = _foreign(out, old)
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more"
                                          if len(foreign) > 5 else "")
        older = "" if isinstance(old.get("files"), dict) else (
            "; it was written by an older mbnas, which did not record its files")
        raise ConfigError(f"{out} is an earlier import but holds files it did not write or "
                          f"that changed since ({shown}{older}); move them away or choose "
                          "another output folder")


def _foreign(out: Path, record: dict[str, Any]) -> list[str]:
    """Files under ``out`` the import did not write, or that changed since."""
    written = record.get("files")
    written = written if isinstance(written, dict) else {}
    found = []
    for path in sorted(out.rglob("*")):
        rel = path.relative_to(out).as_posix()
        if path.is_dir() and not path.is_symlink():
            if rel == "imagesTs" and not any(path.iterdir()):
                continue  # the empty folder nnU-Net's converter needs: written by the import
            if not any(f.startswith(rel + "/") for f in written):
                found.append(rel + "/")
            continue
        if rel == "dataset.json" and not path.is_symlink():
            continue
        if path.is_symlink() or rel not in written or file_sha256(path) != written[rel]:
            found.append(rel)
    return found


def _source(record: dict[str, Any]) -> tuple[str, str]:
    if "sample" in record:
        return "sample", str(record["sample"])
    return str(record.get("importer", "?")), str(record.get("source", "?"))


def _describe(record: dict[str, Any]) -> str:
    kind, source = _source(record)
    return f"sample {source}" if kind == "sample" else f"an import ({kind}) of {source}"




def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
