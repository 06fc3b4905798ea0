"""Hostile JSON and an output location that refuses writes give one line and exit code 2,
never a traceback (issue 11, item 10)."""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mbnas.cli import main

SMALL = ["--protocol", "quick", "--epochs", "1", "--image-size", "32", "--folds", "2",
         "--device", "cpu"]
TINY = [*SMALL, "--threads", "1"]
HUGE = "9" * 5000  # past Python's 4300-digit limit for turning text into an int
LONG = "n" * 300
NODE = '{"channels": "down", "block": "vgg", "kernel": %s, "skip": 0}'
HOSTILE_GENOTYPES = {
    "invalid UTF-8": b'\xff\xfe{"kind": "genotype", "nodes": []}',
    "huge integer": ('{"kind": "genotype", "nodes": [%s]}' % (NODE % HUGE)).encode(),
    "huge integer Python can read": ('{"kind": "genotype", "nodes": [%s]}'
                                     % (NODE % ("9" * 4000))).encode(),
    "deep nesting": b'{"kind": "genotype", "nodes": ' + b"[" * 100000,
    "300-character block name": json.dumps({"kind": "genotype", "nodes": [
        {"channels": "down", "block": LONG, "kernel": 3, "skip": 0}]}).encode(),
    "300-character field name": json.dumps({"kind": "genotype", "nodes": [
        {"channels": "down", "block": "vgg", "kernel": 3, "skip": 0, LONG: 1}]}).encode(),
}


def _one_line(text: str) -> str:
    err = text.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize("content", HOSTILE_GENOTYPES.values(), ids=HOSTILE_GENOTYPES)
def test_hostile_genotype_files(tmp_path: Path, capsys, phantom_spleen: Path,
                                content: bytes) -> None:
    path = tmp_path / "genotype.json"
    path.write_bytes(content)
    for argv in (["space", "cost", str(path), "--no-memory"],
                 ["space", "draw", str(path), "--out", str(tmp_path / "drawn")],
                 ["train", str(phantom_spleen), "--arch", str(path), *SMALL,
                  "--out", str(tmp_path / "train")]):
        assert main(argv) == 2, argv
        assert str(path) in _one_line(capsys.readouterr().err), argv
    assert sorted(p.name for p in tmp_path.iterdir()) == ["genotype.json"]  # nothing written


def test_names_of_300_characters(tmp_path: Path, capsys, phantom_spleen: Path,
                                 phantom_cache: Path) -> None:
    out = tmp_path / "run"
    assert main(["search", str(phantom_spleen), *TINY, "--budget", "1", "--start", LONG,
                 "--cache", str(phantom_cache), "--out", str(out)]) == 2
    assert "unknown preset" in _one_line(capsys.readouterr().err)
    assert not out.exists()
    assert main(["space", "cost", str(tmp_path / f"{LONG}.json"), "--no-memory"]) == 2
    assert "File name too long" in _one_line(capsys.readouterr().err)
    assert main(["search", str(phantom_spleen), *TINY, "--budget", "1", "--start", "unet",
                 "--cache", str(phantom_cache), "--out", str(tmp_path / LONG)]) == 2
    assert "File name too long" in _one_line(capsys.readouterr().err)


def _dataset_with(tmp_path: Path, phantom_spleen: Path, content: bytes) -> Path:
    data = tmp_path / "data"
    shutil.copytree(phantom_spleen, data)
    (data / "dataset.json").write_bytes(content)
    return data


