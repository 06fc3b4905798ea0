"""ONNX files of a model folder's networks, and running them with onnxruntime.

Exporter: PyTorch's supported exporter, ``torch.onnx.export(..., dynamo=True)``, which
captures the network with ``torch.export`` and translates it with onnxscript. The older
TorchScript-based exporter (``dynamo=False``) is deprecated in PyTorch 2.x, so it is not
used. The input has a dynamic batch axis and dynamic height and width, expressed as
``multiple * Dim`` so any multiple of the network's deepest stride (``2**depth`` for a
genotype, 32 for the smp baselines) is accepted.

An ONNX folder (``mbnas export onnx MODEL_DIR --out DIR``) holds one ``<run>.onnx`` per
weights file of the model folder and a copy of its ``model.json`` with three fields
added: ``onnx`` (the file names, one per ensemble member), ``onnx_sha256`` (each file's
checksum, verified when the folder is loaded), ``onnx_exporter`` and ``onnx_input``
(name, axes, size multiple). Each file maps ``image`` (B, C, H, W) float32
to ``logits`` (B, K, H, W); the preprocessing (slice size, per-channel normalisation,
labels) is the model folder's, described in ``model.json``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mbnas.errors import ConfigError, MbnasError
from mbnas.inference.export import MODEL_JSON, ModelFolder, ModelFolderError, load_model_folder
from mbnas.io import atomic_write_json
from mbnas.space import Genotype
from mbnas.store.weights import check_checksum, file_sha256

OPSET = 18
INPUT, OUTPUT = "image", "logits"
_MAX_BLOCKS = 4096


def size_multiple(model: ModelFolder) -> int:
    """Height and width of the input must be multiples of this."""
    if isinstance(model.architecture, Genotype):
        return 2 ** model.architecture.depth()
    return 32  # smp encoders downsample five times


def _require(module: str, what: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise ConfigError(f"{what} needs the Python package {module}, which is not "
                          "installed; install it with `pip install 'mbnas[onnx]'`")


def export_onnx(model_dir: str | Path, out_dir: str | Path, opset: int = OPSET) -> list[Path]:
    """Write one ``.onnx`` file per network of a model folder, then ``model.json``.

    Returns:
        The ``.onnx`` files written, in the order of ``model.json``'s weights.

    Raises:
        ModelFolderError: If ``model_dir`` is not a valid model folder (checked before
            anything is written).
        ConfigError: If onnx/onnxscript are not installed.
    """
    from mbnas.inference.inference import Segmenter

    model = load_model_folder(model_dir)
    _require("onnxscript", "ONNX export")
    _require("onnx", "ONNX export")
    meta = json.loads((Path(model_dir) / MODEL_JSON).read_text(encoding="utf-8"))
    multiple = size_multiple(model)
    networks = Segmenter(model, "cpu").networks
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(2, model.in_channels, multiple * 2, multiple * 2)
    batch = torch.export.Dim("batch", min=1, max=_MAX_BLOCKS)
    height = torch.export.Dim("height_blocks", min=1, max=_MAX_BLOCKS)
    width = torch.export.Dim("width_blocks", min=1, max=_MAX_BLOCKS)
    written: list[Path] = []
    for path, net in zip(model.weights, networks):
        target = out / f"{path.stem}.onnx"
        program = torch.onnx.export(
            net, (example,), dynamo=True, opset_version=opset, input_names=[INPUT],
            output_names=[OUTPUT], verbose=False,
            dynamic_shapes=({0: batch, 2: multiple * height, 3: multiple * width},))
        fd, tmp = tempfile.mkstemp(dir=out, prefix=f".{target.name}.", suffix=".tmp")
        os.close(fd)
        try:
            program.save(tmp)
            os.replace(tmp, target)
        finally:
            Path(tmp).unlink(missing_ok=True)
        written.append(target)
    meta["onnx"] = [p.name for p in written]
    # As for the .pt weights: loading refuses an .onnx file changed since the export.
    meta["onnx_sha256"] = {p.name: file_sha256(p) for p in written}
    meta["onnx_exporter"] = (f"torch.onnx.export(dynamo=True), torch {torch.__version__}, "
                             f"opset {opset}")
    meta["onnx_input"] = {"name": INPUT, "output": OUTPUT,
                          "shape": ["batch", model.in_channels, "height", "width"],
                          "size_multiple": multiple}
    atomic_write_json(out / MODEL_JSON, meta)
    return written


def load_onnx_folder(folder: str | Path) -> ModelFolder:
    """Read an ONNX folder; its ``weights`` are the ``.onnx`` files.

    Raises:
        ModelFolderError: If ``model.json`` is missing or invalid, has no ``onnx`` list,
            or an ``.onnx`` file is missing.
    """
    from mbnas.inference import export as model_files

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
        weights_sha256=dict(sums or {}))


class OnnxNetwork:
    """One ``.onnx`` network behind the call interface of a torch network (logits out)."""

    def __init__(self, path: Path, device: torch.device, sha256: str | None = None) -> None:
        _require("onnxruntime", "--backend onnxruntime")
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


__all__ = ["OPSET", "OnnxNetwork", "export_onnx", "load_onnx_folder", "size_multiple"]
