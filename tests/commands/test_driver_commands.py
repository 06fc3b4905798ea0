"""`mbnas train` and `mbnas demo` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

from mbnas.cli import main

TINY = ["--protocol", "quick", "--epochs", "2", "--folds", "2", "--image-size", "32"]


def test_train_prints_curve_and_metrics_then_reuses_the_run(
        tmp_path: Path, phantom_spleen: Path, phantom_cache: Path, capsys) -> None:
    args = ["train", str(phantom_spleen), "--arch", "preset:unet", "--fold", "1", "--seed", "2",
            "--out", str(tmp_path / "t"), "--cache", str(phantom_cache), *TINY]
    assert main(args) == 0
    device, out = capsys.readouterr().out.split("\n", 1)
    assert device.startswith("device: ")  # what runs where, before the training
    assert out.startswith("trained:") and "fold 1 seed 2" in out
    assert "epoch  loss    val_dice" in out and "score (mean val Dice" in out
    cases = json.loads(out.split("per validation case: ", 1)[1])
    assert all({"mean_dice", "mean_hd95", "mean_surface_dice"} <= set(v) for v in cases.values())
    assert list((tmp_path / "t" / "weights").rglob("fold1_seed2.pt"))
    assert main(args) == 0
    assert capsys.readouterr().out.split("\n", 1)[1].startswith("from the store (not retrained)")


def test_train_refuses_a_fold_outside_the_protocol(tmp_path: Path, phantom_spleen: Path,
                                                   capsys) -> None:
    code = main(["train", str(phantom_spleen), "--fold", "5", "--out", str(tmp_path), *TINY])
    assert code == 2
    assert "--fold must be in 0..1" in capsys.readouterr().err


def test_train_refuses_a_broken_dataset(tmp_path: Path, capsys) -> None:
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "dataset.json").write_text("{not json")
    code = main(["train", str(tmp_path / "ds"), "--out", str(tmp_path / "o"),
                 "--cache", str(tmp_path / "c"), *TINY])
    err = capsys.readouterr().err
    assert code == 2 and "dataset.json" in err and "Traceback" not in err


def test_demo_prints_eta_best_network_and_next_command(tmp_path: Path) -> None:
    """`mbnas demo` as a user runs it, in a subprocess at the smallest settings it takes:
    a real search; $MBNAS_CACHE honoured; an ETA, the best network and its drawing, and
    the next command printed."""
    import os
    import re
    import subprocess
    import sys

    out, cache = tmp_path / "demo", tmp_path / "env_cache"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "MBNAS_CACHE": str(cache)}
    argv = [sys.executable, "-m", "mbnas.cli", "demo", "--out", str(out), "--budget", "2",
            "--epochs", "1", "--cases", "4", "--threads", "1"]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert re.search(r"^ETA: \d+m\d\ds for the remaining 1 evaluation", text, re.M)
    assert "1 CPU thread(s) per run (--threads)" in text
    assert "U-Net preset score:" in text and "vs the U-Net preset" in text
    drawing = re.search(r"^best network drawing: (\S+)", text, re.M)
    assert drawing and Path(drawing.group(1)).is_file()
    assert f"next: mbnas report {out / 'search'}" in text
    assert any(cache.rglob("*")) and not (out / "cache").exists()  # $MBNAS_CACHE, not OUT
    log = (out / "search" / "search_log.jsonl").read_text().splitlines()
    assert len(log) == 2 and (out / "search" / "progress.png").exists()
    assert "Warning" not in done.stderr and "Traceback" not in done.stderr
    # every score with its spread and threads; the difference judged against its noise
    import json

    from mbnas.reporting.noise import within_noise

    entries = [json.loads(line) for line in log]
    assert all(e["se"] is not None and e["threads"] == 1 for e in entries), entries
    best = max(entries, key=lambda e: e["score"])
    verdict = within_noise(best["score"] - entries[0]["score"], best["se"], entries[0]["se"])
    said = re.search(r"^best found score: .*\(([+-]\d\.\d{4}), (within|beyond) noise "
                     r"\(SE of the difference \d\.\d{4}\) vs the U-Net preset\)", text, re.M)
    assert said, text
    assert said.group(2) == ("within" if verdict else "beyond")
    assert f" ± {entries[0]['se']:.4f} SE" in text


def test_search_dry_run_resolves_paper_by_dataset_name_and_writes_nothing(
        tmp_path: Path, capsys) -> None:
    import yaml

    from mbnas.data import make_phantom

    seen = {}
    for task in ("prostate", "spleen", "other"):
        data = make_phantom(tmp_path / f"data_{task}", "spleen" if task == "other" else task,
                            n_cases=2, seed=0, shape=(16, 16, 4))
        if task == "other":  # a dataset that is neither: named after neither organ
            meta = json.loads((data / "dataset.json").read_text())
            (data / "dataset.json").write_text(json.dumps({**meta, "name": "Liver"}))
            data = data.rename(tmp_path / "liver")
        before = sorted(p.name for p in tmp_path.iterdir())
        args = ["search", str(data), "--out", str(tmp_path / "run"), "--dry-run",
                "--cache", str(tmp_path / "cache")]
        assert main(args) == 0
        captured = capsys.readouterr()
        assert sorted(p.name for p in tmp_path.iterdir()) == before  # no run folder, no cache
        resolved = yaml.safe_load(captured.out.split("protocol key")[0])
        seen[task] = resolved["protocol"]
        assert f"-> {'paper-spleen' if task != 'prostate' else 'paper-prostate'}" in captured.out
    assert seen["prostate"]["epochs"] == 100 and seen["spleen"]["epochs"] == 50
    assert seen["other"] == seen["spleen"]
    for p in seen.values():
        assert p["samples_per_epoch"] >= 2048 and p["dice"] == "pooled"
    assert f"an epoch is at least {seen['other']['samples_per_epoch']} samples" in captured.out
    assert main([*args, "--protocol", "quick"]) == 0  # its epoch is one pass, not "0 samples"
    assert "; an epoch is one pass over the training slices;" in capsys.readouterr().out
    assert seen["spleen"]["augment"]["flip_p"] == 0.4
    assert seen["prostate"]["augment"]["flip_p"] == 0.0
