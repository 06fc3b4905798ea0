"""Layers and block families that networks are built from, with their initialisation."""

#: How a built network's weights are initialised (:mod:`mbnas.nn.weight_init`; the
#: protocol's ``init``): PyTorch's default, or He-normal as the authors' VGG-only class does.
INITS: tuple[str, ...] = ("default", "he")
