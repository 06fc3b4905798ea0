"""The training protocol: every setting of a training run is a field here, saved with every result.

A protocol is a frozen dataclass. Two runs with equal protocols are interchangeable, so the
protocol's ``key`` (a hash of its canonical JSON) is part of every stored run's key. Nothing
is configured by subclassing: a variation is a different value of a field (``replace``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mbnas.data.normalise import CHOICES as NORMALISATIONS
from mbnas.errors import ConfigError
from mbnas.nn import INITS
from mbnas.training.augment_config import (
    PROSTATE_AUGMENT,
    AugmentConfig,
    IntensityConfig,
)
from mbnas.training.fields import check_fields, reject_unknown
from mbnas.training.score_rule import score_epochs
from mbnas.training.volume import VolumeConfig

# How a run's validation Dice is computed (see mbnas.metrics.overlap).
DICE_MODES = ("pooled", "case")


@dataclass(frozen=True)
class Protocol:
    """How one architecture is trained and scored (paper, section 2.3).

    Attributes:
        epochs: Training epochs per run (paper: 100 Prostate, 50 Spleen).
        samples_per_epoch: An epoch is as many whole passes over the training slices
            as it takes to draw at least this many samples (the authors' code:
            2048); 0 makes an epoch one pass.
        batch_size: Slices per step (paper: 32).
        lr: Adam learning rate (paper: 1e-3).
        poly_exponent: Polynomial learning-rate decay exponent (paper: 0.9), per epoch.
        image_size: In-plane size the slices are resized to (paper: 128).
        folds: Patient-level cross-validation folds (paper: 5).
        seeds: Network initialisations per fold (paper: 3 during search, 5 in Table 1).
        score_fraction: The run score is the mean validation Dice over this last
            fraction of epochs (paper: 0.2).
        precision: "auto" (bf16 autocast where it is faster: CUDA with bf16 support,
            and CPUs), "bf16" or "fp32".
        channels_last: "auto" (on), "on" or "off".
        weight_decay: Adam weight decay (paper: none).
        val_batch_size: Slices per forward pass when validating.
        final_metrics: Also compute HD95 and Surface Dice per case after the last
            epoch (costly; on for the final evaluation, off during search).
        surface_tolerance_mm: Tolerance of the Surface Dice (paper: 2 mm).
        dice: The validation Dice that scores a run (``mbnas.metrics.overlap``):
            "pooled" sums true and false positives and negatives over all validation
            slices of the fold, one Dice per class, then the class mean (the authors'
            code); "case" is the mean over cases of each case's 3D Dice.
        loss_smooth: Smoothing term of the soft Dice loss (the authors' code: 1).
        keep_weights: Keep each run's final weights (needed by ``mbnas predict``).
        intensity: Intensity augmentation for robustness to other sites (gamma,
            contrast, bias field, noise, blur; ``training/intensity.py``); off by default.
        normalisation: Intensity normalisation per channel (or one for all):
            default, ct, zscore or percentile (``data/normalise.py``); empty: default.
        base_channels: Channels after the stem of a searched network (paper: 32);
            the quick protocol narrows the networks so a CPU can try the tool.
        target_spacing: In-plane spacing (mm) every slice is resampled to before it is
            cropped (a window placed to keep each case's labels) or padded to
            ``image_size``; 0 (the paper) resizes each slice to ``image_size`` whatever
            its field of view (``data/preprocess.py``).
        allow_cropped_labels: Go on when a case loses all of its labelled voxels to the
            ``target_spacing`` window (otherwise an error); not part of the key.
        foreground_fraction: Fraction of every batch drawn from training slices with
            foreground (nnU-Net: one third), the rest in the usual shuffled order; 0 (the
            paper) draws batches from the shuffled order only (``training/sampling.py``).
        init: Weight initialisation of a searched network (``mbnas.nn.weight_init``):
            "default" (PyTorch's, what the authors' mixed-block class runs) or "he"
            (He-normal, what their VGG-only class for Macro/Bilevel-NAS runs).
        supernet_epochs: Epochs of the weight-sharing supernet of ``--scoring supernet``
            (one per fold, ``mbnas.scoring.supernet_train``); 0 (the default, dropped
            from the dict and the key): as many as ``epochs``.
        volume: The 3D plan and patch settings (``training/volume.py``); None: 2D slices.
    """

    epochs: int = 50
    samples_per_epoch: int = 2048
    batch_size: int = 32
    lr: float = 1e-3
    poly_exponent: float = 0.9
    image_size: int = 128
    folds: int = 5
    seeds: tuple[int, ...] = (0, 1, 2)
    score_fraction: float = 0.2
    precision: str = "auto"
    channels_last: str = "auto"
    weight_decay: float = 0.0
    val_batch_size: int = 64
    final_metrics: bool = False
    surface_tolerance_mm: float = 2.0
    dice: str = "pooled"
    loss_smooth: float = 1.0
    keep_weights: bool = False
    base_channels: int = 32
    init: str = "default"
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    intensity: IntensityConfig = field(default_factory=IntensityConfig)
    normalisation: tuple[str, ...] = ()
    target_spacing: float = 0.0
    foreground_fraction: float = 0.0
    allow_cropped_labels: bool = False
    supernet_epochs: int = 0
    volume: VolumeConfig | None = None

    def __post_init__(self) -> None:
        check_fields(self, "protocol")  # types, finite numbers and ranges, field by field
        check_fields(self.augment, "protocol.augment")
        problems = []
        if self.epochs < 1:
            problems.append(f"epochs must be >= 1, got {self.epochs}")
        if self.supernet_epochs < 0:
            problems.append(f"supernet_epochs must be >= 0, got {self.supernet_epochs}")
        if self.batch_size < 1:
            problems.append(f"batch_size must be >= 1, got {self.batch_size}")
        if self.folds < 2:
            problems.append(f"folds must be >= 2, got {self.folds}")
        if not self.seeds:
            problems.append("seeds must name at least one seed")
        if not 0 < self.score_fraction <= 1:
            problems.append(f"score_fraction must be in (0, 1], got {self.score_fraction}")
        if self.precision not in ("auto", "bf16", "fp32"):
            problems.append(f"precision must be auto, bf16 or fp32, got {self.precision!r}")
        if self.channels_last not in ("auto", "on", "off"):
            problems.append(f"channels_last must be auto, on or off, got {self.channels_last!r}")
        if self.samples_per_epoch < 0:
            problems.append(f"samples_per_epoch must be >= 0, got {self.samples_per_epoch}")
        if self.dice not in DICE_MODES:
            problems.append(f"dice must be one of {', '.join(DICE_MODES)}, got {self.dice!r}")
        if self.loss_smooth < 0:
            problems.append(f"loss_smooth must be >= 0, got {self.loss_smooth}")
        if self.init not in INITS:
            problems.append(f"init must be one of {', '.join(INITS)}, got {self.init!r}")
        if self.image_size % 16:
            problems.append(f"image_size must be a multiple of 16, got {self.image_size}")
        problems += [f"normalisation {n!r} is not one of {', '.join(NORMALISATIONS)}"
                     for n in self.normalisation if n not in NORMALISATIONS]
        if problems:
            raise ConfigError("invalid protocol: " + "; ".join(problems))
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        for name in ("target_spacing", "foreground_fraction"):  # 1 and 1.0: one key
            object.__setattr__(self, name, float(getattr(self, name)))

    def passes_per_epoch(self, n_train: int) -> int:
        """Whole passes over ``n_train`` slices that make one epoch (at least one).

        As the authors count (``num_batchgens_tr`` in ``unet_evaluate.py``), a pass is
        its number of batches times the batch size, a short last batch counted whole.
        """
        per_pass = -(-max(n_train, 1) // self.batch_size) * self.batch_size
        return max(1, -(-self.samples_per_epoch // per_pass))

    @property
    def score_epochs(self) -> int:
        """How many final epochs are averaged into the run score (at least one)."""
        return score_epochs(self.epochs, self.score_fraction)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if self.init == "default":  # config.yaml of folders made before it existed match
            d.pop("init")
        if not self.allow_cropped_labels:
            d.pop("allow_cropped_labels")
        if not self.supernet_epochs:  # likewise: keys and configs from before it
            d.pop("supernet_epochs")
        if self.volume is None:  # 2D: the dicts and keys of before 3D
            d.pop("volume")
        else:
            d["volume"] = self.volume.to_dict()
        return d

    @property
    def spatial_dims(self) -> int:
        """2 for slices, 3 for volumes."""
        return 2 if self.volume is None else 3

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Protocol:
        d = dict(d)
        reject_unknown(cls, d, "protocol")
        aug = d.pop("augment", None)
        if isinstance(aug, dict):
            reject_unknown(AugmentConfig, aug, "augment")
        augment = AugmentConfig(**_tuples(aug)) if isinstance(aug, dict) else AugmentConfig()
        intensity = IntensityConfig.from_dict(d.pop("intensity", None))
        volume = d.pop("volume", None)
        volume = volume if isinstance(volume, VolumeConfig) else VolumeConfig.from_dict(volume)
        return cls(augment=augment, intensity=intensity, volume=volume, **_tuples(d))

    @property
    def key(self) -> str:
        """Stable hash of the settings that change a run's result.

        ``folds`` is part of it (another fold count is another split); ``seeds`` is not:
        runs are stored per seed, so asking for more seeds re-uses the runs already
        trained for the others. Nor is ``supernet_epochs``: it changes the supernet
        (whose folder has its own key), not a stand-alone run.
        """
        d = self.to_dict()
        d.pop("seeds")
        d.pop("val_batch_size")  # changes speed only
        d.pop("supernet_epochs", None)  # the supernet's own key holds it (no run's result)
        if not self.intensity.enabled:  # off: the keys of runs stored before it existed
            d.pop("intensity")
        if not self.normalisation:
            d.pop("normalisation")
        for name in ("target_spacing", "foreground_fraction"):  # 0: keys from before them
            if not d[name]:
                d.pop(name)
        d.pop("allow_cropped_labels", None)  # a permission: the slices are the same
        if self.target_spacing:  # runs of centre-cropped slices (before issue 35) differ
            d["crop"] = "foreground"
        blob = json.dumps(d, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _tuples(d: dict[str, Any]) -> dict[str, Any]:
    """JSON and YAML give lists where the dataclass wants tuples."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}


PROTOCOLS: dict[str, Protocol] = {
    # The paper's numbers (section 2.3) for Spleen: 50 epochs, the authors' Spleen
    # augmentation (the defaults of Protocol and AugmentConfig).
    "paper-spleen": Protocol(),
    # ... and for Prostate: 100 epochs and the authors' Prostate augmentation.
    "paper-prostate": Protocol(epochs=100, augment=PROSTATE_AUGMENT),
    # Small and fast, for trying the tool on a laptop CPU: one pass per epoch.
    "quick": Protocol(
        epochs=10, batch_size=16, image_size=32, folds=3, seeds=(0,), score_fraction=0.2,
        base_channels=8, samples_per_epoch=0,
    ),
}
# "paper" is not a preset of its own: it picks one of the paper-* presets by the
# dataset's name (``paper_preset``); for other datasets it is PAPER_DEFAULT.
PAPER = "paper"
PAPER_DEFAULT = "paper-spleen"


def paper_preset(dataset_name: str) -> str:
    """The paper preset for a dataset name (``dataset.json`` name or folder name).

    A name containing "prostate" gets ``paper-prostate``, one containing "spleen"
    ``paper-spleen``; any other dataset gets ``PAPER_DEFAULT`` (``paper-spleen``: 50
    epochs and the augmentation that the authors' final code applies to every dataset).
    """
    name = dataset_name.casefold()
    for preset in ("paper-prostate", "paper-spleen"):
        if preset.removeprefix("paper-") in name:
            return preset
    return PAPER_DEFAULT


def dataset_name(data_dir: str | Path | None) -> str:
    """The name ``paper`` picks a preset by: dataset.json's ``name`` and the folder's name."""
    if data_dir is None:
        return ""
    names = [Path(data_dir).resolve().name]
    try:
        meta = json.loads((Path(data_dir) / "dataset.json").read_text())
        if isinstance(meta, dict) and isinstance(meta.get("name"), str):
            names.insert(0, meta["name"])
    except (OSError, ValueError):
        pass  # the dataset checks report a missing or broken dataset.json
    return " / ".join(names)


def resolve_preset(name: str, data_dir: str | Path | None) -> tuple[str, str | None]:
    """The preset ``name`` stands for on the dataset in ``data_dir``.

    The one resolution of ``paper`` that the command line and the Python API share:
    ``paper`` becomes :func:`paper_preset` of the dataset's name; other names stay.

    Returns:
        The preset's name, and a one-line note saying how ``paper`` was resolved (None
        for other names).
    """
    if name != PAPER:
        return name, None
    found = dataset_name(data_dir)
    preset = paper_preset(found)
    return preset, (f"protocol paper -> {preset} (dataset {found or 'unknown'!r}; other "
                    "datasets get paper-spleen)")


def protocol_names() -> list[str]:
    """The names ``--protocol`` accepts: the presets and ``paper``."""
    return sorted([*PROTOCOLS, PAPER])


def get_protocol(name: str, dataset_name: str | None = None, **overrides: Any) -> Protocol:
    """A named preset, with some fields replaced; ``paper`` needs ``dataset_name``."""
    if name == PAPER:
        name = paper_preset(dataset_name or "")
    try:
        base = PROTOCOLS[name]
    except KeyError:
        raise ConfigError(
            f"unknown protocol {name!r}; choose one of: {', '.join(protocol_names())}"
        ) from None
    return Protocol.from_dict({**base.to_dict(), **{k: v for k, v in overrides.items()}})
