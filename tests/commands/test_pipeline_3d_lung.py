"""The 3D chain on real patients: search, evaluate, report, predict, ONNX and nnU-Net export
with `--space mbnas-3d` on four cases of the real lung CT sample (8 x 8 x 10 mm voxels,
16 x 16 x 8 patches, 1 epoch of 2 steps: it checks that every stage runs on real scans and
keeps their grid, not what the network learns)."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import yaml
from lung_subset import lung_subset
from nnunet_plans import write_3d_plans

from mbnas.cli import main


def test_the_3d_chain_runs_on_real_patients(lung_sample: Path, tmp_path: Path) -> None:
    data = lung_subset(lung_sample, tmp_path / "LungCT")
    cfg = {"data_dir": str(data), "space": "mbnas-3d", "strategy": "random", "budget": 1,
           "seed": 0, "cache_dir": str(tmp_path / "cache"), "threads": 1, "device": "cpu",
           "protocol": {"epochs": 1, "folds": 2, "seeds": [0], "base_channels": 4,
                        "batch_size": 2, "precision": "fp32",
                        "volume": {"patch_size": [16, 16, 8], "iterations_per_epoch": 2,
                                   "spacing": [8.0, 8.0, 10.0]}}}
    (tmp_path / "search.yaml").write_text(yaml.safe_dump(cfg))
    run, evaluation = tmp_path / "run", tmp_path / "eval"
    assert main(["search", "--config", str(tmp_path / "search.yaml"), "--out", str(run)]) == 0
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["protocol"]["volume"]["strides"][0] == [2, 2, 2]  # 10 mm <= 2 x 8 mm
    assert len((run / "search_log.jsonl").read_text().splitlines()) == 1
    assert main(["evaluate", str(run), "--out", str(evaluation), "--seeds", "1", "--folds",
                 "2", "--threads", "1", "--device", "cpu"]) == 0
    evaluated = json.loads((evaluation / "evaluation.json").read_text())
    case_ids = {c["case_id"] for m in evaluated["models"] for c in m["cases"]}
    assert case_ids == {f"pycerr_pat_{i}" for i in range(1, 5)}  # every patient validated

    assert main(["report", "--evaluation", str(evaluation), "--out",
                 str(tmp_path / "report")]) == 0
    card = json.dumps(json.loads((tmp_path / "report" / "card.json").read_text()))
    assert "16 x 16 x 8 voxel patches (3D volumes" in card

    model = run / "model"
    scan = data / "imagesTr" / "pycerr_pat_2.nii.gz"
    assert main(["predict", "--model", str(model), "--input", str(scan), "--output",
                 str(tmp_path / "torch"), "--device", "cpu"]) == 0
    out, image = nib.load(tmp_path / "torch" / scan.name), nib.load(scan)
    assert out.shape == image.shape[:3] and np.allclose(out.affine, image.affine)
    labels = np.asanyarray(out.dataobj)
    assert set(np.unique(labels)) <= {0, 1}

    assert main(["export", "onnx", str(model), "--out", str(tmp_path / "onnx")]) == 0
    assert main(["predict", "--model", str(tmp_path / "onnx"), "--input", str(scan),
                 "--output", str(tmp_path / "ort"), "--backend", "onnxruntime",
                 "--device", "cpu"]) == 0
    assert np.array_equal(labels, np.asanyarray(nib.load(tmp_path / "ort" / scan.name).dataobj))

    path = write_3d_plans(tmp_path / "nnUNetPlans.json", "Dataset043_LungCT", [64, 64, 32],
                          [[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2]])
    assert main(["export", "nnunet", str(run), "--plans", str(path),
                 "--base-channels", "4"]) == 0
    configurations = json.loads(path.read_text())["configurations"]
    assert configurations["3d_fullres_mbnas"]["inherits_from"] == "3d_fullres"
