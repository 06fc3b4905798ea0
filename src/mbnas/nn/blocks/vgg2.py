"""VGG block of the authors' VGG-only network class: k x k, then 3 x 3.

The authors' released configuration for Macro-NAS and Bilevel-NAS (``use_blocks=False``
in ``unet_setup_training.py``) builds ``NAS_WNet`` from ``VGGBlock2``
(``models/blocks_and_utils.py``): its first convolution has the searched kernel size
and strides, its second is always 3 x 3. mbnas's ``vgg`` block uses k x k for both (as
the first commit of their ``NAS_WNet`` did). It is a variant, not a family of the
paper: no space searches it unless told to (``mbnas search --space macro --block
vgg2``), so registering it changes no space. Pair it with the He initialisation
(protocol ``init: he``, :mod:`mbnas.nn.weight_init`) to train the authors' class.
"""

from __future__ import annotations

from torch import nn

from mbnas.nn.blocks.common import ConvBNAct
from mbnas.nn.blocks.registry import register_block


@register_block("vgg2", dims=(2, 3))
class VGGBlock2(nn.Sequential):
    """conv k x k (strided) -> BN -> LeakyReLU -> conv 3 x 3 -> BN -> LeakyReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 stride: int = 1, spatial_dims: int = 2) -> None:
        super().__init__(
            ConvBNAct(in_channels, out_channels, kernel_size, stride, spatial_dims),
            ConvBNAct(out_channels, out_channels, 3, spatial_dims=spatial_dims),
        )
