"""The Python API: a tiny search and its report through `from mbnas import ...`."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

from mbnas import report, search
from mbnas.progress import CallbackSink, use_sink


def test_search_and_report_through_the_api(tmp_path: Path, phantom_spleen: Path,
                                           phantom_cache: Path, caplog) -> None:
    caplog.set_level("INFO", logger="mbnas.progress")
    outcome = search(phantom_spleen, tmp_path / "run", protocol="quick", budget=2, seed=5,
                     cache_dir=str(phantom_cache),
                     protocol_overrides={"epochs": 2, "folds": 2, "seeds": [0],
                                         "image_size": 32, "base_channels": 4})
    assert outcome.n_evaluated == 2 and not outcome.resumed
    # without hooks the API logs its progress: every run's start and epoch
    said = [r.getMessage() for r in caplog.records if r.name == "mbnas.progress"]
    assert any(m.startswith("run 1 started:") for m in said)
    assert any(" epoch 2/2: loss " in m for m in said)
    best = json.loads((tmp_path / "run" / "best.json").read_text())
    assert best["score"] == outcome.best_score
    again = search(phantom_spleen, tmp_path / "run", protocol="quick", budget=2, seed=5,
                   cache_dir=str(phantom_cache),
                   protocol_overrides={"epochs": 2, "folds": 2, "seeds": [0],
                                       "image_size": 32, "base_channels": 4})
    assert again.resumed and again.best_score == outcome.best_score
    # the long steps outside training: logged too, or shown by the user's own callback
    steps: list[tuple[str, int, int | None, bool]] = []
    with use_sink(CallbackSink(lambda s: steps.append((s.name, s.done, s.total, s.finished)))):
        page = report([tmp_path / "run"], tmp_path / "report")
    assert page.html.is_file() and "NAS reporting card" in page.html.read_text()
    assert steps[0] == ("report", 0, 5, False) and steps[-1] == ("report", 5, 5, True)
    assert [d for n, d, _, _ in steps] == sorted(d for n, d, _, _ in steps)


def test_api_functions_are_documented_and_import_no_torch() -> None:
    from mbnas import api

    for name in ("search", "evaluate", "report", "predict"):
        assert "Args:" in (inspect.getdoc(getattr(api, name)) or "")
    code = "import mbnas, sys; mbnas.search; assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_api_names_stay_functions_after_every_subpackage_is_imported() -> None:
    # The subpackages are named for what they hold, so importing them rebinds nothing.
    import mbnas.inference
    import mbnas.reporting
    import mbnas.strategies  # noqa: F401
    from mbnas import api, evaluate, predict, report, search

    for name, function in [("search", search), ("evaluate", evaluate), ("report", report),
                           ("predict", predict)]:
        assert function is getattr(api, name) and callable(function)


def test_api_and_cli_resolve_paper_by_the_dataset(tmp_path: Path, capsys) -> None:
    # One resolution of `paper`, shared: the API's config and the CLI's --dry-run agree on
    # both phantoms, and each gets its own dataset's preset.
    import yaml

    from mbnas.api import search_config
    from mbnas.cli import main
    from mbnas.data import make_phantom
    from mbnas.training.protocol import PROTOCOLS, Protocol, get_protocol, paper_preset

    for task, folder in (("spleen", "Task09_Spleen"), ("prostate", "Task05_Prostate")):
        data = make_phantom(tmp_path / folder, task, n_cases=2, seed=0, shape=(16, 16, 2))
        api = search_config(data, budget=1, start="unet", threads=1, device="cpu")
        assert main(["search", str(data), "--budget", "1", "--start", "unet", "--threads",
                     "1", "--device", "cpu", "--dry-run", "--out", str(tmp_path / "x")]) == 0
        cli = yaml.safe_load(capsys.readouterr().out.split("protocol key")[0])
        preset = PROTOCOLS[paper_preset(task)]
        assert api.protocol == preset and Protocol.from_dict(cli["protocol"]) == preset, task
    # And what search() trains with is that config (tiny: the preset's augmentation kept).
    tiny = {"epochs": 1, "folds": 2, "seeds": [0], "image_size": 16, "base_channels": 4}
    search(data, tmp_path / "run", budget=1, start="unet", threads=1, device="cpu",
           cache_dir=str(tmp_path / "cache"), protocol_overrides=tiny)
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["protocol"]
    assert Protocol.from_dict(saved) == get_protocol(paper_preset("prostate"), **tiny)


def test_the_api_refuses_wrong_argument_types(tmp_path: Path) -> None:
    import pytest

    from mbnas import evaluate, predict
    from mbnas.errors import ConfigError

    cases = [  # (call, the argument the one-line message must name)
        (lambda: search(None, tmp_path / "o"), "data_dir"),
        (lambda: search(tmp_path, None), "out"),
        (lambda: search(tmp_path, tmp_path / "o", protocol=3), "protocol"),
        (lambda: search(tmp_path, tmp_path / "o", protocol_overrides=[1]),
         "protocol_overrides"),
        (lambda: search(tmp_path, tmp_path / "o", retry_failed="yes"), "retry_failed"),
        (lambda: search(tmp_path, tmp_path / "o", on_evaluation=1), "on_evaluation"),
        (lambda: evaluate(3), "run_dirs"),
        (lambda: evaluate([tmp_path, 3]), r"run_dirs\[1\]"),
        (lambda: evaluate(tmp_path, seeds="2"), "seeds"),
        (lambda: evaluate(tmp_path, folds=2.0), "folds"),
        (lambda: evaluate(tmp_path, threads="1"), "threads"),
        (lambda: evaluate(tmp_path, baselines=[1]), "baselines"),
        (lambda: report(5), "run_dirs"),
        (lambda: report(tmp_path, evaluation=1), "evaluation"),
        (lambda: report(tmp_path, nnunet=[1]), "nnunet"),
        (lambda: predict(None, tmp_path, tmp_path), "model_dir"),
        (lambda: predict(tmp_path, tmp_path, tmp_path, batch_size="4"), "batch_size"),
        (lambda: predict(tmp_path, tmp_path, tmp_path, device=0), "device"),
    ]
    for call, name in cases:
        with pytest.raises(ConfigError, match=rf"^\w+: {name} must be") as info:
            call()
        assert "\n" not in str(info.value)


def test_one_path_is_one_run_folder(tmp_path: Path) -> None:
    import pytest

    from mbnas import evaluate
    from mbnas.errors import ConfigError

    run = tmp_path / "a"  # not a search run: the message names the folder, not its letters
    for call in (lambda: evaluate(str(run)), lambda: report(str(run), tmp_path / "r")):
        with pytest.raises(ConfigError, match=str(run)):
            call()
