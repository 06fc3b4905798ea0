"""A model folder trained for real on the shared spleen phantom (made once per session)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from mbnas.data.preprocess import PreprocessConfig, load_slices
from mbnas.data.slices import SliceData
from mbnas.inference import export_model, normalisation_from_cache
from mbnas.spaces.mbnas import build_model, preset
from mbnas.store import save_weights
from mbnas.training.protocol import get_protocol
from mbnas.training.train import train_run

# The network never sees this case while training; predictions on it are honest.
HELD_OUT = "spleen_6"
# Calibrated: at lr 1e-2 a U-Net of width 8 reaches validation Dice ~0.9 on the held-out
# case in 30 epochs (about 5 s on one core); width 4 or lr 1e-3 stay near chance.
BASE_CHANNELS = 8


@dataclass(frozen=True)
class Trained:
    """The trained spleen model: its folder, weights file and the data it came from."""

    model_dir: Path
    weights: Path
    data_dir: Path
    cache_dir: Path
    slices: SliceData
    val_dice: float
    held_out: str = HELD_OUT


def _train(root: Path, data_dir: Path, cache_dir: Path, slices: SliceData,
           target_spacing: float = 0.0) -> Trained:
    """Train the U-Net preset on every case but HELD_OUT and export its model folder."""
    train = slices.subset([c for c in slices.case_ids if c != HELD_OUT])
    val = slices.subset([HELD_OUT])
    protocol = get_protocol("quick", epochs=30, image_size=32, base_channels=BASE_CHANNELS,
                            batch_size=16, lr=1e-2, precision="fp32")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng():
            torch.manual_seed(0)
            net = build_model(preset("unet"), 1, 2, base_channels=BASE_CHANNELS)
            outcome = train_run(net, train, val, protocol, seed=0, device="cpu")
    finally:
        torch.set_num_threads(threads)
    weights = save_weights(net.state_dict(), root / "weights" / "fold0_seed0.pt")
    model_dir = root / "model"
    export_model(model_dir, architecture=preset("unet").to_dict(), in_channels=1, n_classes=2,
                 base_channels=BASE_CHANNELS, image_size=32,
                 label_names=slices.label_names, channel_names=slices.channel_names,
                 normalisation=normalisation_from_cache(data_dir, cache_dir, 32,
                                                        target_spacing=target_spacing),
                 weights=[weights], target_spacing=target_spacing)
    return Trained(model_dir, weights, data_dir, cache_dir, slices, outcome.curve[-1].val_dice)


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, phantom_spleen: Path,
            phantom_cache: Path, phantom_slices: SliceData) -> Trained:
    return _train(tmp_path_factory.mktemp("predict_model"), phantom_spleen, phantom_cache,
                  phantom_slices)


# The phantom's pixels are 0.75-0.79 mm: at 1 mm its 48 px slices become about 37 px, so a
# model of this spacing sees (and predicts) a different grid from a fit-to-size one.
TARGET_SPACING = 1.0


@pytest.fixture(scope="session")
def trained_spaced(tmp_path_factory: pytest.TempPathFactory, phantom_spleen: Path,
                   phantom_cache: Path) -> Trained:
    """The same training on slices resampled to ``TARGET_SPACING`` mm."""
    slices = load_slices(phantom_spleen, phantom_cache,
                         PreprocessConfig(size=32, target_spacing=TARGET_SPACING))
    return _train(tmp_path_factory.mktemp("predict_model_spaced"), phantom_spleen,
                  phantom_cache, slices, target_spacing=TARGET_SPACING)


@pytest.fixture
def one_thread():
    """Torch on one thread during a test (tests run beside other processes)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
