"""The model folder: what export_model writes and what load_model_folder refuses."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mbnas.inference import (
    MODEL_FORMAT,
    ModelFolderError,
    export_model,
    load_model_folder,
    normalisation_from_cache,
)
from mbnas.spaces.mbnas import preset


def _settings(files: list[Path], **changes) -> dict:
    base = dict(architecture=preset("unet").to_dict(), in_channels=1, n_classes=2,
                base_channels=8, image_size=32, label_names={0: "background", 1: "spleen"},
                channel_names=("CT",),
                normalisation={"CT": {"scheme": "ct", "clip": [-10.0, 200.0], "mean": 90.0,
                                      "std": 30.0}},
                weights=files)
    return {**base, **changes}


def _copy_model(trained, tmp_path: Path) -> Path:
    return Path(shutil.copytree(trained.model_dir, tmp_path / "model"))


def test_export_writes_model_json_and_weights_that_load_back(trained, tmp_path):
    second = tmp_path / "fold1_seed0.pt"
    shutil.copy(trained.weights, second)
    path = export_model(tmp_path / "m", **_settings([trained.weights, second]))
    meta = json.loads(path.read_text())
    assert meta["format"] == MODEL_FORMAT
    assert meta["weights"] == ["fold0_seed0.pt", "fold1_seed0.pt"]
    assert (tmp_path / "m" / "fold0_seed0.pt").read_bytes() == trained.weights.read_bytes()
    model = load_model_folder(tmp_path / "m")
    assert model.architecture == preset("unet")
    assert (model.in_channels, model.n_classes, model.base_channels, model.image_size) == \
        (1, 2, 8, 32)
    assert model.label_names == {0: "background", 1: "spleen"}
    assert model.channel_names == ("CT",)
    assert model.normalisation[0]["clip"] == [-10.0, 200.0]
    assert [p.name for p in model.weights] == ["fold0_seed0.pt", "fold1_seed0.pt"]
    assert not list((tmp_path / "m").glob(".*.tmp"))


def test_export_again_removes_weights_no_longer_listed(trained, tmp_path):
    second = tmp_path / "fold1_seed0.pt"
    shutil.copy(trained.weights, second)
    export_model(tmp_path / "m", **_settings([trained.weights, second]))
    export_model(tmp_path / "m", **_settings([second]))
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["fold1_seed0.pt",
                                                                  "model.json"]


@pytest.mark.parametrize("changes, expected", [
    ({"n_classes": 3}, "label_names"),
    ({"channel_names": ("CT", "PET")}, "channel_names"),
    ({"normalisation": {"CT": {"scheme": "minmax"}}}, "scheme"),
    ({"normalisation": {"CT": {"scheme": "ct", "clip": [0, 1]}}}, "'mean'"),
    ({"architecture": {"kind": "nonsense"}}, "invalid architecture"),
    ({"image_size": 0}, "image_size"),
    ({"weights": []}, "at least one"),
])
def test_export_refuses_inconsistent_settings(trained, tmp_path, changes, expected):
    with pytest.raises(ModelFolderError, match=expected):
        export_model(tmp_path / "m", **_settings([trained.weights], **changes))
    assert not (tmp_path / "m" / "model.json").exists()


def test_export_refuses_missing_and_clashing_weights(trained, tmp_path):
    with pytest.raises(ModelFolderError, match="nowhere.pt does not exist"):
        export_model(tmp_path / "m", **_settings([tmp_path / "nowhere.pt"]))
    other = tmp_path / "other" / "fold0_seed0.pt"
    other.parent.mkdir()
    shutil.copy(trained.weights, other)
    with pytest.raises(ModelFolderError, match="same name"):
        export_model(tmp_path / "m", **_settings([trained.weights, other]))


def test_load_refuses_missing_folder_and_missing_model_json(tmp_path):
    with pytest.raises(ModelFolderError, match="does not exist"):
        load_model_folder(tmp_path / "absent")
    with pytest.raises(ModelFolderError, match="no model.json"):
        load_model_folder(tmp_path)


def test_load_refuses_bad_json_and_missing_fields(trained, tmp_path):
    model = _copy_model(trained, tmp_path)
    (model / "model.json").write_text("{not json")
    with pytest.raises(ModelFolderError, match=r"model\.json is not valid JSON"):
        load_model_folder(model)
    (model / "model.json").write_text(json.dumps({"format": MODEL_FORMAT}))
    with pytest.raises(ModelFolderError, match="missing field.*architecture"):
        load_model_folder(model)


def test_load_refuses_missing_weights_and_other_formats(trained, tmp_path):
    model = _copy_model(trained, tmp_path)
    meta = json.loads((model / "model.json").read_text())
    (model / "fold0_seed0.pt").unlink()
    with pytest.raises(ModelFolderError, match="missing .*fold0_seed0.pt"):
        load_model_folder(model)
    (model / "model.json").write_text(json.dumps({**meta, "format": 99}))
    with pytest.raises(ModelFolderError, match="format 99 is not supported"):
        load_model_folder(model)
    (model / "model.json").write_text(json.dumps({**meta, "weights": ["../x.pt"]}))
    with pytest.raises(ModelFolderError, match="inside the folder"):
        load_model_folder(model)


def test_normalisation_from_cache_gives_training_statistics(trained):
    norm = normalisation_from_cache(trained.data_dir, trained.cache_dir, 32)
    assert list(norm) == ["CT"]
    ct = norm["CT"]
    assert ct["scheme"] == "ct"
    low, high = ct["clip"]
    assert low < ct["mean"] < high and ct["std"] > 0


def test_normalisation_of_mr_channels_is_per_case(tmp_path):
    from mbnas.data import make_phantom

    root = make_phantom(tmp_path / "prostate", "prostate", n_cases=2, seed=0,
                        shape=(16, 16, 4))
    assert normalisation_from_cache(root, tmp_path / "cache", 16) == {
        "T2": {"scheme": "zscore"}, "ADC": {"scheme": "zscore"}}
