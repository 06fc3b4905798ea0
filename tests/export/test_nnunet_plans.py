"""`mbnas export nnunet`: the configuration nnU-Net builds, and refusals that write nothing."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
from nnunetv2.utilities.plans_handling.plans_handler import PlansManager

from mbnas.cli import main
from mbnas.export.nnunet import MBNASNetwork
from mbnas.spaces.mbnas import Genotype, build_network, preset

# The 2d configuration nnUNetv2_plan_and_preprocess writes for a 32x32 dataset, shortened.
PLANS = {
    "dataset_name": "Dataset042_Phantom", "plans_name": "nnUNetPlans",
    "configurations": {"2d": {
        "data_identifier": "nnUNetPlans_2d", "batch_size": 2, "patch_size": [32, 32],
        "architecture": {
            "network_class_name":
                "dynamic_network_architectures.architectures.unet.PlainConvUNet",
            "arch_kwargs": {"n_stages": 4, "strides": [[1, 1], [2, 2], [2, 2], [2, 2]]},
            "_kw_requires_import": ["conv_op", "norm_op", "dropout_op", "nonlin"]},
    }},
}


@pytest.fixture
def plans(tmp_path: Path) -> Path:
    path = tmp_path / "nnUNetPlans.json"
    path.write_text(json.dumps(PLANS))
    return path


@pytest.fixture
def genotype_file(tmp_path: Path) -> Path:
    path = tmp_path / "best.json"
    path.write_text(json.dumps({"genotype": preset("unet").to_dict(), "score": 0.5}))
    return path


def _export(plans: Path, source: Path, *extra: str) -> int:
    return main(["export", "nnunet", str(source), "--plans", str(plans), "--base-channels", "4",
                 *extra])


def test_nnunet_builds_the_genotype_from_the_written_configuration(plans, genotype_file):
    assert _export(plans, genotype_file) == 0
    config = PlansManager(str(plans)).get_configuration("2d_mbnas")
    assert config.patch_size == [32, 32] and config.batch_size == 2  # inherited from 2d
    net = get_network_from_plans(config.network_arch_class_name,
                                 config.network_arch_init_kwargs,
                                 config.network_arch_init_kwargs_req_import, 1, 3,
                                 deep_supervision=True)
    assert isinstance(net, MBNASNetwork) and net.genotype == preset("unet")
    reference = build_network(preset("unet"), 1, 3, 4)
    assert sum(p.numel() for p in net.parameters()) == \
        sum(p.numel() for p in reference.parameters())
    outputs = net(torch.randn(2, 1, 32, 32))
    # nnU-Net's loss expects one output per scale of 1 / cumprod(strides[:-1]).
    assert [tuple(o.shape) for o in outputs] == [(2, 3, 32, 32), (2, 3, 16, 16), (2, 3, 8, 8)]
    net.decoder.deep_supervision = False  # what nnU-Net's trainer sets for validation
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(net(x), net.network(x))


def test_the_backup_holds_the_previous_plans(plans, genotype_file):
    before = plans.read_text()
    assert _export(plans, genotype_file) == 0
    assert (plans.parent / "nnUNetPlans.mbnas-backup.json").read_text() == before


def _refused(capsys, plans: Path, before: str, problem: str) -> None:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and problem in err and "Traceback" not in err
    assert plans.read_text() == before


def test_an_existing_configuration_needs_force(plans, genotype_file, capsys):
    assert _export(plans, genotype_file) == 0
    before = plans.read_text()
    capsys.readouterr()
    assert _export(plans, genotype_file) == 2
    _refused(capsys, plans, before, "--force")
    # Another genotype (a residual first block) replaces the first with --force.
    nodes = preset("unet").to_dict()["nodes"]
    nodes[0]["block"] = "residual"
    other = Genotype.from_dict({"nodes": nodes})
    genotype_file.write_text(json.dumps(other.to_dict()))
    assert _export(plans, genotype_file, "--force") == 0
    written = json.loads(plans.read_text())["configurations"]["2d_mbnas"]
    assert written["mbnas"]["genotype_key"] == other.key != preset("unet").key


def test_a_file_that_is_not_nnunet_plans_is_refused(tmp_path, genotype_file, capsys):
    plans = tmp_path / "plans.json"
    plans.write_text(json.dumps({"configurations": {"2d": {}}}))
    before = plans.read_text()
    assert _export(plans, genotype_file) == 2
    _refused(capsys, plans, before, "not an nnU-Net v2 plans file")


def test_a_patch_size_the_genotype_cannot_divide_is_refused(tmp_path, genotype_file, capsys):
    plans = tmp_path / "nnUNetPlans.json"
    odd = json.loads(json.dumps(PLANS))
    odd["configurations"]["2d"]["patch_size"] = [36, 20]
    plans.write_text(json.dumps(odd))
    before = plans.read_text()
    assert _export(plans, genotype_file) == 2
    _refused(capsys, plans, before, "not divisible by 8")  # the preset reaches input/8


def test_a_missing_nnunet_install_is_refused(plans, genotype_file, capsys, monkeypatch):
    before = plans.read_text()
    monkeypatch.setitem(sys.modules, "nnunetv2", None)  # how Python marks a blocked import
    assert _export(plans, genotype_file) == 2
    _refused(capsys, plans, before, "mbnas[nnunet]")


def test_a_search_run_folder_exports_its_best_network(plans, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(f"data_dir: {tmp_path}\nspace: mbnas\n")
    (run / "best.json").write_text(json.dumps({"genotype": preset("unet").to_dict(),
                                               "score": 0.8}))
    assert _export(plans, run) == 0
    written = json.loads(plans.read_text())["configurations"]["2d_mbnas"]
    assert Genotype.from_dict(written["architecture"]["arch_kwargs"]["genotype"]) == \
        preset("unet")
    assert written["mbnas"]["source"] == str(run)


def test_an_unknown_source_is_refused(plans, tmp_path, capsys):
    before = plans.read_text()
    assert _export(plans, tmp_path / "nowhere") == 2
    _refused(capsys, plans, before, "not a search run folder")


def test_an_authors_string_exports_the_same_network(plans, tmp_path):
    """The authors' 40-digit genotype string is a source, as a genotype file is."""
    from mbnas.spaces.mbnas.authors import from_authors_string

    text = "0320100012202000320031203001232111210121"  # released in the authors' code
    assert _export(plans, Path(text), "--name", "2d_paper") == 0
    config = PlansManager(str(plans)).get_configuration("2d_paper")
    assert Genotype.from_dict(config.network_arch_init_kwargs["genotype"]) == \
        from_authors_string(text)


