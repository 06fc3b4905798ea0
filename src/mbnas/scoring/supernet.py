"""The weight-sharing supernet: one module holding the weights of every network of a space.

Single-path one-shot NAS (SPOS, Guo et al. 2020) for the mixed-block spaces: a genotype
picks one path through the supernet, and that path *is* the network
:func:`~mbnas.spaces.mbnas.build.build_network` builds for it (same wiring, same layers,
same shapes), with inherited weights.

**What is shared.** The stem and the head are one each (every genotype has them). A node
is a :class:`~mbnas.spaces.mbnas.build.Cell`; the supernet holds one cell per *slot*::

    (node i, cell type, input level, block family, number of skip sources)

The input level and cell type fix the input and output channels; the number of skip
sources (0, 1, or 2 for ``mbnas-wide``'s "both") fixes the width of the concatenation the
cell reads, so each count has its own first convolution (slicing one wide convolution
would not give the builder's layer order inside Dense blocks). Which earlier node a skip
comes from does not matter: sources at one level have the same width, so the nearest and
the second-nearest candidate share the weights. **Kernels share by centre crop** (OFA's
elastic kernel, Cai et al. 2020, without the learned transform): a slot is built with the
largest kernel of the space, and kernel k uses the centre k x k (or 1 x k, k x 1 in the
Inception block's factorised branches) of every kernel-sized convolution. Weights that
do not depend on k (1x1 convolutions, transitions, BatchNorm) are the slot's own.
BatchNorm statistics are shared by the kernels of a slot and are meant to be
recalibrated on training batches (:meth:`SuperNet.recalibrate_bn`) before a genotype is
scored: its statistics during supernet training are those of a mixture of paths.

**Interface** (used by the scoring method ``supernet`` and by differentiable search)::

    net = SuperNet(space, in_channels, n_classes, base_channels=32, max_kernel=None)
    logits = net(x, genotype)                      # any genotype of the space
    logits = net(x, genotype, gates={(3, "b"): g}) # g: a 0-d tensor, 1.0 with a gradient
    state = net.subnet_state_dict(genotype)        # loads into build_network(genotype, ...)
    net.recalibrate_bn(genotype, batches)          # BN statistics of that path
    module = net.subnet(genotype)                  # nn.Module view: module(x) == net(x, g)

``gates`` maps searched decisions ``(node i, kind)`` (kind one of "a", "b", "c", "d",
as :class:`~mbnas.spaces.mbnas.definitions.Variable`) to 0-d tensors. The output of node
i is multiplied by every gate given for node i: with a straight-through Gumbel sample
(value 1.0, gradient of the soft probability) the forward pass is unchanged and each
chosen option's probability gets the gradient of the node's output. Kinds of a node
without a gate are not multiplied.

The supernet's genotypes are those of its space; ``max_kernel`` widens the kernels it
holds (Bilevel-NAS's second phase searches kernels 3, 5, 7 on macro's 3x3 topology).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import nn
from torch.func import functional_call

from mbnas.errors import GenotypeError
from mbnas.nn.blocks.vgg import VGGBlock
from mbnas.nn.layers import check_dims, conv
from mbnas.spaces.mbnas.build import Cell
from mbnas.spaces.mbnas.definitions import SearchSpace
from mbnas.spaces.mbnas.genotype import (
    BASE_CHANNELS,
    LEVEL_STEP,
    MAX_CHANNELS,
    Genotype,
    skips_needed,
)

__all__ = ["SubNet", "SuperNet", "largest_kernel", "slot_name"]

Gates = Mapping[tuple[int, str], torch.Tensor]


def slot_name(node: int, cell_type: str, in_level: int, block: str, sources: int) -> str:
    """The name of a slot's cell in the supernet's state dict: ``n3_down_l1_vgg_s0``."""
    return f"n{node}_{cell_type}_l{in_level}_{block}_s{sources}"


def _channels(level: int, base: int) -> int:
    return min(base * 2 ** level, MAX_CHANNELS)


def _crop(weight: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """The centre of ``weight`` with ``shape`` (only the spatial sizes may differ: k x k,
    1 x k, k x 1 in 2D, and their 3D counterparts)."""
    if weight.shape == shape:
        return weight
    index: list[slice] = []
    for have, want in zip(weight.shape, shape, strict=True):
        start = (have - want) // 2
        index.append(slice(start, start + want))
    return weight[tuple(index)]


def largest_kernel(space: SearchSpace, max_kernel: int | None = None) -> int:
    """The kernel a supernet of ``space`` holds: the largest the space uses, or
    ``max_kernel`` if that is larger."""
    kernels = space.options["c"] if "c" in space.searched else tuple(
        n.kernel for n in space.base.nodes)
    return max(max(kernels), max_kernel or 0)


class SuperNet(nn.Module):
    """Every network of ``space`` in one module; see the module docstring.

    Args:
        space: The search space (its searched kinds and options, its fixed base).
        in_channels: Image channels.
        n_classes: Output channels (logits), background included.
        base_channels: Channels after the stem (as ``build_network``'s).
        max_kernel: The largest kernel the slots hold; default: the largest the space uses.
        spatial_dims: 2 (images) or 3 (volumes), as ``build_network``'s; in 3D every
            block family of the space must support volumes.
    """

    def __init__(self, space: SearchSpace, in_channels: int, n_classes: int,
                 base_channels: int = BASE_CHANNELS, max_kernel: int | None = None,
                 spatial_dims: int = 2) -> None:
        super().__init__()
        self.space = space
        self.spatial_dims = dims = check_dims(spatial_dims)
        self.base_channels = base_channels
        self.in_channels, self.n_classes = in_channels, n_classes
        self.max_kernel = largest_kernel(space, max_kernel)
        self.stem = VGGBlock(in_channels, base_channels, 3, spatial_dims=dims)
        self.cells = nn.ModuleDict()
        # slot name -> (cell type, block, input channels, output channels)
        self._slot_cells: dict[str, tuple[str, str, int, int]] = {}
        for node, cell_type, in_level, block, sources in self._slots():
            c_in = _channels(in_level, base_channels) * (1 + sources)
            c_out = _channels(in_level + LEVEL_STEP[cell_type], base_channels)
            name = slot_name(node, cell_type, in_level, block, sources)
            self._slot_cells[name] = (cell_type, block, c_in, c_out)
            self.cells[name] = Cell(cell_type, c_in, c_out, block, self.max_kernel, dims)
        self.head = conv(dims)(base_channels, n_classes, 1)
        # Parameterless copies of a slot at a smaller kernel, run with cropped weights,
        # and the shapes of their tensors.
        self._templates: dict[tuple[str, int], tuple[nn.Module, dict[str, torch.Size]]] = {}

    # -- the slots ------------------------------------------------------------------------
    def _slots(self) -> Iterable[tuple[int, str, int, str, int]]:
        """Every slot a genotype of the space can use (a superset where cheap to say)."""
        space, n = self.space, self.space.n_nodes
        topology = bool({"a", "d"} & space.searched)
        base_levels = space.base.levels()
        for i, base_node in enumerate(space.base.nodes, start=1):
            blocks = space.options["b"] if "b" in space.searched else (base_node.block,)
            if topology:
                pairs = []
                for in_level in range(min(i - 1, space.max_depth) + 1):
                    for cell_type, step in LEVEL_STEP.items():
                        out = in_level + step
                        if "a" not in space.searched and cell_type != base_node.channels:
                            continue
                        if space.last_same and i == n and cell_type != "same" \
                                and "a" in space.searched:
                            continue
                        if 0 <= out <= min(space.max_depth, n - i):
                            pairs.append((in_level, cell_type))
                skips = space.options["d"] if "d" in space.searched else (base_node.skip,)
                if i < max(2, space.first_skip_node):
                    skips = (0,)
                counts = sorted({skips_needed(s) for s in skips})
            else:
                pairs = [(base_levels[i - 1], base_node.channels)]
                counts = [len(space.base.skip_sources(i))]
            for in_level, cell_type in pairs:
                for block in blocks:
                    for sources in counts:
                        yield i, cell_type, in_level, block, sources

    def _slot_of(self, genotype: Genotype, i: int) -> str:
        node = genotype.nodes[i - 1]
        name = slot_name(i, node.channels, genotype.levels()[i - 1], node.block,
                         len(genotype.skip_sources(i)))
        if name not in self.cells:
            raise GenotypeError(f"node {i} ({node.channels}, {node.block}) of genotype "
                                f"{genotype.key} is not a network of the supernet's space "
                                f"{self.space.name!r}")
        if node.kernel > self.max_kernel:
            raise GenotypeError(f"node {i} has kernel {node.kernel}; the supernet holds "
                                f"kernels up to {self.max_kernel}")
        return name

    def _template(self, name: str, kernel: int
                  ) -> tuple[nn.Module, dict[str, torch.Size]]:
        """The builder's cell of slot ``name`` at ``kernel`` without weights of its own
        (on the meta device), and the shapes of its tensors."""
        key = (name, kernel)
        if key not in self._templates:
            cell_type, block, c_in, c_out = self._slot_cells[name]
            with torch.device("meta"):
                template = Cell(cell_type, c_in, c_out, block, kernel, self.spatial_dims)
            shapes = {k: v.shape for k, v in template.state_dict(keep_vars=True).items()}
            self._templates[key] = template, shapes
        return self._templates[key]

    def _cell_tensors(self, name: str, kernel: int) -> tuple[nn.Module, dict[str, torch.Tensor]]:
        """The module to run slot ``name`` at ``kernel`` and the tensors it runs with
        (none: the slot's own, at the largest kernel)."""
        cell = self.cells[name]
        if kernel == self.max_kernel:
            return cell, {}
        template, shapes = self._template(name, kernel)
        tensors = {k: _crop(v, shapes[k])
                   for k, v in cell.state_dict(keep_vars=True).items()}
        return template, tensors

    # -- the interface --------------------------------------------------------------------
    def forward(self, x: torch.Tensor, genotype: Genotype, gates: Gates | None = None
                ) -> torch.Tensor:
        """The logits of ``genotype``'s network with the supernet's weights."""
        features: list[torch.Tensor | None] = [self.stem(x)]
        n = len(genotype.nodes)
        last_use = [i + 1 for i in range(n + 1)]
        for i in range(1, n + 1):
            for j in genotype.skip_sources(i):
                last_use[j] = max(last_use[j], i)
        for i in range(1, n + 1):
            name = self._slot_of(genotype, i)
            skips = [features[j] for j in genotype.skip_sources(i)]
            module, tensors = self._cell_tensors(name, genotype.nodes[i - 1].kernel)
            if tensors:
                module.train(self.training)
                out = functional_call(module, tensors, (features[i - 1], skips))
            else:
                out = module(features[i - 1], skips)
            for kind in "abcd":
                gate = gates.get((i, kind)) if gates else None
                if gate is not None:
                    out = out * gate
            features.append(out)
            for j in range(i):
                if last_use[j] <= i:
                    features[j] = None
        return self.head(features[-1])

    def subnet(self, genotype: Genotype) -> SubNet:
        """``genotype``'s path as an ``nn.Module`` (for the training loop and predictions)."""
        for i in range(1, len(genotype.nodes) + 1):
            self._slot_of(genotype, i)  # a genotype outside the space: refused now
        return SubNet(self, genotype)

    def subnet_state_dict(self, genotype: Genotype) -> dict[str, torch.Tensor]:
        """The state dict of ``build_network(genotype, ...)`` with the inherited weights."""
        state = {f"stem.{k}": v.detach().clone() for k, v in self.stem.state_dict().items()}
        for i in range(1, len(genotype.nodes) + 1):
            name = self._slot_of(genotype, i)
            module, tensors = self._cell_tensors(name, genotype.nodes[i - 1].kernel)
            if not tensors:
                tensors = module.state_dict()
            state.update({f"cells.{i - 1}.{k}": v.detach().clone() for k, v in tensors.items()})
        state.update({f"head.{k}": v.detach().clone() for k, v in self.head.state_dict().items()})
        return state

    def path_modules(self, genotype: Genotype) -> list[nn.Module]:
        """The supernet's modules ``genotype`` runs through (stem, its cells, head)."""
        return [self.stem, *(self.cells[self._slot_of(genotype, i)]
                             for i in range(1, len(genotype.nodes) + 1)), self.head]

    @torch.no_grad()
    def recalibrate_bn(self, genotype: Genotype, batches: Iterable[torch.Tensor]) -> int:
        """Recompute the BatchNorm statistics of ``genotype``'s path from ``batches``.

        The statistics are reset and then averaged over the batches (a cumulative
        average, as ``momentum=None``), in training mode without gradients; the module
        is left in eval mode. Returns the number of batches seen.
        """
        norms = [m for part in self.path_modules(genotype) for m in part.modules()
                 if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        for i in range(1, len(genotype.nodes) + 1):  # the templates run with these buffers
            kernel = genotype.nodes[i - 1].kernel
            if kernel != self.max_kernel:
                template, _ = self._template(self._slot_of(genotype, i), kernel)
                norms += [m for m in template.modules()
                          if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        momenta = [m.momentum for m in norms]
        for m in norms:
            if m.running_mean is not None and m.running_mean.device.type != "meta":
                m.reset_running_stats()
            m.momentum = None
        self.train()
        seen = 0
        try:
            for x in batches:
                self(x, genotype)
                seen += 1
        finally:
            for m, momentum in zip(norms, momenta, strict=True):
                m.momentum = momentum
            self.eval()
        return seen


class SubNet(nn.Module):
    """One genotype's path through a supernet, as a module: ``forward(x)``."""

    def __init__(self, supernet: SuperNet, genotype: Genotype) -> None:
        super().__init__()
        self.supernet = supernet
        self.genotype = genotype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.supernet(x, self.genotype)

