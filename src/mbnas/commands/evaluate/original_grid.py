"""Per-case metrics of an evaluation on each scan's original grid and spacing.

Training and the per-slice metrics live on the resized training grid (e.g. 128 x 128, a
Spleen pixel of about 3 mm). Users compare segmentations in the scan's own voxels, so
`mbnas evaluate` measures every validation case again as `mbnas predict` would segment
it: the network's softmax on the training grid is resized back to the scan's in-plane
grid and the argmax taken there (:func:`mbnas.inference.segment.to_scan_grid`), then
Dice, HD95 and Surface Dice are computed in 3D against the original label with the
original voxel size (in the canonical orientation, which only permutes and flips axes).

Each fold's original labels are read once and every run of that fold is measured on
them. The values are kept in ``original_grid.json`` in the evaluation folder, keyed by
architecture, fold, seed and case, so a resumed or repeated evaluation measures only
what is new.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mbnas.data.check import load_case, voxel_sizes
from mbnas.data.formats import read_dataset
from mbnas.data.orientation import to_canonical
from mbnas.data.slices import SliceData
from mbnas.data.spacing import spacing_grid
from mbnas.errors import DatasetError
from mbnas.io import atomic_write_json
from mbnas.metrics import case_metrics
from mbnas.progress import Step, track
from mbnas.training.device import select_device
from mbnas.training.protocol import Protocol

#: One measured run: (architecture dict, arch key, fold, seed, weights file).
RunWeights = tuple[Mapping[str, Any], str, int, int, Path]


def metrics_key(arch_key: str, fold: int, seed: int, case_id: str) -> str:
    return f"{arch_key}/{fold}/{seed}/{case_id}"


def read_original_grid(path: Path, protocol_key: str) -> dict[str, Any]:
    """The metrics kept in ``original_grid.json`` for ``protocol_key`` ({} when none)."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(raw, dict) or raw.get("protocol_key") != protocol_key:
        return {}
    return dict(raw.get("metrics") or {})


def _original_label(dataset: Any, case_id: str) -> tuple[np.ndarray, tuple[float, ...]]:
    """The case's label as (Z, X, Y) in the canonical orientation, and its spacing (mm)."""
    files = next((c for c in dataset.cases if c.case_id == case_id), None)
    if files is None:
        raise DatasetError(f"{dataset.root}: case {case_id} of the evaluation's folds is gone")
    volume, problems = load_case(dataset, files)
    if volume is None:
        raise DatasetError(f"{files.label}: cannot read the label ({problems[0].message})")
    label, affine = to_canonical(volume.label, volume.affine)
    sx, sy, sz = (float(v) for v in voxel_sizes(affine))
    return np.ascontiguousarray(np.asarray(label).transpose(2, 0, 1)), (sz, sx, sy)


def time_case_metrics(data_dir: str | Path, protocol: Protocol) -> tuple[float, float]:
    """Seconds to measure cases on their original grid: (once, per case). The first
    case's label is measured against itself shifted by two voxels (so that every metric
    has surface to measure) twice: the first call's extra time (loading the metric
    libraries) is paid once, the second is what ``evaluate --estimate`` scales by the
    cases it will measure."""
    import time

    dataset = read_dataset(data_dir)
    ref, spacing = _original_label(dataset, dataset.cases[0].case_id)
    pred = np.roll(ref, 2, axis=1)
    seconds = []
    for _ in range(2):
        t0 = time.perf_counter()
        case_metrics(pred, ref, len(dataset.label_names), spacing,
                     protocol.surface_tolerance_mm)
        seconds.append(time.perf_counter() - t0)
    return max(seconds[0] - seconds[1], 0.0), seconds[1]


@torch.no_grad()
def _predict_on_grid(net: torch.nn.Module, images: np.ndarray, grid: tuple[int, int],
                     device: torch.device, batch_size: int = 16,
                     window: tuple[int, int] | None = None,
                     start: tuple[int, int] | None = None) -> np.ndarray:
    from mbnas.inference.segment import to_scan_grid

    out = np.empty((len(images), *grid), np.uint8)
    for a in range(0, len(images), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(images[a:a + batch_size])).to(device)
        out[a:a + len(x)] = to_scan_grid(net(x).float().softmax(1), grid,
                                         window, start).cpu().numpy()
    return out


