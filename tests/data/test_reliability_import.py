"""`mbnas import dicom-rt` / `mbnas sample` keep the user's files (issue 34, items 1-3, 5)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from dicom_factory import tumour, write_rtstruct, write_series

from mbnas.cli import main
from mbnas.data.dicom_rt import import_dicom_rt, parse_rois, read_dicom_rt
from mbnas.data.msd_write import read_record, write_msd
from mbnas.errors import ConfigError
from mbnas.store.lock import FileLock

ROIS = parse_rois("tumour=GTV-1")


def _patient(folder: Path, **series) -> None:  # noqa: ANN003
    uid = write_series(folder, **series)
    write_rtstruct(folder, {"GTV-1": tumour(range(1, 4))}, uid)


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _import(src: Path, out: Path) -> int:
    return main(["import", "dicom-rt", str(src), "--out", str(out), "--roi", "tumour=GTV-1"])


def test_a_second_import_keeps_files_the_user_added(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    _patient(tmp_path / "src" / "a")
    out = tmp_path / "ds"
    assert _import(tmp_path / "src", out) == 0
    (out / "NOTES.txt").write_text("my notes")
    (out / "imagesTs").mkdir()
    (out / "imagesTs" / "x.nii.gz").write_bytes(b"my test scan")
    before = _snapshot(out)
    capsys.readouterr()
    assert _import(tmp_path / "src", out) == 2
    err = capsys.readouterr().err
    assert "NOTES.txt" in err and "imagesTs/" in err and "Traceback" not in err
    assert _snapshot(out) == before
    # a label the user corrected by hand is theirs now, too
    (out / "NOTES.txt").unlink()
    (out / "imagesTs" / "x.nii.gz").unlink()
    (out / "imagesTs").rmdir()
    (out / "labelsTr" / "a.nii.gz").write_bytes(b"corrected by hand")
    before = _snapshot(out)
    assert _import(tmp_path / "src", out) == 2
    assert "labelsTr/a.nii.gz" in capsys.readouterr().err
    assert _snapshot(out) == before


def test_an_import_of_another_source_or_a_sample_does_not_replace_it(tmp_path: Path) -> None:
    _patient(tmp_path / "src" / "a")
    _patient(tmp_path / "other" / "b")
    out = tmp_path / "ds"
    import_dicom_rt(tmp_path / "src", out, ROIS)
    before = _snapshot(out)
    with pytest.raises(ConfigError, match="holds an import.*src"):
        import_dicom_rt(tmp_path / "other", out, ROIS)
    cases, _, _ = read_dicom_rt(tmp_path / "src", ROIS)
    with pytest.raises(ConfigError, match="not sample lung-ct"):
        write_msd(out, cases, ["background", "tumour"], "CT", "x", {"sample": "lung-ct"})
    assert _snapshot(out) == before
    # the same source again, untouched: replaced (an earlier import of it)
    import_dicom_rt(tmp_path / "src", out, ROIS)
    assert read_record(out)["source"] == str((tmp_path / "src").resolve())


def test_only_its_own_stale_temporary_folders_are_removed(tmp_path: Path) -> None:
    _patient(tmp_path / "src" / "a")
    data = tmp_path / "data"
    data.mkdir()
    running = data / ".ds.v2.k3j5h7g9.tmp"  # an import into ds.v2, still running
    (running / "imagesTr").mkdir(parents=True)
    (running / ".mbnas_import_tmp").write_text("1")
    backup = data / ".data.backup.tmp"  # the user's
    (backup / "keep").mkdir(parents=True)
    (backup / "keep" / "x.txt").write_text("mine")
    killed = data / ".ds.a1b2c3d4.tmp"  # what a killed import into ds left
    (killed / "imagesTr").mkdir(parents=True)
    (killed / ".mbnas_import_tmp").write_text("1")
    unmarked = data / ".ds.e5f6g7h8.tmp"  # same name, not ours: kept
    unmarked.mkdir()
    before = _snapshot(data)
    import_dicom_rt(tmp_path / "src", data / "ds", ROIS)
    import_dicom_rt(tmp_path / "src", data / "*", ROIS)  # a name with a glob character
    after = _snapshot(data)
    kept = {k: v for k, v in before.items() if not k.startswith(".ds.a1b2c3d4.tmp/")}
    assert {k: after[k] for k in kept} == kept
    assert not killed.exists() and running.is_dir() and unmarked.is_dir()


def test_a_second_writer_of_one_out_is_refused_in_one_line(tmp_path: Path,
                                                           capsys) -> None:  # noqa: ANN001
    _patient(tmp_path / "src" / "a")
    lock = FileLock(tmp_path / ".ds.lock")  # what a running import or sample holds
    assert lock.acquire() is None
    try:
        assert _import(tmp_path / "src", tmp_path / "ds") == 2
    finally:
        lock.release()
    err = capsys.readouterr().err
    assert "another mbnas process" in err and "is writing" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "ds").exists()


@pytest.mark.parametrize("names", [("a b", "a_b"), ("Пациент", "Больной"), ("Anna", "anna")])
def test_patients_whose_names_clean_alike_are_not_merged(tmp_path: Path, names,
                                                         capsys) -> None:  # noqa: ANN001
    for name in names:
        _patient(tmp_path / "src" / name / "p")
    out = tmp_path / "ds"
    code = _import(tmp_path / "src", out)
    captured = capsys.readouterr()
    if names[0].isascii():
        assert code == 2 and not out.exists()
        assert "same case id" in captured.err and "Traceback" not in captured.err
        assert all(str(tmp_path / "src" / n / "p") in captured.err for n in names)
    else:  # recognisable and distinct
        assert code == 0
        assert sorted(p.name for p in (out / "labelsTr").iterdir()) == sorted(
            f"{n}_p.nii.gz" for n in names)
        assert main(["check", str(out)]) == 0


_LIMITED_IMPORT = """
import resource, sys
from mbnas.cli import main
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[3]), int(sys.argv[3])))
sys.exit(main(["import", "dicom-rt", sys.argv[1], "--out", sys.argv[2], "--roi", "tumour=GTV-1"]))
"""


def test_a_write_cut_short_by_a_file_size_limit_is_not_reported_as_done(
        tmp_path: Path) -> None:
    _patient(tmp_path / "src" / "a", size=64, noise=True)  # a 48 KB image, 2 KB of the rest
    out = tmp_path / "ds"
    done = subprocess.run([sys.executable, "-c", _LIMITED_IMPORT, str(tmp_path / "src"),
                           str(out), "20000"], capture_output=True, text=True)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "fail `mbnas check`" in done.stderr and "truncated" in done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists() and not list(tmp_path.glob(".ds.*.tmp"))
    assert _import(tmp_path / "src", out) == 0  # no limit: written, and check-clean
    assert main(["check", str(out)]) == 0


def test_a_second_sample_run_on_one_out_or_cache_is_refused_in_one_line(
        tmp_path: Path, capsys) -> None:  # noqa: ANN001
    for held, says in ((tmp_path / ".ds.lock", "is writing this folder"),
                       (tmp_path / "cache" / "samples" / ".lung-ct-src.lock",
                        "is building a sample from")):
        lock = FileLock(held)  # what a running `mbnas sample` holds
        assert lock.acquire() is None
        try:
            code = main(["sample", "lung-ct", "--out", str(tmp_path / "ds"),
                         "--cache", str(tmp_path / "cache")])
        finally:
            lock.release()
        err = capsys.readouterr().err
        assert code == 2 and says in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "ds").exists() and not (tmp_path / "cache" / "downloads").exists()
