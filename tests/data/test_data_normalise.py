"""The choice of intensity normalisation per channel: training and predict apply the same."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from mbnas.data import PreprocessConfig, load_slices, read_dataset
from mbnas.data.check import load_case
from mbnas.data.normalise import normalise_case, resolve_schemes
from mbnas.errors import ConfigError
from mbnas.inference import prepare_slices
from mbnas.inference.model_folder import normalisation_from_cache
from mbnas.training.protocol import get_protocol


def test_schemes_per_channel() -> None:
    assert resolve_schemes((), (True, False)) == ["ct", "zscore"]
    assert resolve_schemes(("percentile",), (True, False)) == ["percentile", "percentile"]
    assert resolve_schemes(("zscore", "default"), (True, False)) == ["zscore", "zscore"]
    with pytest.raises(ConfigError, match="3 schemes for 2 channel"):
        resolve_schemes(("ct", "ct", "ct"), (True, False))
    with pytest.raises(ConfigError, match="normalisation 'minmax' is not one of"):
        get_protocol("quick", normalisation=["minmax"])
    assert get_protocol("quick", normalisation=["percentile"]).key != get_protocol("quick").key


def test_percentile_scheme_ignores_an_outlier() -> None:
    x = np.random.default_rng(0).normal(size=10_000).astype(np.float32)
    y = x.copy()
    y[0] = 1e6
    a, b = x.copy(), y.copy()
    normalise_case(a, "percentile")
    normalise_case(b, "percentile")
    assert np.allclose(a[1:], b[1:], atol=1e-2)


def test_predict_normalises_a_case_as_training_did(phantom_spleen: Path,
                                                   tmp_path: Path) -> None:
    config = PreprocessConfig(size=32, normalisation=("percentile",))
    data = load_slices(phantom_spleen, tmp_path, config)
    norm = normalisation_from_cache(phantom_spleen, tmp_path, 32, ("percentile",))
    assert norm == {"CT": {"scheme": "percentile"}}
    dataset = read_dataset(phantom_spleen)
    volume, _ = load_case(dataset, dataset.cases[0])
    model = SimpleNamespace(image_size=32, target_spacing=0.0, normalisation=(norm["CT"],))
    slices = prepare_slices(volume.image, volume.affine, model)  # type: ignore[arg-type]
    cached = data.images[data.case_slices(dataset.cases[0].case_id)]
    assert np.allclose(slices, cached, atol=1e-4)
    default = load_slices(phantom_spleen, tmp_path, PreprocessConfig(size=32))
    assert not np.allclose(default.images[:len(cached)], cached)