def _predict_volume(net: torch.nn.Module, data: Any, case_id: str, protocol: Protocol,
                    shape: tuple[int, ...], device: torch.device) -> np.ndarray:
    """Labels (Z, X, Y) of a preprocessed volume, resampled to the original canonical grid
    (as `mbnas predict` does: :mod:`mbnas.inference.volumes`)."""
    from mbnas.inference.volumes import probabilities_on_grid

    vol = protocol.volume
    assert vol is not None  # called for a 3D protocol only
    grid = (shape[1], shape[2], shape[0])
    prob = probabilities_on_grid(lambda x: net(x).float().softmax(1), data.image(case_id),
                                 vol.to_dict(), grid, device)
    return prob.argmax(0).to(torch.uint8).cpu().numpy().transpose(2, 0, 1)


def original_grid_metrics(path: Path, data_dir: str | Path, data: SliceData | Any,
                          folds: Iterable[Iterable[str]], runs: Iterable[RunWeights],
                          protocol: Protocol, device: str = "auto") -> dict[str, Any]:
    """The per-case metrics (``CaseMetrics.to_dict()``) of every run on the original grids.

    Args:
        path: The JSON file the metrics are kept in (``EVAL_DIR/original_grid.json``).
        data_dir: The dataset folder (the original labels are read from it).
        data: The training slices (the exact network inputs of every case).
        folds: Validation case ids per fold.
        runs: The finished runs with weights to measure.
        protocol: The evaluation protocol (width and Surface Dice tolerance).
        device: Where the networks run.

    Returns:
        :func:`metrics_key` -> the case's metrics dict.
    """
    done = read_original_grid(path, protocol.key)
    fold_cases = [tuple(f) for f in folds]
    todo: dict[int, list[RunWeights]] = {}
    for run in runs:
        _, key, fold, seed, _ = run
        if any(metrics_key(key, fold, seed, c) not in done for c in fold_cases[fold]):
            todo.setdefault(fold, []).append(run)
    if not todo:
        return done
    dataset = read_dataset(data_dir)
    dev = select_device(device)
    n_cases = sum(len(runs) * len(fold_cases[fold]) for fold, runs in todo.items())
    with track("metrics on the original grid", total=n_cases, unit="case") as step:
        _measure(path, dataset, data, fold_cases, todo, protocol, dev, done, step)
    return done


def _measure(path: Path, dataset: Any, data: SliceData | Any, folds: list[tuple[str, ...]],
             todo: dict[int, list[RunWeights]], protocol: Protocol, dev: torch.device,
             done: dict[str, Any], step: Step) -> None:
    """Measure every case of every run to do into ``done``, saving after each fold."""
    from mbnas.spaces.mbnas import architecture_from_dict, build_model
    from mbnas.store import load_weights

    dims, strides = (2, None) if protocol.volume is None else (3, protocol.volume.strides)
    for fold, fold_runs in sorted(todo.items()):
        labels = {c: _original_label(dataset, c) for c in folds[fold]}
        for arch, key, _, seed, weights in fold_runs:
            net = build_model(architecture_from_dict(dict(arch)), data.in_channels,
                              data.n_classes, protocol.base_channels, spatial_dims=dims,
                              strides=strides)
            net.load_state_dict(load_weights(weights))
            net = net.to(dev).eval()
            for case_id, (ref, spacing) in labels.items():
                if protocol.volume is not None:  # a whole volume, back on the scan's grid
                    pred = _predict_volume(net, data, case_id, protocol, ref.shape, dev)
                    done[metrics_key(key, fold, seed, case_id)] = case_metrics(
                        pred, ref, data.n_classes, spacing,
                        protocol.surface_tolerance_mm).to_dict()
                    step.advance(info=f"fold {fold} seed {seed} {case_id}")
                    continue
                rows = data.case_slices(case_id)
                order = np.argsort(data.slice_index[rows])
                # a target spacing's slices are a window of the resampled grid (as predict)
                window = (spacing_grid(ref.shape[1:], (spacing[1], spacing[2]),
                                       protocol.target_spacing)
                          if protocol.target_spacing else None)
                crop = data.cases[data.case_ids.index(case_id)].crop  # where the window lay
                pred = _predict_on_grid(net, data.images[rows][order], ref.shape[1:], dev,
                                        window=window, start=crop)
                done[metrics_key(key, fold, seed, case_id)] = case_metrics(
                    pred, ref, data.n_classes, spacing, protocol.surface_tolerance_mm).to_dict()
                step.advance(info=f"fold {fold} seed {seed} {case_id}")
        # After each fold: a killed evaluation keeps what it measured.
        atomic_write_json(path, {"protocol_key": protocol.key, "metrics": done})
