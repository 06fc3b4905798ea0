"""The exported model folder: everything `mbnas predict` needs to segment new scans.

A model folder holds ``model.json`` and one weights file per trained run
(``fold<F>_seed<S>.pt``); predicting with the folder averages the softmax
probabilities of all the runs listed in ``model.json``. ``model.json`` records:

* ``format``: :data:`MODEL_FORMAT`, bumped when the meaning of a field changes;
* ``architecture``: the genotype or baseline dict (``architecture_from_dict``);
* ``in_channels``, ``n_classes``, ``base_channels``, ``image_size``;
* ``label_names`` (class id -> name) and ``channel_names`` (one per input channel);
* ``normalisation``: channel name -> ``{"scheme": "ct", "clip": [lo, hi], "mean": m,
  "std": s}`` (training's dataset statistics) or ``{"scheme": "zscore"}`` (per case);
* ``weights``: the weight file names, relative to the folder;
* ``volume`` (3D networks only): ``spacing`` (x, y, z) mm the scans are resampled to,
  the planned ``strides`` per level, the sliding-window ``patch_size`` and ``overlap``.

The weights are copied first and ``model.json`` is written last (each file atomically),
so a folder with a ``model.json`` is complete.
"""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from mbnas.data.formats import read_dataset
from mbnas.data.normalise import resolve_schemes
from mbnas.data.preprocess import PreprocessConfig, preprocess
from mbnas.errors import GenotypeError, MbnasError
from mbnas.io import atomic_write, atomic_write_json, file_sha256
from mbnas.spaces.mbnas import architecture_from_dict

MODEL_FORMAT = 1
MODEL_JSON = "model.json"
SCHEMES = ("ct", "zscore", "percentile")
#: The fields of a 3D network's ``volume`` entry.
VOLUME_KEYS = ("spacing", "strides", "patch_size", "overlap")


class ModelFolderError(MbnasError):
    """A model folder (or the settings given to export one) that cannot be used."""


@dataclass(frozen=True)
class ModelFolder:
    """A validated model folder, as read by :func:`load_model_folder`.

    Attributes:
        folder: The folder.
        architecture: The network's genotype or baseline.
        in_channels: Number of input channels.
        n_classes: Number of classes, background included.
        base_channels: Width of the genotype's first stage.
        image_size: In-plane size of the slices the network was trained on.
        label_names: Class id -> name.
        channel_names: One name per input channel, in input order.
        normalisation: One scheme dict per channel, in ``channel_names`` order.
        weights: Absolute paths of the weight files (the ensemble members).
        target_spacing: In-plane spacing (mm) the slices were resampled to before being
            centre-cropped or padded to ``image_size``; 0: resized to it (folders
            written before the setting have none).
    """

    folder: Path
    architecture: Any  # a Baseline, or an architecture of a language (a Genotype)
    in_channels: int
    n_classes: int
    base_channels: int
    image_size: int
    label_names: dict[int, str]
    channel_names: tuple[str, ...]
    normalisation: tuple[dict[str, Any], ...]
    weights: tuple[Path, ...]
    weights_sha256: dict[str, str] = dataclasses.field(default_factory=dict)
    target_spacing: float = 0.0
    volume: dict[str, Any] | None = None

    def build_args(self) -> dict[str, Any]:
        """The builder's 3D arguments (none for a 2D network: built as before)."""
        if self.volume is None:
            return {}
        return {"spatial_dims": 3, "strides": tuple(tuple(s) for s in self.volume["strides"])}

    def member(self, name: str) -> ModelFolder:
        """The folder with one of its networks only, by weights file name.

        Raises:
            ModelFolderError: If the folder has no such weights file.
        """
        weights = tuple(w for w in self.weights if w.name == name)
        if not weights:
            raise ModelFolderError(f"{self.folder}: no weights file {name}")
        return dataclasses.replace(self, weights=weights)


