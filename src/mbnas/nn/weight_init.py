"""Weight initialisation of a built network: PyTorch's default, or He (the authors').

The authors' VGG-only class (``NAS_WNet``, used for Macro-NAS and Bilevel-NAS) ends with
``self.apply(InitWeights_He(1e-2))``: He-normal weights for the LeakyReLU slope 0.01 on
every (transposed) convolution, biases 0. Their mixed-block class has that line
commented out, so PyTorch's default ran there. The protocol's ``init`` picks one
(``mbnas.training.protocol.Protocol``); it changes scores, so it is part of the protocol key
(except the default, which keeps the keys of runs stored before it existed).
"""

from __future__ import annotations

from typing import TypeVar

from torch import nn

from mbnas.nn import INITS
from mbnas.nn.blocks.common import NEGATIVE_SLOPE

__all__ = ["INITS", "he_init", "initialise"]

M = TypeVar("M", bound=nn.Module)


def he_init(model: M, negative_slope: float = NEGATIVE_SLOPE) -> M:
    """He-normal (fan in, leaky ReLU) weights and zero biases on every convolution."""

    def init(module: nn.Module) -> None:
        if isinstance(module, nn.modules.conv._ConvNd):
            nn.init.kaiming_normal_(module.weight, a=negative_slope)
            if module.bias is not None:
                nn.init.zeros_(module.bias)

    return model.apply(init)  # children first, as the authors' self.apply


def initialise(model: M, init: str) -> M:
    """Apply the named initialisation (:data:`INITS`) to a freshly built network.

    Raises:
        ValueError: If ``init`` is not one of :data:`INITS`.
    """
    if init not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")
    return he_init(model) if init == "he" else model
