"""Running an ONNX folder (written by ``mbnas export onnx``) with onnxruntime.

Inference needs this without the exporter, so it lives here, below :mod:`mbnas.export.onnx`
(which re-exports both names): the exporter imports inference, never the other way round.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mbnas.errors import ConfigError, MbnasError
from mbnas.inference import model_folder as model_files
from mbnas.inference.model_folder import MODEL_JSON, ModelFolder, ModelFolderError
from mbnas.store.weights import check_checksum

__all__ = ["OnnxNetwork", "load_onnx_folder", "require_package"]


def require_package(module: str, what: str) -> None:
    """Refuse, naming the extra to install, when ``module`` is not installed."""
    if importlib.util.find_spec(module) is None:
        raise ConfigError(f"{what} needs the Python package {module}, which is not "
                          "installed; install it with `pip install 'mbnas[onnx]'`")


def load_onnx_folder(folder: str | Path) -> ModelFolder:
    """Read an ONNX folder; its ``weights`` are the ``.onnx`` files.

    Raises:
        ModelFolderError: If ``model.json`` is missing or invalid, has no ``onnx`` list,
            or an ``.onnx`` file is missing.
    """
    folder = Path(folder)
    path = folder / MODEL_JSON
    if not path.is_file():
        raise ModelFolderError(f"{folder} is not an ONNX model folder: it has no {MODEL_JSON} "
                               "(write one with `mbnas export onnx MODEL_DIR --out DIR`)")
    try:
        meta: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFolderError(f"{path}: not readable JSON ({exc})") from None
    names = meta.get("onnx") if isinstance(meta, dict) else None
    if not isinstance(names, list) or not names \
            or not all(isinstance(n, str) and Path(n).name == n for n in names):
        raise ModelFolderError(f"{path}: no 'onnx' list of files; write the folder with "
                               "`mbnas export onnx`")
    # The model folder's own validation, without its check that .pt files are present.
    architecture = model_files._validate(meta, str(path))
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise ModelFolderError(f"{path}: ONNX file(s) missing from {folder}: "
                               f"{', '.join(missing)}")
    sums = meta.get("onnx_sha256")  # absent from folders exported before it existed
    if sums is not None and (not isinstance(sums, dict) or set(sums) != set(names)
                             or not all(isinstance(v, str) for v in sums.values())):
        raise ModelFolderError(f"{path}: 'onnx_sha256' must map every file of 'onnx' to its "
                               "SHA-256; export the folder again")
    channels = tuple(meta["channel_names"])
    return ModelFolder(
        folder=folder, architecture=architecture, in_channels=int(meta["in_channels"]),
        n_classes=int(meta["n_classes"]), base_channels=int(meta["base_channels"]),
        image_size=int(meta["image_size"]),
        label_names={int(k): str(v) for k, v in meta["label_names"].items()},
        channel_names=channels,
        normalisation=tuple(dict(meta["normalisation"][c]) for c in channels),
        weights=tuple((folder / n).resolve() for n in names),
        weights_sha256=dict(sums or {}), volume=model_files._volume(meta, path),
        target_spacing=model_files._spacing(meta, path))


class OnnxNetwork:
    """One ``.onnx`` network behind the call interface of a torch network (logits out)."""

    def __init__(self, path: Path, device: torch.device, sha256: str | None = None) -> None:
        require_package("onnxruntime", "--backend onnxruntime")
        import onnxruntime as ort

        try:
            check_checksum(path, sha256)
        except MbnasError as exc:
            raise ModelFolderError(str(exc)) from None

        providers = ["CPUExecutionProvider"]
        if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(str(path), providers=providers)
        except Exception as exc:  # onnxruntime raises its own, unexported exception types
            raise ModelFolderError(f"{path}: onnxruntime cannot load it "
                                   f"({str(exc).splitlines()[0]})") from None
        self.input = self.session.get_inputs()[0].name

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        logits = self.session.run(None, {self.input: array})[0]
        return torch.from_numpy(logits).to(x.device)
