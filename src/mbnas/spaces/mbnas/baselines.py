"""Hand-crafted baselines of the paper, usable wherever a genotype is.

* ``"smp-unet"``: segmentation_models_pytorch ``Unet("vgg13")``: 18.4 M parameters and
  about 300 MMAC for 1 input channel and 1 class at 32x32 (the paper's 18.4 M / 302).
* ``"smp-resunet"``: ``Unet("resnet50")``: 32.5 M parameters and about 165 MMAC at 32x32
  (the paper's 32.5 M / 166).

Both are built with ``encoder_weights=None``: nothing is downloaded, the encoders start
from random weights like the searched networks. Their inputs must be divisible by 32.
The ``smp-`` prefix tells them from the ``"unet"`` preset genotype (U-Net expressed in
the MB-NAS space, :mod:`mbnas.spaces.mbnas.presets`), a different network. The old spellings
``unet`` and ``resunet`` (:data:`OLD_BASELINE_NAMES`) are still read as baselines where
only a baseline can be meant (``--baselines``, stored results); results keep the old
name in their dict, so their keys and stores stay valid.

Architectures are stored as dicts with a ``"kind"`` field: ``{"kind": "baseline",
"name": "unet"}`` or a genotype's ``{"kind": "genotype", "nodes": [...]}``;
:func:`architecture_from_dict` reads either.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mbnas.errors import GenotypeError
from mbnas.spaces.languages import LANGUAGES, codec_of
from mbnas.spaces.mbnas.genotype import Genotype

if TYPE_CHECKING:
    from torch import nn

#: Baseline name -> (smp architecture, encoder).
BASELINES: dict[str, tuple[str, str]] = {
    "smp-unet": ("Unet", "vgg13"),
    "smp-resunet": ("Unet", "resnet50"),
}
#: Old baseline spelling -> name. The old one is what a baseline's dict (and key) holds.
OLD_BASELINE_NAMES: dict[str, str] = {"unet": "smp-unet", "resunet": "smp-resunet"}
_STORED_NAMES = {new: old for old, new in OLD_BASELINE_NAMES.items()}


def baseline_name(name: str) -> str:
    """The current name of a baseline given by its current or its old spelling."""
    return OLD_BASELINE_NAMES.get(name, name)


@dataclass(frozen=True)
class Baseline:
    """A named hand-crafted network (see :data:`BASELINES`)."""

    name: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", baseline_name(self.name))
        if self.name not in BASELINES:
            raise GenotypeError(
                f"unknown baseline {self.name!r}; baselines: {', '.join(BASELINES)}"
            )

    def build(self, in_channels: int, n_classes: int) -> nn.Module:
        """The network, with random weights (nothing is downloaded)."""
        import segmentation_models_pytorch as smp  # slow import: only when needed

        arch, encoder = BASELINES[self.name]
        return getattr(smp, arch)(
            encoder_name=encoder, encoder_weights=None, in_channels=in_channels,
            classes=n_classes,
        )

    def describe(self) -> str:
        arch, encoder = BASELINES[self.name]
        return f"baseline {self.name}: segmentation_models_pytorch {arch}({encoder!r})"

    def to_dict(self) -> dict[str, Any]:
        # the stored name: the same key as before the rename, so stored runs still match
        return {"kind": "baseline", "name": _STORED_NAMES.get(self.name, self.name)}

    @classmethod
    def from_dict(cls, d: Any) -> Baseline:
        if not isinstance(d, dict) or d.get("kind") != "baseline" or "name" not in d:
            raise GenotypeError(
                f"a baseline must be {{'kind': 'baseline', 'name': ...}}, got {d!r}"
            )
        return cls(d["name"])

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @property
    def key(self) -> str:
        """Stable hash: the first 16 hex characters of sha256(canonical JSON)."""
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()[:16]


def architecture_from_dict(d: Any) -> Any:
    """Read an architecture from its dict, dispatching on ``"kind"``.

    ``"baseline"`` is a :class:`Baseline`; any other kind is decoded by the codec of the
    architecture language registered for it (``"genotype"``: a :class:`Genotype`;
    :mod:`mbnas.spaces.languages`). A dict without ``"kind"`` but with ``"nodes"`` is
    read as a genotype.

    Raises:
        GenotypeError: If no language reads the dict's kind, or its codec refuses it.
    """
    if not isinstance(d, dict):
        raise GenotypeError(f"an architecture must be a mapping, got {type(d).__name__}")
    kind = d.get("kind", "genotype" if "nodes" in d else None)
    if kind == "genotype":
        return Genotype.from_dict(d)
    if kind == "baseline":
        return Baseline.from_dict(d)
    codec = codec_of(d)
    if codec is not None:
        return codec.decode(d)
    kinds = ", ".join(repr(c.kind) for _, c in LANGUAGES.items())
    raise GenotypeError(
        f"unknown architecture kind {kind!r}; expected {kinds} or 'baseline'"
    )