def test_the_original_plans_stay_recoverable(plans, genotype_file, capsys):
    original = plans.read_text()
    versions = [original]
    for extra in ((), ("--force",), ("--force",)):
        assert _export(plans, genotype_file, *extra) == 0
        versions.append(plans.read_text())
    first = plans.parent / "nnUNetPlans.mbnas-backup.json"
    assert first.read_text() == original  # never overwritten by a later export
    later = [plans.parent / f"nnUNetPlans.mbnas-backup.{k}.json" for k in (2, 3)]
    assert [p.read_text() for p in later] == versions[1:3]  # every version kept
    assert str(later[-1]) in capsys.readouterr().out


def _plans_with(tmp_path: Path, **configs: dict) -> Path:
    value = json.loads(json.dumps(PLANS))
    value["configurations"].update(configs)
    path = tmp_path / "nnUNetPlans.json"
    path.write_text(json.dumps(value))
    return path


def test_nnunet_names_and_inherited_names_are_refused_even_with_force(
        tmp_path, genotype_file, capsys):
    from mbnas.export.nnunet_plans import NNUNET_CONFIGURATIONS

    plans = _plans_with(tmp_path, **{"3d_fullres": {"patch_size": [8, 32, 32]},
                                     "3d_lowres": {"inherits_from": "3d_fullres"},
                                     "mine": {"batch_size": 4}})
    before = plans.read_text()
    for name in NNUNET_CONFIGURATIONS:
        assert _export(plans, genotype_file, "--name", name, "--force") == 2
        _refused(capsys, plans, before, "refused even with --force")
    # An earlier export that another configuration inherits from, and the user's own.
    assert _export(plans, genotype_file, "--name", "2d_mbnas") == 0
    value = json.loads(plans.read_text())
    value["configurations"]["2d_mbnas_long"] = {"inherits_from": "2d_mbnas"}
    plans.write_text(json.dumps(value))
    before = plans.read_text()
    assert _export(plans, genotype_file, "--name", "2d_mbnas", "--force") == 2
    _refused(capsys, plans, before, "2d_mbnas_long inherit(s) from it")
    assert _export(plans, genotype_file, "--name", "mine", "--force") == 2
    _refused(capsys, plans, before, "not written by mbnas")


