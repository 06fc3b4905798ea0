"""The augmentation settings of a training protocol: the authors' geometric and
brightness augmentation (:class:`AugmentConfig`, with their Prostate variant) and the
intensity transforms for robustness to other sites (:class:`IntensityConfig`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from mbnas.errors import ConfigError
from mbnas.training.fields import reject_unknown


@dataclass(frozen=True)
class IntensityConfig:
    """Probabilities (per sample) and ranges of the intensity transforms.

    Attributes:
        gamma_probability: Chance of a gamma curve, exponent drawn from ``gamma``.
        gamma: Range of the gamma exponent.
        contrast_probability: Chance of scaling the deviations from the sample's mean.
        contrast: Range of that factor.
        bias_probability: Chance of a smooth multiplicative bias field.
        bias_strength: The field is ``exp(s * f)``, ``f`` smooth with values in [-1, 1]
            and ``s`` drawn from [0, bias_strength].
        noise_probability: Chance of additive Gaussian noise.
        noise_std: Range of its standard deviation (in normalised units).
        blur_probability: Chance of a Gaussian blur.
        blur_sigma: Range of its sigma, in pixels.
    """

    gamma_probability: float = 0.0
    gamma: tuple[float, float] = (0.7, 1.5)
    contrast_probability: float = 0.0
    contrast: tuple[float, float] = (0.65, 1.5)
    bias_probability: float = 0.0
    bias_strength: float = 0.5
    noise_probability: float = 0.0
    noise_std: tuple[float, float] = (0.0, 0.1)
    blur_probability: float = 0.0
    blur_sigma: tuple[float, float] = (0.5, 1.0)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name.endswith("probability") and not 0.0 <= v <= 1.0:
                raise ConfigError(f"intensity.{f.name} must be in [0, 1], got {v}")
            if isinstance(v, (list, tuple)):
                if len(v) != 2 or not 0.0 <= v[0] <= v[1]:
                    raise ConfigError(f"intensity.{f.name} must be a range [low, high] with "
                                      f"0 <= low <= high, got {v}")
                object.__setattr__(self, f.name, (float(v[0]), float(v[1])))

    @property
    def enabled(self) -> bool:
        return any(getattr(self, f.name) > 0 for f in dataclasses.fields(self)
                   if f.name.endswith("probability"))

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> IntensityConfig:
        d = dict(d or {})
        reject_unknown(cls, d, "intensity")
        return cls(**d)


#: nnU-Net-like probabilities and ranges: the robustness setting measured in benchmarks/.
ROBUST = IntensityConfig(gamma_probability=0.3, contrast_probability=0.15,
                         bias_probability=0.3, noise_probability=0.1, blur_probability=0.2)


@dataclass(frozen=True)
class AugmentConfig:
    """Random augmentation of image and label together, per training sample (``augment.py``).

    As in the authors' data loader (``py_src/unet/datasets.py``), every transform is drawn
    on its own for every sample: it is applied with its probability ``*_p`` and then its
    amount is drawn. The defaults are the authors' Spleen settings (their
    ``ImageDataset``, which their final code uses for every dataset).

    Attributes:
        enabled: Augment at all.
        scale_p: Probability of scaling.
        scale: Range of the field of view sampled, as a fraction of the image: the
            authors crop a square of this relative size (< 1 zooms in, > 1 zooms out)
            and resize it back.
        scale_sd: The crop size is drawn from a normal of mean 1 and this standard
            deviation, then clipped to ``scale``.
        shift_p: Probability of shifting.
        shift_fraction: Largest shift per axis as a fraction of the image size
            (30 px at 128 px: 0.234).
        rotate_p: Probability of rotating.
        rotate_degrees: Largest rotation angle; drawn uniformly in +-this.
        flip_p: Probability of a left-right flip.
        brightness_p: Probability of adjusting brightness.
        brightness_channel_p: Once adjusting, each channel is scaled with this
            probability (the authors: 0.5).
        brightness: Range of the intensity factor.
        brightness_sd: The factor is drawn from a normal of mean 1 and this standard
            deviation, then clipped to ``brightness``.
    """

    enabled: bool = True
    scale_p: float = 0.3
    scale: tuple[float, float] = (0.8, 1.3)
    scale_sd: float = 0.1
    shift_p: float = 0.2
    shift_fraction: float = 30 / 128
    rotate_p: float = 0.2
    rotate_degrees: float = 10.0
    flip_p: float = 0.4
    brightness_p: float = 0.3
    brightness_channel_p: float = 0.5
    brightness: tuple[float, float] = (0.8, 1.3)
    brightness_sd: float = 0.2

    def __post_init__(self) -> None:
        problems = [f"{name} must be in [0, 1], got {getattr(self, name)}"
                    for name in ("scale_p", "shift_p", "rotate_p", "flip_p", "brightness_p",
                                 "brightness_channel_p")
                    if not 0 <= getattr(self, name) <= 1]
        for name in ("scale", "brightness"):
            low, high = getattr(self, name)
            if not 0 < low <= high:
                problems.append(f"{name} must be a range 0 < low <= high, got {(low, high)}")
        if problems:
            raise ConfigError("invalid augmentation: " + "; ".join(problems))


# The authors' Prostate augmentation (``DoubleImageDataset`` in datasets.py, used for the
# two-channel Prostate data): stronger, and no flip.
PROSTATE_AUGMENT = AugmentConfig(
    scale_p=0.3, scale=(0.7, 1.3), scale_sd=0.1, shift_p=0.3, shift_fraction=40 / 128,
    rotate_p=0.3, rotate_degrees=10.0, flip_p=0.0, brightness_p=0.3,
    brightness_channel_p=0.5, brightness=(0.5, 1.5), brightness_sd=0.5,
)
