"""Layers and block families that networks are built from, with their initialisation."""

#: How a built network's weights are initialised (:mod:`mbnas.nn.weight_init`; the
#: protocol's ``init``): PyTorch's default, or He-normal as the authors' VGG-only class does.
INITS: tuple[str, ...] = ("default", "he")

#: The numbers of spatial dimensions a network may have: images (B, C, H, W) and volumes
#: (B, C, D, H, W). Here, not in :mod:`mbnas.nn.layers`, so registries read it without torch.
SPATIAL_DIMS: tuple[int, ...] = (2, 3)


def check_dims(spatial_dims: int) -> int:
    """Return ``spatial_dims`` if it is one of :data:`SPATIAL_DIMS`.

    Raises:
        ValueError: Otherwise (2 for images, 3 for volumes; 1D is not supported).
    """
    if isinstance(spatial_dims, bool) or spatial_dims not in SPATIAL_DIMS:
        raise ValueError(f"spatial_dims must be 2 (images) or 3 (volumes), got {spatial_dims!r}")
    return int(spatial_dims)