@pytest.mark.parametrize(("content", "problem"), [
    (b'\xff\xfe{"name": "x"}', "not a text file"),
    (b'{"name": "x", "numTraining": ' + HUGE.encode() + b"}", "4300 digits"),
    (b'{"name": ' + b"[" * 100000, "invalid JSON"),
], ids=["invalid UTF-8", "huge integer", "deep nesting"])
def test_hostile_dataset_json(tmp_path: Path, capsys, phantom_spleen: Path, content: bytes,
                              problem: str) -> None:
    data = _dataset_with(tmp_path, phantom_spleen, content)
    cache = tmp_path / "cache"
    assert main(["preprocess", str(data), "--cache", str(cache), "--size", "32",
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"{data / 'dataset.json'}" in err and problem in err  # the one problem listed
    assert main(["search", str(data), *TINY, "--budget", "1", "--cache", str(cache),
                 "--out", str(tmp_path / "run")]) == 2
    assert problem in capsys.readouterr().err
    assert not (tmp_path / "run").exists() and not cache.exists()


def test_dataset_json_with_300_character_names(tmp_path: Path, capsys,
                                               phantom_spleen: Path) -> None:
    meta = json.loads((phantom_spleen / "dataset.json").read_text())
    meta["name"] = LONG
    meta["labels"]["1"] = LONG  # a long class name is no error
    case = "c" * 300  # but a case file name over the file system's 255 bytes is
    meta["training"][0] = {"image": f"./imagesTr/{case}.nii.gz",
                           "label": f"./labelsTr/{case}.nii.gz"}
    data = _dataset_with(tmp_path, phantom_spleen, json.dumps(meta).encode())
    assert main(["preprocess", str(data), "--cache", str(tmp_path / "cache"), "--size", "32",
                 "--quiet"]) == 2
    err = _one_line(capsys.readouterr().err)
    assert f"{data / 'imagesTr' / case}" in err and "File name too long" in err


# Linux's sysfs: no process, root included, may create a file there (EPERM, or EROFS where
# /sys is mounted read-only). chmod cannot make a folder read-only for root, so this is the
# honest read-only location the tests can use.
READ_ONLY = Path("/sys")


@pytest.mark.skipif(not (READ_ONLY / "kernel").is_dir(), reason="needs Linux's /sys")
def test_read_only_output_location(capsys, phantom_spleen: Path, phantom_cache: Path) -> None:
    for argv in (["phantom", "--task", "spleen", "--cases", "2",
                  "--out", str(READ_ONLY / "mbnas-phantom")],
                 ["space", "draw", "unet", "--out", str(READ_ONLY / "mbnas-unet")],
                 ["search", str(phantom_spleen), *TINY, "--budget", "1", "--start", "unet",
                  "--cache", str(phantom_cache), "--out", str(READ_ONLY / "mbnas-run")]):
        assert main(argv) == 2, argv
        err = _one_line(capsys.readouterr().err)
        assert f"{READ_ONLY}/" in err and "mbnas-" in err, err


def _cli_with_file_size_limit(limit: int, *argv: str) -> subprocess.CompletedProcess:
    """The real command in a process whose files may not grow past ``limit`` bytes.

    Past the limit write() fails with EFBIG, as it fails with ENOSPC on a full disk (Python
    ignores SIGXFSZ). The limit is the process's own, so it needs no privileges and leaves
    the test process alone.
    """
    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run([sys.executable, "-m", "mbnas.cli", *argv], capture_output=True,
                          text=True, preexec_fn=limit_file_size, timeout=900)


def test_full_output_location(tmp_path: Path, phantom_spleen: Path, capsys) -> None:
    done = _cli_with_file_size_limit(20_000, "phantom", "--task", "spleen", "--cases", "2",
                                     "--out", str(tmp_path / "phantom"))
    assert done.returncode == 2
    assert f"{tmp_path}/" in _one_line(done.stderr) and "File too large" in done.stderr
    assert list(tmp_path.iterdir()) == []  # no half-written dataset, no temporary folder

    cache = tmp_path / "cache"
    assert main(["preprocess", str(phantom_spleen), "--cache", str(cache), "--size", "32",
                 "--quiet"]) == 0
    capsys.readouterr()
    out = tmp_path / "run"
    search = ["search", str(phantom_spleen), *TINY, "--budget", "1", "--start", "unet",
              "--cache", str(cache), "--out", str(out)]
    done = _cli_with_file_size_limit(100_000, *search)
    assert done.returncode == 2
    assert f"{out}/" in _one_line(done.stderr)  # the store, weights or mirror that failed
    assert main(search) == 0  # with room again, the same command finishes the search
    assert (out / "best.json").is_file()
