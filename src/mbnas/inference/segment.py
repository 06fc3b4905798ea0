"""Segment scans with an exported model folder: the same preprocessing as training.

Per scan: reorient to the closest canonical (RAS) orientation, take the axial slices,
resize them in-plane to the model's ``image_size`` (bilinear, antialiased) and normalise
each channel as recorded in ``model.json`` (the very functions of
``mbnas.data.preprocess``). Then, a batch of slices at a time: the softmax probabilities
of every network of the folder are averaged, resized back to the canonical grid
(bilinear), and the argmax is taken; the label volume is finally put back into the
scan's own voxel order, so it lies on the scan's grid with the scan's affine.

A ``target_spacing`` model saw windows of ``image_size`` px of slices resampled to that
spacing; on a new scan, where nothing says where the structures are, the networks slide
over the whole resampled slice (MONAI's ``sliding_window_inference``, half-window
overlap, Gaussian weights), so the prediction covers the whole scan, not a centre crop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mbnas.data.normalise import normalise_case, normalise_ct
from mbnas.data.orientation import from_canonical, to_canonical
from mbnas.data.preprocess import resize_slices
from mbnas.data.spacing import crop_or_pad, spacing_grid
from mbnas.errors import ConfigError, MbnasError
from mbnas.inference.model_folder import ModelFolder, ModelFolderError, load_model_folder
from mbnas.inference.scans import ScanFiles, find_scans, read_scan, write_label
from mbnas.progress import track
from mbnas.spaces.mbnas import build_model
from mbnas.store import load_weights
from mbnas.training.device import select_device

# Slices per forward pass; bounds the memory of the probabilities resized to the scan grid.
BATCH_SIZE = 16
#: ``torch``: the model folder's weights; ``onnxruntime``: a folder of ``mbnas export onnx``.
BACKENDS = ("torch", "onnxruntime")


def prepare_slices(image: np.ndarray, affine: np.ndarray, model: ModelFolder,
                   whole: bool = False) -> np.ndarray:
    """A scan's normalised axial slices, exactly as training saw its cases.

    Args:
        image: (X, Y, Z, C) array as stored.
        affine: The scan's affine.
        model: Gives the slice size and each channel's normalisation.
        whole: For a ``target_spacing`` model: the whole resampled slices, padded (centred)
            to at least S x S, instead of their centre S x S window.

    Returns:
        float32 (Z, C, S, S) slices of the canonical volume, inferior to superior
        (``whole``: (Z, C, max(H, S), max(W, S)) for a ``target_spacing`` model).
    """
    canonical, canonical_affine = to_canonical(image, affine)
    s = model.image_size
    shape: tuple[int, int] = (s, s)
    if model.target_spacing:
        grid = spacing_grid(canonical.shape[:2], _in_plane(canonical_affine),
                            model.target_spacing)
        if whole:
            shape = (max(grid[0], s), max(grid[1], s))
    slices = np.empty((canonical.shape[2], canonical.shape[3], *shape), np.float32)
    if model.target_spacing:  # as preprocessing: resample to the spacing, crop or pad
        resampled = np.empty((*slices.shape[:2], *grid), np.float32)
        resize_slices(canonical, resampled)
        crop_or_pad(resampled, slices, resampled.min(axis=(0, 2, 3)))
    else:
        resize_slices(canonical, slices)
    for c, scheme in enumerate(model.normalisation):
        if scheme["scheme"] == "ct":
            normalise_ct(slices[:, c], (float(scheme["clip"][0]), float(scheme["clip"][1])),
                         float(scheme["mean"]), float(scheme["std"]))
        else:
            normalise_case(slices[:, c], scheme["scheme"])
    return slices


def _in_plane(affine: np.ndarray) -> tuple[float, float]:
    sizes = np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0))
    return float(sizes[0]), float(sizes[1])


def to_scan_grid(prob: torch.Tensor, grid: tuple[int, int],
                 window: tuple[int, int] | None = None,
                 start: tuple[int, int] | None = None) -> torch.Tensor:
    """Class ids (N, *grid) uint8 of slices' probabilities (N, K, S, S) resized to a scan's
    in-plane grid (bilinear, antialiased), the argmax taken there. With ``window`` (the
    resampled grid of a ``target_spacing`` model) the S x S slices are first put back in
    that grid, background around them: at ``start`` (row, column; the case's
    ``CaseInfo.crop``), or in the middle."""
    if window is not None:
        fill = np.zeros(prob.shape[1], np.float32)
        fill[0] = 1.0
        out = np.empty((*prob.shape[:2], *window), np.float32)
        back = None if start is None else (-start[0], -start[1])  # out's window in prob
        crop_or_pad(prob.float().cpu().numpy(), out, fill, back)
        prob = torch.from_numpy(out).to(prob.device)
    prob = F.interpolate(prob, size=grid, mode="bilinear", align_corners=False, antialias=True)
    return prob.argmax(1).to(torch.uint8)


class Segmenter:
    """The networks of a model folder on a device, ready to segment scans.

    Args:
        model: A model folder (``load_model_folder``).
        device: ``auto``, ``cpu``, ``cuda`` or a ``torch.device``.
        batch_size: Slices per forward pass.
        backend: ``torch``, or ``onnxruntime`` for a model read by
            ``mbnas.inference.onnx_runtime.load_onnx_folder``.

    Raises:
        ModelFolderError: If a weights file does not fit the architecture.
    """

    def __init__(self, model: ModelFolder, device: str | torch.device = "auto",
                 batch_size: int = BATCH_SIZE, backend: str = "torch") -> None:
        self.model = model
        self.device = select_device(device) if isinstance(device, str) else device
        self.batch_size = batch_size
        self.networks: list[Callable[[torch.Tensor], torch.Tensor]]
        if backend == "onnxruntime":
            from mbnas.inference.onnx_runtime import OnnxNetwork

            self.networks = [OnnxNetwork(path, self.device, model.weights_sha256.get(path.name))
                             for path in model.weights]
        else:
            self.networks = [self._load(path) for path in model.weights]

    def _load(self, path: Path) -> nn.Module:
        m = self.model
        net = build_model(m.architecture, m.in_channels, m.n_classes, m.base_channels,
                          **m.build_args())
        try:
            net.load_state_dict(load_weights(path, m.weights_sha256.get(path.name)))
        except MbnasError as exc:
            raise ModelFolderError(str(exc)) from None
        except (RuntimeError, KeyError, TypeError) as exc:
            first = str(exc).strip().splitlines()[0]
            raise ModelFolderError(f"{path}: the weights do not fit the architecture in "
                                   f"{m.folder / 'model.json'} ({first})") from None
        return net.to(self.device).eval()

    @torch.no_grad()
    def segment(self, image: np.ndarray, affine: np.ndarray) -> np.ndarray:
        """Class ids (X, Y, Z) uint8 on the scan's own grid.

        Args:
            image: (X, Y, Z, C) array as stored (channels last).
            affine: The scan's affine.
        """
        if self.model.volume is not None:
            from mbnas.inference.volumes import segment_volume

            return segment_volume(self, image, affine)
        slices = prepare_slices(image, affine, self.model, whole=True)
        canonical_shape = to_canonical(image[..., 0], affine)[0].shape
        grid = canonical_shape[:2]
        window = None
        if self.model.target_spacing:
            canonical_affine = to_canonical(image[..., :1], affine)[1]
            window = spacing_grid(grid, _in_plane(canonical_affine), self.model.target_spacing)
        labels = np.empty((canonical_shape[2], *grid), np.uint8)
        with track("segmenting", total=len(slices), unit="slice") as step:  # not silent
            for a in range(0, len(slices), self.batch_size):
                x = torch.from_numpy(slices[a:a + self.batch_size]).to(self.device)
                # window: the padding around the resampled slices is cropped off again
                labels[a:a + len(x)] = to_scan_grid(self._slide(x), grid,
                                                    window).cpu().numpy()
                step.advance(len(x))
        return np.ascontiguousarray(from_canonical(labels.transpose(1, 2, 0), affine))

    def _slide(self, x: torch.Tensor) -> torch.Tensor:
        """Probabilities of slices larger than the model's window, from windows slid over
        them (half-window overlap, Gaussian weights); S x S slices in one pass."""
        s = self.model.image_size
        if tuple(x.shape[-2:]) == (s, s):
            return self.probabilities(x)
        from monai.inferers import sliding_window_inference

        out = sliding_window_inference(x, (s, s), self.batch_size, self.probabilities,
                                       overlap=0.5, mode="gaussian")
        assert isinstance(out, torch.Tensor)  # one output: the probabilities
        return out

    @torch.no_grad()
    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        """The networks' mean softmax probabilities (N, K, S, S) of prepared slices."""
        prob = self.networks[0](x).float().softmax(1)
        for net in self.networks[1:]:
            prob += net(x).float().softmax(1)
        return prob / len(self.networks)

    def predict_slices(self, slices: np.ndarray) -> np.ndarray:
        """Class ids (N, S, S) of slices already prepared as training saw them
        (N, C, S, S), on the model's grid; in batches of ``batch_size``."""
        out = []
        for a in range(0, len(slices), self.batch_size):
            x = torch.from_numpy(np.ascontiguousarray(slices[a:a + self.batch_size],
                                                      dtype=np.float32)).to(self.device)
            out.append(self.probabilities(x).argmax(1).cpu().numpy())
        return np.concatenate(out)


