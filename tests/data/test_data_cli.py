"""`mbnas check`, `mbnas preprocess` and `mbnas phantom` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from mbnas.cli import main
from mbnas.data.check import check_dataset


def break_dataset(root: Path, nii) -> None:
    """Four errors and two warnings (a stray file, an image no entry points to)."""
    (root / "imagesTr" / "stray.txt").write_text("?")
    label = root / "labelsTr" / "spleen_2.nii.gz"
    label.write_bytes(label.read_bytes()[:200])
    path = root / "imagesTr" / "spleen_1.nii.gz"
    image, affine = nii.read(path)
    image = image.astype(np.float32)
    image[0, 0, 0] = np.nan
    nii.write(path, image, affine)
    meta = json.loads((root / "dataset.json").read_text())
    meta["numTraining"] = 5
    meta["training"][2]["image"] = "../outside.nii.gz"
    (root / "dataset.json").write_text(json.dumps(meta))


def test_check_lists_every_problem_and_exits_2(spleen_msd, copy_dataset, nii, capsys):
    root = copy_dataset(spleen_msd)
    break_dataset(root, nii)
    problems = check_dataset(root)
    assert sum(p.is_error for p in problems) == 4 and len(problems) == 6
    assert main(["check", str(root)]) == 2
    out = capsys.readouterr().out.splitlines()
    verdict = len(problems)  # the problems, the verdict, then the dataset's summary
    assert out[:verdict] == [str(p) for p in problems]
    assert all(line.startswith(("ERROR ", "WARNING ")) for line in out[:verdict])
    assert out[verdict].startswith("FAILED") and "4 error(s), 2 warning(s)" in out[verdict]


def test_check_clean_and_warning_only_datasets_exit_0(spleen_msd, copy_dataset, capsys):
    assert main(["check", str(spleen_msd)]) == 0
    assert capsys.readouterr().out.startswith("OK: ")
    root = copy_dataset(spleen_msd)
    (root / "labelsTr" / "notes.txt").write_text("?")
    assert main(["check", str(root)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("WARNING ") and "notes.txt" in out[0]
    assert "0 error(s), 1 warning(s)" in out[1]  # then the spacing lines


def test_check_of_garbage_exits_2_without_traceback(tmp_path, capsys):
    (tmp_path / "dataset.json").write_bytes(b"\x89PNG\r\n\x1a\n\x00")
    assert main(["check", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    assert f"ERROR {tmp_path / 'dataset.json'}:" in captured.out


def test_console_script_check(spleen_msd, copy_dataset, nii):
    root = copy_dataset(spleen_msd)
    break_dataset(root, nii)
    script = Path(sys.executable).with_name("mbnas")
    result = subprocess.run([str(script), "check", str(root)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "truncated or corrupt" in result.stdout and "1 NaN" in result.stdout
    assert "points outside" in result.stdout and "numTraining is 5" in result.stdout


def test_phantom_then_preprocess_twice(tmp_path, capsys):
    data = tmp_path / "prostate"
    assert main(["phantom", "--task", "prostate", "--cases", "3", "--out", str(data),
                 "--sites", "3", "--shape", "24", "24", "6", "--format", "nnunet"]) == 0
    assert "3 sites" in capsys.readouterr().out
    assert (data / "imagesTr" / "prostate_02_0001.nii.gz").is_file()
    args = ["preprocess", str(data), "--cache", str(tmp_path / "cache"), "--size", "16"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "3 cases" in out and "2 x 16 x 16" in out and "T2, ADC" in out
    assert "0 background, 1 PZ, 2 TZ" in out and "(written)" in out
    assert main([*args, "--quiet"]) == 0
    assert "reused, nothing to do" in capsys.readouterr().out


def test_user_errors_are_one_line(tmp_path, capsys):
    assert main(["phantom", "--task", "spleen", "--cases", "2", "--sites", "3",
                 "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: sites must be between") and err.count("\n") == 1
    assert main(["preprocess", str(tmp_path / "missing"), "--cache", str(tmp_path / "c")]) == 2
    assert "no such dataset folder" in capsys.readouterr().err


def test_preprocess_cache_defaults_to_mbnas_cache(tmp_path, capsys, monkeypatch):
    data = tmp_path / "ph"
    assert main(["phantom", "--task", "spleen", "--cases", "2", "--out", str(data),
                 "--shape", "16", "16", "4"]) == 0
    monkeypatch.setenv("MBNAS_CACHE", str(tmp_path / "envcache"))
    assert main(["preprocess", str(data), "--size", "16", "--quiet"]) == 0
    assert list((tmp_path / "envcache").iterdir()), "nothing written to $MBNAS_CACHE"


def test_check_prints_a_summary_of_the_dataset(spleen_msd, capsys):
    import nibabel as nib

    from mbnas.data.check import voxel_sizes
    from mbnas.data.formats import read_dataset

    assert main(["check", str(spleen_msd)]) == 0
    out = capsys.readouterr().out
    dataset = read_dataset(spleen_msd)
    assert f"{len(dataset.cases)} training case(s)" in out
    assert f"channels: {', '.join(dataset.channel_names)}" in out
    assert all(f"{k} {v}" in out for k, v in dataset.label_names.items())
    depths = sorted({nib.load(str(c.images[0])).shape[2] for c in dataset.cases})
    size = out.split("size (voxels): ", 1)[1].splitlines()[0]
    assert size.endswith(str(depths[0]) if len(depths) == 1 else f"{depths[0]}-{depths[-1]}")
    first = voxel_sizes(nib.load(str(dataset.cases[0].images[0])).affine)
    assert f"{first[2]:.3g}" in out.split("spacing (mm): ", 1)[1].splitlines()[0]
    assert "sites: " in out