@pytest.mark.parametrize("name", ["../../../tmp/evil x", "a/b", "a\\b", "a b", "..", "x..y",
                                  "2d\tx", "ü", "", "a" * 101])
def test_names_nnunet_cannot_use_as_folders_are_refused(plans, genotype_file, capsys, name):
    before = plans.read_text()
    assert _export(plans, genotype_file, "--name", name) == 2
    _refused(capsys, plans, before, "is not allowed")


def test_widths_beyond_the_bound_or_the_memory_are_refused(tmp_path, genotype_file, capsys):
    from mbnas.export.nnunet_plans import MAX_BASE_CHANNELS

    plans = _plans_with(tmp_path)
    before = plans.read_text()
    for width in (100000000, MAX_BASE_CHANNELS + 1, 3):
        assert main(["export", "nnunet", str(genotype_file), "--plans", str(plans),
                     "--base-channels", str(width)]) == 2
        _refused(capsys, plans, before, f"from 4 to {MAX_BASE_CHANNELS}")
    # Within the bound, but not within memory at a huge patch and batch.
    huge = json.loads(before)
    huge["configurations"]["2d"].update(patch_size=[4096, 4096], batch_size=64)
    plans.write_text(json.dumps(huge))
    before = plans.read_text()
    assert main(["export", "nnunet", str(genotype_file), "--plans", str(plans),
                 "--base-channels", "64"]) == 2
    _refused(capsys, plans, before, "lower --base-channels")


def _search_run(tmp_path: Path, dataset: dict, base_channels: int) -> Path:
    data = tmp_path / "searched_data"
    data.mkdir()
    (data / "dataset.json").write_text(json.dumps(dataset))
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(f"data_dir: {data}\nspace: mbnas\nprotocol:\n"
                                     f"  base_channels: {base_channels}\n")
    (run / "best.json").write_text(json.dumps({"genotype": preset("unet").to_dict(),
                                               "score": 0.8}))
    return run


def test_a_search_of_another_dataset_needs_force_and_a_width_change_is_said(
        plans, tmp_path, capsys):
    # The plans' dataset (nnU-Net's copy of dataset.json beside the plans): one CT channel.
    (plans.parent / "dataset.json").write_text(json.dumps(
        {"channel_names": {"0": "CT"}, "labels": {"background": 0, "spleen": 1}}))
    prostate = {"modality": {"0": "T2", "1": "ADC"},
                "labels": {"0": "background", "1": "PZ", "2": "TZ"}}
    run = _search_run(tmp_path, prostate, base_channels=8)
    before = plans.read_text()
    assert _export(plans, run) == 2
    _refused(capsys, plans, before, "channels T2, ADC searched, CT in the plans' dataset")
    assert _export(plans, run, "--force") == 0
    out = capsys.readouterr().out
    assert "exported with --force although" in out
    assert "width changed: the search trained 8 base channels" in out  # --base-channels 4


def test_a_search_of_the_plans_dataset_exports_without_a_word(plans, tmp_path, capsys):
    spleen = {"channel_names": {"0": "CT"}, "labels": {"background": 0, "spleen": 1}}
    (plans.parent / "dataset.json").write_text(json.dumps(spleen))
    assert _export(plans, _search_run(tmp_path, spleen, base_channels=4)) == 0
    out = capsys.readouterr().out
    assert "although" not in out and "width changed" not in out