@dataclass
class PredictSummary:
    """What a prediction over several scans produced.

    Attributes:
        written: Label files written, in scan order.
        failed: (scan name or file, message) of every scan that could not be segmented.
    """

    written: list[Path] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


ScanCallback = Callable[[ScanFiles, Path | None, str | None], None]


def output_path(scan: ScanFiles, out_dir: Path) -> Path:
    """Where the label file of a scan is written."""
    return out_dir / f"{scan.name}.nii.gz"


def predict_scan(segmenter: Segmenter, scan: ScanFiles, out_dir: str | Path) -> Path:
    """Segment one scan and write ``out_dir/<name>.nii.gz``.

    Raises:
        ScanError: If the scan cannot be read or does not fit the model.
    """
    data = read_scan(scan, segmenter.model.channel_names)
    label = segmenter.segment(data.image, data.affine)
    path = output_path(scan, Path(out_dir))
    write_label(label, data, path)
    return path


def check_output_folder(out_dir: str | Path) -> Path:
    """Refuse an output that is an existing file, or a new path named like a NIfTI file."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: --output is an existing file; give a folder for the labels")
    if not out.exists() and out.name.endswith((".nii", ".nii.gz")):
        raise ConfigError(f"{out}: --output is the folder the label files go to, not a file "
                          "name; give a folder")
    return out


def predict(model_dir: str | Path, input_path: str | Path, out_dir: str | Path,
            device: str = "auto", batch_size: int = BATCH_SIZE,
            on_scan: ScanCallback | None = None, backend: str = "torch") -> PredictSummary:
    """Segment a scan or a folder of scans with a model folder (ensemble of its weights).

    A single file that fails raises; in a folder, a scan that fails is recorded in the
    summary and the others are still segmented.

    Args:
        model_dir: A model folder written by ``export_model``.
        input_path: A NIfTI file or a folder (see ``mbnas.inference.scans``).
        out_dir: Folder the label files are written to (created).
        device: ``auto``, ``cpu`` or ``cuda``.
        batch_size: Slices per forward pass.
        on_scan: Called after each scan with (scan, written path or None, error or None).
        backend: ``torch`` (a model folder) or ``onnxruntime`` (an ONNX folder written by
            ``mbnas export onnx``).

    Raises:
        ModelFolderError: If the model folder is unusable.
        ConfigError: If the input does not exist or the output would overwrite an input.
        ScanError: If a single-file input cannot be segmented.
    """
    if batch_size < 1:
        raise ConfigError(f"batch size must be >= 1, got {batch_size}")
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; use {' or '.join(BACKENDS)}")
    out = check_output_folder(out_dir)
    if backend == "onnxruntime":
        from mbnas.inference.onnx_runtime import load_onnx_folder

        model = load_onnx_folder(model_dir)
    else:
        model = load_model_folder(model_dir)
    scans = find_scans(input_path)
    inputs = {p.resolve() for s in scans for p in s.files}
    for scan in scans:
        if output_path(scan, out).resolve() in inputs:
            raise ConfigError(f"writing {output_path(scan, out)} would overwrite an input "
                              "scan; choose another --output folder")
    segmenter = Segmenter(model, device, batch_size, backend)
    summary = PredictSummary()
    single = Path(input_path).is_file()
    for scan in scans:
        try:
            path = predict_scan(segmenter, scan, out)
        except (MbnasError, RuntimeError, MemoryError, OSError) as exc:
            # One bad scan (or one too large for the device) must not stop a folder.
            if single:
                raise
            message = str(exc) if isinstance(exc, MbnasError) else \
                f"{scan.files[0]}: {type(exc).__name__}: {exc}"
            summary.failed.append((scan.name, message))
            if on_scan is not None:
                on_scan(scan, None, message)
            continue
        summary.written.append(path)
        if on_scan is not None:
            on_scan(scan, path, None)
    return summary