def export_model(folder: str | Path, *, architecture: Mapping[str, Any], in_channels: int,
                 n_classes: int, base_channels: int, image_size: int,
                 label_names: Mapping[int, str], channel_names: Sequence[str],
                 normalisation: Mapping[str, Mapping[str, Any]],
                 weights: Sequence[str | Path], source: str | None = None,
                 target_spacing: float = 0.0,
                 search: Mapping[str, Any] | None = None,
                 volume: Mapping[str, Any] | None = None) -> Path:
    """Write a model folder that `mbnas predict` can use.

    Args:
        folder: Destination (created). Weight files listed by an earlier export into the
            same folder and not listed now are removed.
        architecture: The genotype or baseline as a dict (``Genotype.to_dict()``).
        in_channels: Number of input channels.
        n_classes: Number of classes, background included.
        base_channels: Width the network was built with.
        image_size: In-plane slice size the network was trained on.
        label_names: Class id -> name, ids 0..n_classes-1.
        channel_names: One name per input channel.
        normalisation: Channel name -> scheme dict (see the module docstring), e.g. from
            :func:`normalisation_from_cache`.
        weights: The weights files of the runs (``fold<F>_seed<S>.pt``); their file
            names are kept, so they must differ.
        source: Where the weights come from (the evaluation folder), recorded as
            ``source`` so that a later export into the folder can say what it replaced.
        target_spacing: The protocol's ``target_spacing`` (0: not written).
        search: For a searched network, the search state it came from (run folder,
            evaluations done, the best's key and score then), recorded as ``search``
            (and so in an ONNX folder's copy of ``model.json``).
        volume: A 3D network's plan (see the module docstring); None for 2D.

    Returns:
        The path of the ``model.json`` written.

    Raises:
        ModelFolderError: If a setting is inconsistent or a weights file is missing.
    """
    folder = Path(folder)
    paths = [Path(w) for w in weights]
    meta: dict[str, Any] = {
        "format": MODEL_FORMAT,
        "architecture": dict(architecture),
        "in_channels": in_channels,
        "n_classes": n_classes,
        "base_channels": base_channels,
        "image_size": image_size,
        "label_names": {str(k): v for k, v in label_names.items()},
        "channel_names": list(channel_names),
        "normalisation": {k: dict(v) for k, v in normalisation.items()},
        "weights": [p.name for p in paths],
    }
    if source is not None:
        meta["source"] = source
    if target_spacing:
        meta["target_spacing"] = float(target_spacing)
    if search is not None:
        meta["search"] = dict(search)
    if volume is not None:
        meta["volume"] = {k: volume[k] for k in VOLUME_KEYS}
    _validate(meta, f"cannot export to {folder}")
    for path in paths:
        if not path.is_file():
            raise ModelFolderError(f"cannot export to {folder}: weights file {path} does not "
                                   "exist (train with keep_weights to keep them)")
    old = _previous_weights(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for path in paths:
        target = folder / path.name
        if target.exists() and (target.resolve() == path.resolve()
                                or os.path.samefile(target, path)):  # linked already
            continue
        # A copy, not a hard link: a model folder edited or overwritten in place must
        # never change the store's weights (finished work is never lost).
        with path.open("rb") as src:
            atomic_write(target, partial(shutil.copyfileobj, src))
    # A checksum per weights file: loading refuses a file changed since the export.
    meta["weights_sha256"] = {p.name: file_sha256(folder / p.name) for p in paths}
    atomic_write_json(folder / MODEL_JSON, meta)
    for name in old - set(meta["weights"]):
        (folder / name).unlink(missing_ok=True)
    return folder / MODEL_JSON


def load_model_folder(folder: str | Path) -> ModelFolder:
    """Read and validate a model folder written by :func:`export_model`.

    Raises:
        ModelFolderError: If ``model.json`` is missing or invalid, or a weights file is
            missing; the message names the file and the problem.
    """
    folder = Path(folder)
    path = folder / MODEL_JSON
    if not folder.is_dir():
        raise ModelFolderError(f"model folder {folder} does not exist")
    if not path.is_file():
        raise ModelFolderError(f"{folder} is not a model folder: it has no {MODEL_JSON} "
                               "(export one with `mbnas evaluate`)")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelFolderError(f"{path}: cannot be read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ModelFolderError(f"{path} is not valid JSON: {exc}") from None
    architecture = _validate(meta, str(path))
    missing = [n for n in meta["weights"] if not (folder / n).is_file()]
    if missing:
        raise ModelFolderError(f"{path}: weights file(s) missing from {folder}: "
                               f"{', '.join(missing)}")
    channels = tuple(meta["channel_names"])
    return ModelFolder(
        folder=folder,
        architecture=architecture,
        in_channels=int(meta["in_channels"]),
        n_classes=int(meta["n_classes"]),
        base_channels=int(meta["base_channels"]),
        image_size=int(meta["image_size"]),
        label_names={int(k): str(v) for k, v in meta["label_names"].items()},
        channel_names=channels,
        normalisation=tuple(dict(meta["normalisation"][c]) for c in channels),
        weights=tuple((folder / n).resolve() for n in meta["weights"]),
        weights_sha256=_checksums(meta, path),
        target_spacing=_spacing(meta, path),
        volume=_volume(meta, path),
    )


def _checksums(meta: dict[str, Any], path: Path) -> dict[str, str]:
    """``weights_sha256`` of model.json (absent from folders exported before it existed)."""
    sums = meta.get("weights_sha256") or {}
    if not isinstance(sums, dict) or not all(isinstance(v, str) for v in sums.values()):
        raise ModelFolderError(f"{path}: 'weights_sha256' must map weight file names to "
                               "SHA-256 strings")
    return {str(k): v for k, v in sums.items()}


def _spacing(meta: dict[str, Any], path: Path) -> float:
    value = meta.get("target_spacing", 0.0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
        raise ModelFolderError(f"{path}: 'target_spacing' must be a spacing in mm, got "
                               f"{value!r}")
    return float(value)


def _volume(meta: dict[str, Any], path: Path) -> dict[str, Any] | None:
    value = meta.get("volume")
    if value is None:
        return None
    try:
        out = {k: value[k] for k in VOLUME_KEYS}
        spacing = [float(v) for v in out["spacing"]]
        patch = [int(v) for v in out["patch_size"]]
        strides = [[int(k) for k in s] for s in out["strides"]]
        ok = (len(spacing) == len(patch) == 3 and min(spacing) > 0 and min(patch) > 0
              and all(len(s) == 3 and set(s) <= {1, 2} for s in strides)
              and 0 <= float(out["overlap"]) < 1)
    except (KeyError, TypeError, ValueError):
        ok = False
    if not ok:
        raise ModelFolderError(f"{path}: 'volume' must hold spacing, strides, patch_size and "
                               f"overlap of a 3D network, got {value!r}")
    return out


def normalisation_from_cache(data_dir: str | Path, cache_dir: str | Path,
                             image_size: int, normalisation: Sequence[str] = (),
                             target_spacing: float = 0.0) -> dict[str, dict[str, Any]]:
    """Training's per-channel normalisation, from the preprocessing cache's statistics.

    Uses the same cache as training (preprocessing it first if it is missing), so CT
    channels get the dataset's clip range, mean and standard deviation, and every
    other channel is z-scored per case, exactly as the training slices were.

    Returns:
        Channel name -> scheme dict, ready for :func:`export_model`.
    """
    dataset = read_dataset(data_dir)
    cache = preprocess(data_dir, cache_dir, PreprocessConfig(
        size=image_size, normalisation=tuple(normalisation), target_spacing=target_spacing))
    schemes = resolve_schemes(normalisation, dataset.ct_channels)
    try:
        stats = json.loads((cache / "preprocess.json").read_text(encoding="utf-8"))
        ct = stats["statistics"]["ct"]
    except (OSError, ValueError, KeyError) as exc:
        raise ModelFolderError(f"{cache / 'preprocess.json'}: no readable preprocessing "
                               f"statistics ({exc}); delete {cache} and run again") from None
    return channel_schemes(dataset.channel_names, schemes, ct)


def channel_schemes(channel_names: Sequence[str], schemes: Sequence[str],
                    ct: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, Any]]:
    """Channel name -> scheme dict of ``model.json`` from training's CT statistics (the
    slices' ``preprocess.json`` or the volumes' ``volumes.json``)."""
    out: dict[str, dict[str, Any]] = {}
    for name, scheme in zip(channel_names, schemes, strict=True):
        if scheme != "ct":
            out[name] = {"scheme": scheme}
        elif name in ct:
            s = ct[name]
            out[name] = {"scheme": "ct", "clip": [float(s["clip_low"]), float(s["clip_high"])],
                         "mean": float(s["mean"]), "std": float(s["std"])}
        else:
            out[name] = {"scheme": "zscore"}
    return out


def _previous_weights(folder: Path) -> set[str]:
    try:
        names = json.loads((folder / MODEL_JSON).read_text(encoding="utf-8"))["weights"]
        return {n for n in names if isinstance(n, str) and Path(n).name == n}
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def _positive_int(meta: dict[str, Any], key: str, where: str) -> int:
    value = meta.get(key)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ModelFolderError(f"{where}: '{key}' must be a positive integer, got {value!r}")
    return int(value)


def _validate(meta: Any, where: str) -> Any:
    """Check a ``model.json`` dict; return its architecture."""
    if not isinstance(meta, dict):
        raise ModelFolderError(f"{where}: expected a JSON object, got {type(meta).__name__}")
    required = ("format", "architecture", "in_channels", "n_classes", "base_channels",
                "image_size", "label_names", "channel_names", "normalisation", "weights")
    missing = [k for k in required if k not in meta]
    if missing:
        raise ModelFolderError(f"{where}: missing field(s) {', '.join(missing)}")
    if meta["format"] != MODEL_FORMAT:
        raise ModelFolderError(f"{where}: model format {meta['format']!r} is not supported "
                               f"(this mbnas reads format {MODEL_FORMAT}); export it again")
    try:
        architecture = architecture_from_dict(meta["architecture"])
    except (GenotypeError, TypeError, ValueError, KeyError) as exc:
        raise ModelFolderError(f"{where}: invalid architecture ({exc})") from None
    in_channels = _positive_int(meta, "in_channels", where)
    n_classes = _positive_int(meta, "n_classes", where)
    if n_classes > 256:
        raise ModelFolderError(f"{where}: {n_classes} classes do not fit uint8 label files")
    _positive_int(meta, "base_channels", where)
    _positive_int(meta, "image_size", where)
    labels, channels = meta["label_names"], meta["channel_names"]
    if not isinstance(labels, dict) or sorted(labels) != sorted(str(i) for i in range(n_classes)):
        raise ModelFolderError(f"{where}: 'label_names' must name classes 0..{n_classes - 1}, "
                               f"got {labels!r}")
    if not isinstance(channels, list) or len(channels) != in_channels \
            or not all(isinstance(c, str) for c in channels) or len(set(channels)) != len(channels):
        raise ModelFolderError(f"{where}: 'channel_names' must be {in_channels} distinct "
                               f"names, got {channels!r}")
    norm = meta["normalisation"]
    if not isinstance(norm, dict) or set(norm) != set(channels):
        raise ModelFolderError(f"{where}: 'normalisation' must have one entry per channel "
                               f"({', '.join(channels)}), got {norm!r}")
    for name in channels:
        _check_scheme(norm[name], f"{where}: normalisation of channel '{name}'")
    names = meta["weights"]
    if not isinstance(names, list) or not names:
        raise ModelFolderError(f"{where}: 'weights' must list at least one weights file")
    for n in names:
        if not isinstance(n, str) or Path(n).name != n or not n.endswith(".pt"):
            raise ModelFolderError(f"{where}: weights entry {n!r} must be a .pt file name "
                                   "inside the folder")
    if len(set(names)) != len(names):
        raise ModelFolderError(f"{where}: weights files have the same name: {names}")
    return architecture


def _check_scheme(scheme: Any, where: str) -> None:
    if not isinstance(scheme, dict) or scheme.get("scheme") not in SCHEMES:
        raise ModelFolderError(f"{where}: expected a dict with 'scheme' one of "
                               f"{', '.join(SCHEMES)}, got {scheme!r}")
    if scheme["scheme"] in ("zscore", "percentile"):
        return
    try:
        lo, hi = (float(v) for v in scheme["clip"])
        mean, std = float(scheme["mean"]), float(scheme["std"])
    except (KeyError, TypeError, ValueError):
        raise ModelFolderError(f"{where}: a 'ct' scheme needs 'clip' [low, high], 'mean' "
                               f"and 'std' numbers, got {scheme!r}") from None
    if not all(math.isfinite(v) for v in (lo, hi, mean, std)) or lo > hi or std < 0:
        raise ModelFolderError(f"{where}: invalid CT statistics {scheme!r}")


__all__ = ["MODEL_FORMAT", "channel_schemes", "ModelFolder", "ModelFolderError", "export_model",
           "load_model_folder", "normalisation_from_cache"]
