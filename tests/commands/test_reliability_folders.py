"""Run folders that stay true: validated before writing, fingerprinted data, checksummed
model weights, consistent resume state (issue 11, items 3, 4, 6, 7 and small items)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest
import yaml

from mbnas.cli import main
from mbnas.commands.common.runfolder import EvaluationFolder
from mbnas.commands.evaluate.export import weights_file
from mbnas.errors import MbnasError
from mbnas.inference.model_folder import load_model_folder
from mbnas.inference.segment import Segmenter
from mbnas.store import ResultStore

SMALL = ["--protocol", "quick", "--epochs", "1", "--image-size", "32", "--threads", "1",
         "--device", "cpu"]
TINY = [*SMALL, "--folds", "2"]


def _err(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


@pytest.fixture(scope="module")
def study(tmp_path_factory, phantom_spleen: Path) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("folders")
    data = root / "data"
    shutil.copytree(phantom_spleen, data)
    cache = root / "cache"
    run = root / "run"
    assert main(["search", str(data), *TINY, "--budget", "1", "--start", "unet",
                 "--cache", str(cache), "--out", str(run)]) == 0
    evaluation = root / "evaluation"
    assert main(["evaluate", str(run), "--baselines", "none", "--seeds", "1", "--folds", "2",
                 "--device", "cpu", "--out", str(evaluation)]) == 0
    return SimpleNamespace(root=root, data=data, cache=cache, run=run, evaluation=evaluation)


def test_dataset_fingerprint_is_stored_with_runs_and_config(study) -> None:
    config = yaml.safe_load((study.run / "config.yaml").read_text())
    fingerprint = json.loads((study.run / "dataset_fingerprint.json").read_text())
    assert config["data_fingerprint"] == fingerprint["digest"]
    assert "labelsTr/spleen_1.nii.gz" in fingerprint["files"]
    with ResultStore(study.run / "store.sqlite", read_only=True) as store:
        assert {r.data_fingerprint for r in store.runs()} == {fingerprint["digest"]}


def test_model_weights_are_copies_with_checked_checksums(study, tmp_path: Path) -> None:
    model = study.run / "model"
    meta = json.loads((model / "model.json").read_text())
    name = meta["weights"][0]
    with ResultStore(study.evaluation / "store.sqlite", read_only=True) as store:
        record = next(r for r in store.runs() if Path(r.weights_path).name == name)
    stored = weights_file(EvaluationFolder(study.evaluation), record)  # the evaluation's
    assert stored is not None and stored.is_relative_to(study.evaluation / "models")
    assert meta["weights_sha256"][name] == record.weights_sha256
    assert (model / name).stat().st_ino != stored.stat().st_ino  # a copy, not a hard link
    before = stored.read_bytes()
    copy = tmp_path / "model"
    shutil.copytree(model, copy)
    blob = bytearray((copy / name).read_bytes())
    blob[len(blob) // 2] ^= 0x01  # one flipped bit deep in the tensors
    (copy / name).write_bytes(bytes(blob))
    with pytest.raises(MbnasError, match="does not match its recorded checksum"):
        Segmenter(load_model_folder(copy), device="cpu")
    (model / name).write_bytes(b"overwritten")
    assert stored.read_bytes() == before  # the store's weights are untouched


def test_invalid_settings_write_no_run_folder(study, tmp_path: Path,
                                              capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "p"
    base = ["--budget", "1", "--cache", str(study.cache), "--out", str(out)]
    assert main(["search", str(study.data), *SMALL, "--folds", "7", *base]) == 2
    assert "7 folds need at least 7 cases" in _err(capsys)
    assert not out.exists()
    assert main(["search", str(study.data) + "-typo", *TINY, *base]) == 2
    assert "no such dataset folder" in capsys.readouterr().err
    assert not out.exists()
    assert main(["search", str(study.data), *TINY, *base]) == 0  # nothing was locked
    capsys.readouterr()
    ev = tmp_path / "ev"
    assert main(["evaluate", str(study.run), "--baselines", "none", "--folds", "9",
                 "--out", str(ev)]) == 2
    assert "9 folds" in _err(capsys)
    assert not ev.exists()


def test_evaluation_into_its_own_search_folder_is_refused_clearly(
        study, capsys: pytest.CaptureFixture) -> None:
    assert main(["evaluate", str(study.run), "--baselines", "none", "--seeds", "1",
                 "--folds", "2", "--out", str(study.run)]) == 2
    err = _err(capsys)
    assert "another mbnas process" not in err and "search run folder" in err


def test_search_into_an_evaluation_folder_says_so(study, capsys: pytest.CaptureFixture) -> None:
    before = sorted(p.name for p in study.evaluation.iterdir())
    assert main(["search", str(study.data), *TINY, "--budget", "1", "--start", "unet",
                 "--cache", str(study.cache), "--out", str(study.evaluation)]) == 2
    err = _err(capsys)
    assert "is an evaluation folder" in err and "dataset changed" not in err
    assert sorted(p.name for p in study.evaluation.iterdir()) == before


def test_second_evaluation_finds_the_weights_kept_once_and_says_it_replaced_the_run_model(
        study, capsys: pytest.CaptureFixture) -> None:
    # a copy of the evaluation resumes from its store (nothing trained; each run's weights
    # are kept once, in its model folder) and exports again
    from mbnas.io import file_sha256

    second = study.root / "evaluation2"
    shutil.copytree(study.evaluation, second)
    kept = sorted(second.rglob("*.pt"))
    digests = [file_sha256(p) for p in kept]
    # only the model folders hold weights (two models of one architecture, here the
    # search's best and the U-Net preset, are two folders); the store's copies are gone
    assert kept and all(p.parent.parent == second / "models" for p in kept), kept
    for model in (second / "models").iterdir():
        assert sorted(json.loads((model / "model.json").read_text())["weights"]) == sorted(
            p.name for p in model.glob("*.pt"))
    before = json.loads((second / "evaluation.json").read_text())["models"]
    argv = ["evaluate", str(study.run), "--baselines", "none", "--seeds", "1", "--folds", "2",
            "--device", "cpu"]
    capsys.readouterr()
    assert main([*argv, "--out", str(second)]) == 0
    assert sorted(second.rglob("*.pt")) == kept and [file_sha256(p) for p in kept] == digests
    after = json.loads((second / "evaluation.json").read_text())["models"]
    assert [(m["run_scores"], m["cases"]) for m in after] == [
        (m["run_scores"], m["cases"]) for m in before]
    # (the tiny runs may also get a constant-prediction note; only the export's is counted)
    notes = [line for line in capsys.readouterr().out.splitlines()
             if line.startswith("note:") and "replaced the model folder" in line]
    assert len(notes) == 1, notes
    assert f"{study.run / 'model'}: replaced the model folder" in notes[0]
    assert f"exported by the evaluation {study.evaluation.resolve()}" in notes[0]
    assert json.loads((study.run / "model" / "model.json").read_text())["source"] == str(
        second.resolve())
    assert main([*argv, "--out", str(second)]) == 0  # its own export again: no note
    assert "replaced the model folder" not in capsys.readouterr().out


def test_changed_config_is_refused_against_the_state(study, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    shutil.copytree(study.run, run, ignore=shutil.ignore_patterns(".lock", "*.lock"))
    path = run / "config.yaml"
    config = yaml.safe_load(path.read_text())
    config["protocol"]["epochs"] = 2
    path.write_text(yaml.safe_dump(config))
    assert main(["search", "--config", str(path), "--out", str(run)]) == 2
    assert "protocol" in _err(capsys)
    path.unlink()  # a deleted config.yaml is no way around it
    config.pop("data_fingerprint")
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(config))
    assert main(["search", "--config", str(other), "--out", str(run)]) == 2
    assert "protocol" in _err(capsys)
    with ResultStore(run / "store.sqlite", read_only=True) as store:
        assert len(store.protocols()) == 1


@pytest.mark.parametrize(("name", "content", "match"), [
    ("search_state.json", b"", "not a readable search checkpoint"),
    ("search_state.json", b"\xff\xfe garbage", "not a readable search checkpoint"),
    ("search_state.json", b"[" * 100000, "not a readable search checkpoint"),
    ("search_state.json", b'{"run": ' + b"9" * 5000 + b"}", "not a readable search checkpoint"),
    ("config.yaml", b"- a\n- list\n", "not a mapping of settings"),
    ("store.sqlite", None, "damaged result store"),
])
def test_damaged_run_folder_files_give_one_line(study, tmp_path: Path, capsys, name,
                                                content, match) -> None:
    run = tmp_path / "run"
    shutil.copytree(study.run, run, ignore=shutil.ignore_patterns(".lock", "*.lock",
                                                                  "*-wal", "*-shm"))
    path = run / name
    if content is None:  # truncated
        path.write_bytes(path.read_bytes()[:5000])
    else:
        path.write_bytes(content)
    assert main(["search", str(study.data), *TINY, "--budget", "1", "--start", "unet",
                 "--cache", str(study.cache), "--out", str(run)]) == 2
    assert match in _err(capsys)


def test_changed_dataset_is_refused_listing_what_changed(study, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture) -> None:
    # Last: it rewrites a label of the study's dataset.
    label = study.data / "labelsTr" / "spleen_2.nii.gz"
    img = nib.load(label)
    arr = np.zeros(img.shape, dtype=np.uint8)
    nib.save(nib.Nifti1Image(arr, img.affine), label)
    assert main(["evaluate", str(study.run), "--baselines", "none", "--seeds", "1",
                 "--folds", "2", "--device", "cpu", "--out", str(study.evaluation)]) == 2
    err = _err(capsys)
    assert "dataset changed" in err and "labelsTr/spleen_2.nii.gz changed" in err
    assert main(["search", str(study.data), *TINY, "--budget", "1", "--start", "unet",
                 "--cache", str(study.cache), "--out", str(study.run)]) == 2
    assert "labelsTr/spleen_2.nii.gz changed" in _err(capsys)


def _tamper_models(change):
    def tamper(value: dict) -> None:
        change(value["models"])
    return tamper


TAMPERED = {  # how evaluation.json is changed -> what the one-line refusal says
    "no models": (_tamper_models(lambda models: models.clear()), "holds no model"),
    "a model twice": (_tamper_models(lambda models: models.append(models[0])),
                      "names model .* again"),
    "a broken architecture": (
        _tamper_models(lambda models: models[0].__setitem__("architecture", {"nodes": 1})),
        r"models\[0\]\.architecture' is not a network"),
    "scores of the wrong type": (
        _tamper_models(lambda models: models[0].__setitem__("run_scores", "x")),
        r"models\[0\]' is not a model evaluation"),
    "no folds": (lambda value: value.__setitem__("folds", "x"), "'folds' must be a list"),
}


@pytest.mark.parametrize("what", list(TAMPERED))
def test_report_refuses_a_tampered_evaluation_in_one_line(study, tmp_path: Path, capsys,
                                                          what: str) -> None:
    change, message = TAMPERED[what]
    err = _report_of_an_edited_evaluation(study, tmp_path, capsys, change)
    assert "evaluation.json" in err and re.search(message, err), err


def _report_of_an_edited_evaluation(study, tmp_path: Path, capsys, change) -> str:
    """The one-line refusal of `mbnas report` on a copy of the study's evaluation whose
    evaluation.json ``change`` edited; no report folder may be written."""
    evaluation = tmp_path / "evaluation"
    shutil.copytree(study.evaluation, evaluation)
    path = evaluation / "evaluation.json"
    value = json.loads(path.read_text())
    change(value)
    path.write_text(json.dumps(value))
    out = tmp_path / "report"
    assert main(["report", str(study.run), "--evaluation", str(evaluation), "--out",
                 str(out)]) == 2
    assert not out.exists()
    return _err(capsys)


def _first_case_dice(value: dict) -> None:
    value["models"][0]["cases"][0]["metrics"]["dice"] = 0.95


def _other_arch_key(value: dict) -> None:
    name = value["models"][0]["name"]
    value["details"][name]["arch_key"] = "0" * 16


def _case_left_out(value: dict) -> None:
    value["models"][0]["cases"].pop()


EDITED = {  # issue 34 item 9: evaluation.json's figures must be those of its store
    "a Dice edited to 0.95": (_first_case_dice, r"dice 0\.95 is not its run's .*store\.sqlite"),
    "another network's key": (_other_arch_key, "hashes to .* not to the recorded 0000"),
    "a case left out": (_case_left_out, "is left out though its run finished"),
}


@pytest.mark.parametrize("what", list(EDITED))
def test_report_refuses_figures_its_store_does_not_back(study, tmp_path: Path, capsys,
                                                        what: str) -> None:
    change, message = EDITED[what]

    def checked_change(value: dict) -> None:
        assert value["models"][0]["cases"][0]["metrics"]["dice"] != 0.95
        change(value)

    err = _report_of_an_edited_evaluation(study, tmp_path, capsys, checked_change)
    path = tmp_path / "evaluation" / "evaluation.json"
    assert str(path) in err and re.search(message, err), err


GARBAGE = {  # issue 34 item 21: a garbage store.sqlite or config.yaml is refused
    "store.sqlite": (b"\x00\x13garbage, not a database" * 40, "not an mbnas result store"),
    "config.yaml": (b"protocol: [unclosed\n\x00\x01", "config.yaml: not readable"),
}


@pytest.mark.parametrize("name", list(GARBAGE))
def test_report_refuses_a_garbage_store_or_config(study, tmp_path: Path, capsys,
                                                  name: str) -> None:
    content, message = GARBAGE[name]
    evaluation = tmp_path / "evaluation"
    shutil.copytree(study.evaluation, evaluation)
    (evaluation / name).write_bytes(content)
    out = tmp_path / "report"
    assert main(["report", str(study.run), "--evaluation", str(evaluation), "--out",
                 str(out)]) == 2
    err = _err(capsys)
    assert str(evaluation / name) in err and message in err, err
    assert not out.exists()


def test_report_refuses_a_config_of_another_protocol(study, tmp_path: Path, capsys) -> None:
    evaluation = tmp_path / "evaluation"
    shutil.copytree(study.evaluation, evaluation)
    config = yaml.safe_load((evaluation / "config.yaml").read_text())
    config["protocol"]["epochs"] += 1
    (evaluation / "config.yaml").write_text(yaml.safe_dump(config))
    assert main(["report", str(study.run), "--evaluation", str(evaluation), "--out",
                 str(tmp_path / "report")]) == 2
    assert "is not the one evaluation.json was measured with" in _err(capsys)


def test_report_of_an_untouched_copy_passes_its_checks(study, tmp_path: Path) -> None:
    """The checks above refuse edits, not copies: the same folder, untouched, reports (twice
    into one folder: an earlier report folder may be written again)."""
    evaluation = tmp_path / "evaluation"
    shutil.copytree(study.evaluation, evaluation)
    out = tmp_path / "report"
    for _ in range(2):
        assert main(["report", str(study.run), "--evaluation", str(evaluation), "--out",
                     str(out)]) == 0
    assert "STALE" not in (out / "report.html").read_text()
