"""ONNX export of a trained model folder and `mbnas predict --backend onnxruntime`."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import onnxruntime as ort
import pytest
import torch

from mbnas.cli import main
from mbnas.inference.model_folder import load_model_folder
from mbnas.inference.segment import Segmenter

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def onnx_dir(trained, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("onnx") / "onnx"
    assert main(["export", "onnx", str(trained.model_dir), "--out", str(out)]) == 0
    return out


def test_export_writes_one_file_per_network_and_the_preprocessing(trained, onnx_dir):
    meta = json.loads((onnx_dir / "model.json").read_text())
    source = json.loads((trained.model_dir / "model.json").read_text())
    assert meta["onnx"] == ["fold0_seed0.onnx"] and (onnx_dir / "fold0_seed0.onnx").is_file()
    assert "dynamo=True" in meta["onnx_exporter"]
    assert meta["onnx_input"]["size_multiple"] == 8  # the U-Net preset reaches input/8
    for key in ("normalisation", "image_size", "channel_names", "label_names"):
        assert meta[key] == source[key]


@pytest.mark.parametrize("batch, height, width", [(5, 32, 32), (1, 48, 80)])
def test_onnxruntime_probabilities_match_pytorch(trained, onnx_dir, batch, height, width):
    net = Segmenter(load_model_folder(trained.model_dir), "cpu").networks[0]
    images = trained.slices.subset([trained.held_out]).images[:batch]
    x = torch.nn.functional.interpolate(torch.from_numpy(images), size=(height, width),
                                        mode="bilinear", align_corners=False)
    with torch.no_grad():
        expected = net(x).softmax(1).numpy()
    session = ort.InferenceSession(str(onnx_dir / "fold0_seed0.onnx"),
                                   providers=["CPUExecutionProvider"])
    logits = session.run(None, {"image": x.numpy()})[0]
    got = torch.from_numpy(logits).softmax(1).numpy()
    assert got.shape == (len(images), 2, height, width)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("model", ["trained", "trained_spaced"])
def test_predict_writes_the_same_labels_with_either_backend(model, request, tmp_path):
    trained = request.getfixturevalue(model)
    onnx_dir = tmp_path / "onnx"
    assert main(["export", "onnx", str(trained.model_dir), "--out", str(onnx_dir)]) == 0
    scan = trained.data_dir / "imagesTr" / f"{trained.held_out}.nii.gz"
    for backend, folder in (("torch", trained.model_dir), ("onnxruntime", onnx_dir)):
        assert main(["predict", "--model", str(folder), "--input", str(scan), "--output",
                     str(tmp_path / backend), "--device", "cpu", "--backend", backend]) == 0
    name = f"{trained.held_out}.nii.gz"
    with_torch = np.asarray(nib.load(tmp_path / "torch" / name).dataobj)
    with_onnx = np.asarray(nib.load(tmp_path / "onnxruntime" / name).dataobj)
    assert with_torch.any()
    np.testing.assert_array_equal(with_onnx, with_torch)


def test_onnx_folder_keeps_the_target_spacing(trained_spaced, tmp_path):
    from mbnas.inference.onnx_runtime import load_onnx_folder

    assert main(["export", "onnx", str(trained_spaced.model_dir), "--out",
                 str(tmp_path / "onnx")]) == 0
    assert load_onnx_folder(tmp_path / "onnx").target_spacing == \
        load_model_folder(trained_spaced.model_dir).target_spacing > 0


def _one_line_error(capsys, problem: str) -> None:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and problem in err and "Traceback" not in err


def test_export_of_a_folder_without_model_json_is_refused(tmp_path, capsys):
    (tmp_path / "model").mkdir()
    code = main(["export", "onnx", str(tmp_path / "model"), "--out", str(tmp_path / "out")])
    assert code == 2
    _one_line_error(capsys, "model.json")
    assert not (tmp_path / "out").exists()


def test_onnxruntime_backend_refuses_a_folder_without_onnx_files(trained, tmp_path, capsys):
    scan = trained.data_dir / "imagesTr" / f"{trained.held_out}.nii.gz"
    code = main(["predict", "--model", str(trained.model_dir), "--input", str(scan),
                 "--output", str(tmp_path / "out"), "--backend", "onnxruntime"])
    assert code == 2
    _one_line_error(capsys, "mbnas export onnx")
    assert not (tmp_path / "out").exists()


def test_a_foreign_onnx_file_is_refused_by_its_checksum(trained, onnx_dir, tmp_path, capsys):
    import shutil

    import onnx
    from onnx import numpy_helper

    from mbnas.store import file_sha256

    meta = json.loads((onnx_dir / "model.json").read_text())
    assert meta["onnx_sha256"] == {n: file_sha256(onnx_dir / n) for n in meta["onnx"]}
    # Another network of the same inputs and outputs: one weight tensor changed, so it
    # loads and runs, and only the checksum tells it apart.
    copy = tmp_path / "onnx"
    shutil.copytree(onnx_dir, copy)
    foreign = onnx.load(str(copy / "fold0_seed0.onnx"))
    tensor = next(t for t in foreign.graph.initializer if t.dims and np.prod(t.dims) > 1)
    tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor) * 2, tensor.name))
    onnx.save(foreign, str(copy / "fold0_seed0.onnx"))
    ort.InferenceSession(str(copy / "fold0_seed0.onnx"), providers=["CPUExecutionProvider"])
    scan = trained.data_dir / "imagesTr" / f"{trained.held_out}.nii.gz"
    code = main(["predict", "--model", str(copy), "--input", str(scan), "--output",
                 str(tmp_path / "out"), "--device", "cpu", "--backend", "onnxruntime"])
    assert code == 2
    _one_line_error(capsys, "does not match its recorded checksum")
    assert not list((tmp_path / "out").glob("*.nii.gz"))


def test_onnx_files_get_the_mode_a_plain_write_would(trained, tmp_path):
    import os

    mask = os.umask(0o022)
    try:
        assert main(["export", "onnx", str(trained.model_dir), "--out",
                     str(tmp_path / "onnx")]) == 0
    finally:
        os.umask(mask)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "onnx").iterdir()}
    assert modes == {"fold0_seed0.onnx": 0o644, "model.json": 0o644}


def test_a_target_spacing_model_segments_a_structure_far_from_the_centre(trained_spaced,
                                                                          tmp_path):
    # The held-out case in the corner of a scan three times as wide: the networks' 32 px
    # window at 1 mm covers the middle 32 mm of its 110 mm, away from the spleen.
    case = trained_spaced.held_out
    image = nib.load(trained_spaced.data_dir / "imagesTr" / f"{case}.nii.gz")
    label = nib.load(trained_spaced.data_dir / "labelsTr" / f"{case}.nii.gz")
    pad = ((0, 96), (0, 96), (0, 0))
    data = np.pad(np.asanyarray(image.dataobj), pad, mode="edge")
    ref = np.pad(np.asanyarray(label.dataobj), pad)
    scan = tmp_path / "wide.nii.gz"
    nib.save(nib.Nifti1Image(data, image.affine), scan)
    assert main(["predict", "--model", str(trained_spaced.model_dir), "--input", str(scan),
                 "--output", str(tmp_path / "out"), "--device", "cpu"]) == 0
    pred = np.asarray(nib.load(tmp_path / "out" / "wide.nii.gz").dataobj) > 0
    dice = 2 * (pred & (ref > 0)).sum() / (pred.sum() + (ref > 0).sum())
    assert dice > 0.5, dice


def test_predict_shows_its_progress_and_takes_threads(trained, tmp_path, capsys):
    from mbnas.inference.segment import predict
    from mbnas.progress import CallbackSink, use_sink

    scan = trained.data_dir / "imagesTr" / f"{trained.held_out}.nii.gz"
    steps = []
    with use_sink(CallbackSink(lambda s: steps.append((s.name, s.done, s.total)))):
        predict(trained.model_dir, scan, tmp_path / "api", device="cpu", batch_size=4)
    slices = nib.load(scan).shape[2]
    assert ("segmenting", slices, slices) in steps  # the slices, counted as they go
    assert ("segmenting", 4, slices) in steps
    assert main(["predict", "--model", str(trained.model_dir), "--input", str(scan),
                 "--output", str(tmp_path / "out"), "--device", "cpu", "--threads", "1"]) == 0
    assert "1 CPU thread(s)" in capsys.readouterr().out
    assert main(["predict", "--model", str(trained.model_dir), "--input", str(scan),
                 "--output", str(tmp_path / "out2"), "--threads", "0"]) == 2
