"""A 3D network from search to use: evaluate, predict (fold ensemble, scan grid), ONNX
(labels equal to PyTorch's) and an nnU-Net configuration inheriting 3d_fullres.

Every test shares one trained 3D model: a search of one network and its evaluation on a
4-case 32 x 32 x 8 phantom, 16 x 16 x 8 patches, 1 epoch of 2 steps."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
import yaml
from nnunet_plans import write_3d_plans

from mbnas.cli import main
from mbnas.data import make_phantom

PATCH = [16, 16, 8]


@pytest.fixture(scope="module")
def phantom_3d(tmp_path_factory) -> Path:
    """A small 3D phantom: 4 cases of up to 32 x 32 x 8 voxels."""
    return make_phantom(tmp_path_factory.mktemp("phantom3d") / "Task09_Spleen", "spleen",
                        n_cases=4, seed=0, shape=(32, 32, 8))


@pytest.fixture(scope="module")
def evaluated_3d(tmp_path_factory, phantom_3d: Path) -> Path:
    """A 3D search of one network, then its evaluation (2 folds x 1 seed)."""
    tmp = tmp_path_factory.mktemp("pipe3d")
    cfg = {"data_dir": str(phantom_3d), "space": "mbnas-3d", "strategy": "random",
           "budget": 1, "seed": 0, "cache_dir": str(tmp / "cache"), "threads": 1,
           "device": "cpu",
           "protocol": {"epochs": 1, "folds": 2, "seeds": [0], "base_channels": 4,
                        "batch_size": 2, "precision": "fp32",
                        "volume": {"patch_size": PATCH, "iterations_per_epoch": 2}}}
    (tmp / "search.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["search", "--config", str(tmp / "search.yaml"), "--out",
                 str(tmp / "run")]) == 0
    assert main(["evaluate", str(tmp / "run"), "--out", str(tmp / "eval"), "--seeds", "1",
                 "--folds", "2", "--threads", "1", "--device", "cpu"]) == 0
    return tmp


def test_evaluation_measures_every_case_on_the_original_grid(evaluated_3d: Path,
                                                             phantom_3d: Path) -> None:
    evaluation = json.loads((evaluated_3d / "eval" / "evaluation.json").read_text())
    models = {m["name"]: m for m in evaluation["models"]}
    # the searched network and the U-Net preset at its width; the smp baselines (2D
    # only) are left out
    assert sorted(m["kind"] for m in models.values()) == ["baseline", "searched"]
    assert not any(m["architecture"].get("kind") == "baseline" for m in models.values())
    n_cases = len(list((phantom_3d / "labelsTr").glob("*.nii.gz")))
    for model in models.values():
        cases = model["cases"]
        assert len(cases) == n_cases  # 2 folds x 1 seed: every case once
        assert all(0 <= c["metrics"]["dice"] <= 1 for c in cases)
        assert model["cost"]["macs_input_size"] == PATCH
    meta = json.loads((evaluated_3d / "run" / "model" / "model.json").read_text())
    assert meta["volume"]["patch_size"] == PATCH and len(meta["weights"]) == 2


def test_predict_writes_labels_on_the_scan_grid_and_onnx_gives_the_same(
        evaluated_3d: Path, phantom_3d: Path, tmp_path: Path) -> None:
    model = evaluated_3d / "run" / "model"
    scan = sorted((phantom_3d / "imagesTr").glob("*.nii.gz"))[0]
    assert main(["predict", "--model", str(model), "--input", str(scan), "--output",
                 str(tmp_path / "torch"), "--device", "cpu"]) == 0
    out = nib.load(tmp_path / "torch" / scan.name)
    image = nib.load(scan)
    assert out.shape == image.shape[:3]
    assert np.allclose(out.affine, image.affine)
    assert main(["export", "onnx", str(model), "--out", str(tmp_path / "onnx")]) == 0
    meta = json.loads((tmp_path / "onnx" / "model.json").read_text())
    assert meta["onnx_input"]["shape"][2:] == ["depth", "height", "width"]
    assert main(["predict", "--model", str(tmp_path / "onnx"), "--input", str(scan),
                 "--output", str(tmp_path / "ort"), "--backend", "onnxruntime",
                 "--device", "cpu"]) == 0
    torch_labels = np.asanyarray(out.dataobj)
    ort_labels = np.asanyarray(nib.load(tmp_path / "ort" / scan.name).dataobj)
    assert np.array_equal(torch_labels, ort_labels)
    # the labels of a briefly trained network may be one class: compare the ensembles'
    # probabilities too, on a patch and on a larger input (dynamic spatial axes)
    from mbnas.inference.model_folder import load_model_folder
    from mbnas.inference.onnx_runtime import load_onnx_folder
    from mbnas.inference.segment import Segmenter

    pt = Segmenter(load_model_folder(model), "cpu")
    ort = Segmenter(load_onnx_folder(tmp_path / "onnx"), "cpu", backend="onnxruntime")
    gen = torch.Generator().manual_seed(0)
    for shape in ((16, 16, 8), (32, 48, 16)):
        x = torch.randn(1, 1, *shape, generator=gen)
        a, b = pt.probabilities(x), ort.probabilities(x)
        assert a.shape == b.shape == (1, 2, *shape)
        assert torch.allclose(a, b, atol=1e-4)


def test_nnunet_configuration_inherits_3d_fullres_and_builds(evaluated_3d: Path,
                                                             tmp_path: Path) -> None:
    from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
    from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

    path = write_3d_plans(tmp_path / "nnUNetPlans.json", "Dataset042_Phantom", [64, 64, 16],
                          [[1, 1, 1], [2, 2, 1], [2, 2, 2], [2, 2, 2]])
    assert main(["export", "nnunet", str(evaluated_3d / "run"), "--plans", str(path),
                 "--base-channels", "4"]) == 0
    config = PlansManager(str(path)).get_configuration("3d_fullres_mbnas")
    assert config.patch_size == [64, 64, 16]  # inherited
    net = get_network_from_plans(config.network_arch_class_name,
                                 config.network_arch_init_kwargs,
                                 config.network_arch_init_kwargs_req_import, 1, 2,
                                 deep_supervision=True)
    outputs = net(torch.zeros(1, 1, 64, 64, 16))
    assert outputs[0].shape == (1, 2, 64, 64, 16)
    assert [tuple(o.shape[2:]) for o in outputs[1:]] == [(32, 32, 16), (16, 16, 8)]


def test_report_and_card_say_3d_with_patch_and_strides(evaluated_3d: Path) -> None:
    out = evaluated_3d / "report"
    assert main(["report", "--evaluation", str(evaluated_3d / "eval"), "--out",
                 str(out)]) == 0
    card = json.dumps(json.loads((out / "card.json").read_text()))
    assert "16 x 16 x 8 voxel patches (3D volumes" in card
    assert "planned strides per level" in card
    search_only = evaluated_3d / "report-search"
    assert main(["report", str(evaluated_3d / "run"), "--out", str(search_only)]) == 0
    card = json.dumps(json.loads((search_only / "card.json").read_text()))
    assert "MMAC at 16x16x8 (3D patch)" in card  # the best network's cost, at the patch
