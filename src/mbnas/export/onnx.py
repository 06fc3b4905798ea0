"""ONNX files of a model folder's networks (running them: :mod:`mbnas.inference.onnx_runtime`).

Exporter: PyTorch's supported exporter, ``torch.onnx.export(..., dynamo=True)``, which
captures the network with ``torch.export`` and translates it with onnxscript. The older
TorchScript-based exporter (``dynamo=False``) is deprecated in PyTorch 2.x, so it is not
used. The input has a dynamic batch axis and dynamic height and width (and depth for a
3D network), expressed as ``multiple * Dim`` so any multiple of the network's deepest
stride (``2**depth`` for a genotype, 32 for the smp baselines; per axis the product of
the planned strides for a 3D network) is accepted.

An ONNX folder (``mbnas export onnx MODEL_DIR --out DIR``) holds one ``<run>.onnx`` per
weights file of the model folder and a copy of its ``model.json`` with three fields
added: ``onnx`` (the file names, one per ensemble member), ``onnx_sha256`` (each file's
checksum, verified when the folder is loaded), ``onnx_exporter`` and ``onnx_input``
(name, axes, size multiple). Each file maps ``image`` (B, C, H, W) float32
to ``logits`` (B, K, H, W); the preprocessing (slice size, per-channel normalisation,
labels) is the model folder's, described in ``model.json``.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from mbnas.inference.model_folder import MODEL_JSON, ModelFolder, load_model_folder
from mbnas.inference.onnx_runtime import OnnxNetwork, load_onnx_folder, require_package
from mbnas.io import atomic_write_json, file_mode, file_sha256
from mbnas.progress import track
from mbnas.spaces.languages import codec_of
from mbnas.spaces.mbnas.genotype import Genotype

OPSET = 18
#: Names of the dynamic spatial axes of 2D and 3D inputs.
AXES = {2: ("height", "width"), 3: ("depth", "height", "width")}
INPUT, OUTPUT = "image", "logits"
_MAX_BLOCKS = 4096


def size_multiple(model: ModelFolder) -> int:
    """Height and width of the input must be multiples of this."""
    codec = codec_of(model.architecture)
    if codec is not None:  # a searched architecture: its language knows its halvings
        return int(codec.multiple(model.architecture))
    return 32  # smp encoders downsample five times


def axis_multiples(model: ModelFolder) -> tuple[int, ...]:
    """What each spatial axis of the input must be a multiple of: the product of the
    planned strides a 3D network reaches, per axis; :func:`size_multiple` for 2D."""
    if model.volume is None or not isinstance(model.architecture, Genotype):
        return (size_multiple(model),) * 2
    depth = model.architecture.depth()
    strides = model.volume["strides"][:depth]
    return tuple(math.prod(int(s[a]) for s in strides) for a in range(3))


def export_onnx(model_dir: str | Path, out_dir: str | Path, opset: int = OPSET) -> list[Path]:
    """Write one ``.onnx`` file per network of a model folder, then ``model.json``.

    Returns:
        The ``.onnx`` files written, in the order of ``model.json``'s weights.

    Raises:
        ModelFolderError: If ``model_dir`` is not a valid model folder (checked before
            anything is written).
        ConfigError: If onnx/onnxscript are not installed.
    """
    from mbnas.inference.segment import Segmenter

    model = load_model_folder(model_dir)
    require_package("onnxscript", "ONNX export")
    require_package("onnx", "ONNX export")
    meta = json.loads((Path(model_dir) / MODEL_JSON).read_text(encoding="utf-8"))
    multiple = size_multiple(model)
    multiples = axis_multiples(model)
    networks: list[Any] = list(Segmenter(model, "cpu").networks)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    batch = torch.export.Dim("batch", min=1, max=_MAX_BLOCKS)
    names = AXES[len(multiples)]
    if model.volume is None:
        example = torch.zeros(2, model.in_channels, multiple * 2, multiple * 2)
        dynamic = {0: batch, **{2 + a: multiple * torch.export.Dim(
            f"{n}_blocks", min=1, max=_MAX_BLOCKS) for a, n in enumerate(names)}}
    else:  # 3D: traced at the patch; torch.export finds the range of each spatial axis
        example = torch.zeros(2, model.in_channels, *model.volume["patch_size"])
        dynamic = {0: batch, **{2 + a: torch.export.Dim.AUTO for a in range(3)}}
    written: list[Path] = []
    with track("ONNX export", total=len(model.weights), unit="network") as step:
        for path, net in step.each(zip(model.weights, networks), lambda m: m[0].stem):
            target = out / f"{path.stem}.onnx"
            program = torch.onnx.export(
                net, (example,), dynamo=True, opset_version=opset, input_names=[INPUT],
                output_names=[OUTPUT], verbose=False,
                dynamic_shapes=(dynamic,))
            if program is None:
                raise RuntimeError(f"torch.onnx.export returned no program for {path.name}")
            fd, tmp = tempfile.mkstemp(dir=out, prefix=f".{target.name}.", suffix=".tmp")
            os.close(fd)
            try:
                program.save(tmp)
                os.chmod(tmp, file_mode())  # mkstemp's 0600 would hide it from the group
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
                          "shape": ["batch", model.in_channels, *names],
                          "size_multiple": multiple}
    if model.volume is not None:
        meta["onnx_input"]["size_multiple"] = list(multiples)
    atomic_write_json(out / MODEL_JSON, meta)
    return written


__all__ = ["OPSET", "OnnxNetwork", "export_onnx", "load_onnx_folder", "size_multiple"]
