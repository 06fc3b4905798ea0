"""One training run outside a search (`mbnas train`), stored like any other run."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from mbnas.commands.common.dataset import training_data
from mbnas.commands.common.runfolder import RunFolder
from mbnas.errors import ConfigError
from mbnas.spaces.mbnas import load_architecture
from mbnas.store import RunRecord
from mbnas.training.protocol import Protocol
from mbnas.training.runs import RunSpec, execute_run
from mbnas.training.train import EpochStats


def train_one(
    data_dir: str | Path, arch: str, protocol: Protocol, fold: int, seed: int, out: Path,
    cache_dir: str | None = None, device: str = "auto",
    on_epoch: Callable[[EpochStats], None] | None = None,
) -> tuple[RunRecord, bool]:
    """Train (or read back from ``out``'s store) one run; returns (record, from_store)."""
    architecture = load_architecture(arch)
    if not 0 <= fold < protocol.folds:
        raise ConfigError(f"--fold must be in 0..{protocol.folds - 1}, got {fold}")
    protocol = dataclasses.replace(protocol, final_metrics=True, keep_weights=True)
    folder = RunFolder(out)
    with folder.locked():
        data = training_data(data_dir, cache_dir, protocol.image_size,
                             target_spacing=protocol.target_spacing,
                             allow_cropped_labels=protocol.allow_cropped_labels)
        ctx = folder.run_context(data, folder.folds(data, protocol.folds, 0), device)
        spec = RunSpec(architecture.to_dict(), architecture.key, fold, seed, protocol)
        with folder.open_store() as store:
            old = store.get(spec.arch_key, protocol.key, fold, seed)
            if old is not None and old.status == "finished":
                return old, True
            record = execute_run(spec, ctx, on_epoch)
            store.put(record)
    return record, False
