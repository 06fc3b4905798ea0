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
from typing import Any

from mbnas.data.normalise import CHOICES as NORMALISATIONS
from mbnas.engine.intensity import IntensityConfig
from mbnas.errors import ConfigError


@dataclass(frozen=True)
class AugmentConfig:
    """Random augmentation applied to image and label together, per training batch.

    Geometric parts form one affine transform per sample (one grid per batch): the image
    is resampled linearly, the label with nearest neighbour. Brightness scales the
    image intensities only.
    """

    enabled: bool = True
    scale: tuple[float, float] = (0.85, 1.15)
    rotate_degrees: float = 15.0
    shift_fraction: float = 0.1
    flip_probability: float = 0.5
    brightness: tuple[float, float] = (0.9, 1.1)
    probability: float = 1.0


@dataclass(frozen=True)
class Protocol:
    """How one architecture is trained and scored (paper, section 2.3).

    Attributes:
        epochs: Training epochs per run (paper: 100 Prostate, 50 Spleen).
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
        keep_weights: Keep each run's final weights (needed by ``mbnas predict``).
        intensity: Intensity augmentation for robustness to other sites (gamma,
            contrast, bias field, noise, blur; ``engine/intensity.py``); off by default.
        normalisation: Intensity normalisation per channel (or one for all):
            default, ct, zscore or percentile (``data/normalise.py``); empty: default.
        base_channels: Channels after the stem of a searched network (paper: 32);
            the quick protocol narrows the networks so a CPU can try the tool.
    """

    epochs: int = 50
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
    keep_weights: bool = False
    base_channels: int = 32
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    intensity: IntensityConfig = field(default_factory=IntensityConfig)
    normalisation: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problems = []
        if self.epochs < 1:
            problems.append(f"epochs must be >= 1, got {self.epochs}")
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
        if self.image_size % 16:
            problems.append(f"image_size must be a multiple of 16, got {self.image_size}")
        problems += [f"normalisation {n!r} is not one of {', '.join(NORMALISATIONS)}"
                     for n in self.normalisation if n not in NORMALISATIONS]
        if problems:
            raise ConfigError("invalid protocol: " + "; ".join(problems))
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))

    @property
    def score_epochs(self) -> int:
        """How many final epochs are averaged into the run score (at least one)."""
        return max(1, round(self.epochs * self.score_fraction))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Protocol:
        d = dict(d)
        reject_unknown(cls, d, "protocol")
        aug = d.pop("augment", None)
        augment = AugmentConfig(**_tuples(aug)) if isinstance(aug, dict) else AugmentConfig()
        intensity = IntensityConfig.from_dict(d.pop("intensity", None))
        return cls(augment=augment, intensity=intensity, **_tuples(d))

    @property
    def key(self) -> str:
        """Stable hash of the settings that change a run's result.

        ``folds`` is part of it (another fold count is another split); ``seeds`` is not:
        runs are stored per seed, so asking for more seeds re-uses the runs already
        trained for the others.
        """
        d = self.to_dict()
        d.pop("seeds")
        d.pop("val_batch_size")  # changes speed only
        if not self.intensity.enabled:  # off: the keys of runs stored before it existed
            d.pop("intensity")
        if not self.normalisation:
            d.pop("normalisation")
        blob = json.dumps(d, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def reject_unknown(cls: type, d: dict[str, Any], what: str) -> None:
    """Refuse keys that are not fields of the dataclass ``cls`` (a typo in a config file)."""
    unknown = sorted(set(d) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise ConfigError(f"unknown {what} settings: {', '.join(unknown)}")


def _tuples(d: dict[str, Any]) -> dict[str, Any]:
    """JSON and YAML give lists where the dataclass wants tuples."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}


PROTOCOLS: dict[str, Protocol] = {
    # The paper's numbers (section 2.3); epochs: 50 as for Spleen, use 100 for Prostate.
    "paper": Protocol(),
    # Small and fast, for trying the tool on a laptop CPU.
    "quick": Protocol(
        epochs=10, batch_size=16, image_size=32, folds=3, seeds=(0,), score_fraction=0.2,
        base_channels=8,
    ),
}


def get_protocol(name: str, **overrides: Any) -> Protocol:
    """A named preset, with some fields replaced."""
    try:
        base = PROTOCOLS[name]
    except KeyError:
        raise ConfigError(
            f"unknown protocol {name!r}; choose one of: {', '.join(PROTOCOLS)}"
        ) from None
    return Protocol.from_dict({**base.to_dict(), **{k: v for k, v in overrides.items()}})
