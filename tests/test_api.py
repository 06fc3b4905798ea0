"""The Python API: a tiny search and its report through `from mbnas import ...`."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

from mbnas import report, search


def test_search_and_report_through_the_api(tmp_path: Path, phantom_spleen: Path,
                                           phantom_cache: Path, caplog) -> None:  # noqa: ANN001
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
    page = report([tmp_path / "run"], tmp_path / "report")
    assert page.html.is_file() and "NAS reporting card" in page.html.read_text()


def test_api_functions_are_documented_and_import_no_torch() -> None:
    from mbnas import api

    for name in ("search", "evaluate", "report", "predict"):
        assert "Args:" in (inspect.getdoc(getattr(api, name)) or "")
    code = "import mbnas, sys; mbnas.search; assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_api_names_stay_functions_after_every_subpackage_is_imported() -> None:
    # The subpackages are named for what they hold, so importing them rebinds nothing.
    import mbnas.inference  # noqa: F401
    import mbnas.reporting  # noqa: F401
    import mbnas.strategies  # noqa: F401
    from mbnas import api, evaluate, predict, report, search

    for name, function in [("search", search), ("evaluate", evaluate), ("report", report),
                           ("predict", predict)]:
        assert function is getattr(api, name) and callable(function)
