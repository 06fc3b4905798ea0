"""The architecture parameters of differentiable NAS: one categorical distribution per
searched variable of a space, sampled node by node so that every network is valid.

A space's variables (``a`` level, ``b`` block, ``c`` kernel, ``d`` skip of each node; only
the searched ones, :meth:`~mbnas.spaces.mbnas.definitions.SearchSpace.variables`) each get
a vector of logits, one per option. A network is drawn node by node in the space's own
order (a, b, c, d of node 1, then node 2, ...). Before each draw the options that cannot
lead to a valid genotype are masked: the level never below 0 nor deeper than the space's
``max_depth``, and only levels from which node ``n`` can still get back to full resolution
(the space's DP, :class:`~mbnas.spaces.mbnas.count.TopologyCounter`, counts the valid
completions: an option with none is masked); a skip only where its source nodes exist.
``b`` and ``c`` never affect validity and are never masked. So the distribution is over
exactly the valid genotypes of the space, whatever the logits, and no sample is ever
rejected or repaired.

**Sampling (GDAS, Dong and Yang 2019).** Each variable's option is the argmax of its
masked logits plus Gumbel noise (a sample of the masked categorical distribution); its
*gate* is the straight-through weight ``1 + y_k - stop_gradient(y_k)`` of the chosen
option ``k``, with ``y = softmax((logits + gumbel) / tau)``: exactly 1 in the forward pass,
the gradient of the relaxed sample in the backward pass. The supernet multiplies the
chosen op's output by its gate, so only the sampled network is computed (one path, as in
single-path supernet training), and the loss still reaches every logit of the variable.
A variable with one valid option gets a gate without gradient.

**Decoding.** :meth:`ArchitectureDistribution.argmax` takes, node by node, the most
probable valid option of each variable (the masked argmax); :meth:`top_k` finds the most
probable distinct networks under the same sequential distribution (a beam search over
the nodes, keeping ``beam`` partial networks; exact when ``beam`` is at least the number
of valid genotypes). Randomness comes only from the ``torch.Generator`` passed in.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from mbnas.spaces.mbnas.definitions import SearchSpace, Variable
from mbnas.spaces.mbnas.genotype import FIELDS, Genotype, Node

__all__ = ["ArchitectureDistribution", "SampledArchitecture"]

# pick(variable, valid option indices) -> chosen index; the walk's only decision.
Pick = Callable[[Variable, Sequence[int]], int]


@dataclass
class SampledArchitecture:
    """One draw: the network, a gate per searched variable, and its log-probability.

    Attributes:
        genotype: The valid genotype drawn.
        gates: ``(node, kind)`` of each searched variable -> 0-d tensor (value 1,
            straight-through gradient): the supernet's ``gates`` argument
            (:class:`~mbnas.scoring.supernet.SuperNet`).
        log_prob: Sum over variables of the chosen option's masked log-probability.
        entropy: Sum over variables of the masked distribution's entropy at that point.
    """

    genotype: Genotype
    gates: dict[tuple[int, str], torch.Tensor] = field(default_factory=dict)
    log_prob: torch.Tensor | None = None
    entropy: torch.Tensor | None = None


class ArchitectureDistribution(nn.Module):
    """One categorical distribution per searched variable of ``space`` (see module doc).

    Args:
        space: The search space (its variables, options, base and DP).
    """

    def __init__(self, space: SearchSpace) -> None:
        super().__init__()
        self.space = space
        self._variables = {v.name: v for v in space.variables()}
        # Zeros: every valid option of a variable equally likely at the start.
        self.logits = nn.ParameterDict({
            name: nn.Parameter(torch.zeros(len(v.options))) for name, v in self._variables.items()
        })

    # -- the walk over the nodes -------------------------------------------------------
    def _walk(self, pick: Pick) -> Genotype:
        """The genotype built by choosing every searched variable with ``pick``, node by
        node, among the options that keep the genotype completable (module doc)."""
        space, counter = self.space, self.space.counter
        state = counter.start()
        nodes = []
        for i, base in enumerate(space.base.nodes, start=1):
            choices = [c for c in counter.choices(i, state)
                       if counter.completions(i + 1, c[2]) > 0]
            values: dict[str, Any] = {k: getattr(base, f) for k, f in FIELDS.items()}
            for kind in ("a", "b", "c", "d"):
                var = self._variables.get(f"{kind}{i}")
                if kind == "a":
                    levels = [c[2][0] for c in choices]
                    if var is not None:
                        level = var.options[pick(var, [j for j, o in enumerate(var.options)
                                                       if o in levels])]
                        choices = [c for c in choices if c[2][0] == level]
                    values["a"] = choices[0][0]
                elif kind == "d":
                    if var is not None:
                        allowed = {c[1] for c in choices}
                        values["d"] = var.options[pick(var, [j for j, o in enumerate(var.options)
                                                             if o in allowed])]
                    choices = [c for c in choices if c[1] == values["d"]]
                elif var is not None:
                    values[kind] = var.options[pick(var, range(len(var.options)))]
            nodes.append(Node(values["a"], values["b"], values["c"], values["d"]))
            state = choices[0][2]
        return Genotype(tuple(nodes))

    def _masked(self, var: Variable, valid: Sequence[int]) -> torch.Tensor:
        logits = self.logits[var.name]
        mask = torch.zeros(len(var.options), dtype=torch.bool, device=logits.device)
        mask[list(valid)] = True
        return logits.masked_fill(~mask, -math.inf)

    # -- sampling and decoding -----------------------------------------------------------
    def sample(self, generator: torch.Generator, tau: float) -> SampledArchitecture:
        """A network drawn from the distribution, with straight-through gates (GDAS).

        Args:
            generator: The only source of randomness (a CPU generator).
            tau: The Gumbel-softmax temperature (lower: relaxed samples closer to one-hot).
        """
        if not tau > 0:
            raise ValueError(f"the temperature must be > 0, got {tau}")
        gates: dict[tuple[int, str], torch.Tensor] = {}
        log_probs: list[torch.Tensor] = []
        entropies: list[torch.Tensor] = []

        def pick(var: Variable, valid: Sequence[int]) -> int:
            masked = self._masked(var, valid)
            u = torch.rand(len(var.options), generator=generator).clamp_(1e-10, 1.0 - 1e-7)
            gumbel = -torch.log(-torch.log(u)).to(masked.device)
            soft = torch.softmax((masked + gumbel) / tau, dim=0)
            k = int(torch.argmax(soft))
            gates[(var.node, var.kind)] = 1.0 + soft[k] - soft[k].detach()
            logp = torch.log_softmax(masked, dim=0)
            log_probs.append(logp[k])
            p = logp.exp()
            entropies.append(-(p * torch.where(p > 0, logp, torch.zeros_like(logp))).sum())
            return k

        genotype = self._walk(pick)
        zero = self.logits[next(iter(self.logits))].new_zeros(()) if self.logits else None
        return SampledArchitecture(genotype, gates,
                                   torch.stack(log_probs).sum() if log_probs else zero,
                                   torch.stack(entropies).sum() if entropies else zero)

    @torch.no_grad()
    def argmax(self) -> Genotype:
        """The most probable option of every variable, node by node, among the valid ones."""
        return self._walk(lambda var, valid: max(valid, key=lambda j: (
            float(self.logits[var.name][j]), -j)))

    @torch.no_grad()
    def log_prob(self, genotype: Genotype) -> float:
        """The log-probability of ``genotype`` under the sequential masked distribution
        (``-inf`` when it is not a network of the space)."""
        if not self.space.contains(genotype):
            return -math.inf
        total = 0.0

        def pick(var: Variable, valid: Sequence[int]) -> int:
            nonlocal total
            k = var.options.index(self.space.value(genotype, var))
            total += float(torch.log_softmax(self._masked(var, valid), dim=0)[k])
            return k

        self._walk(pick)
        return total

    @torch.no_grad()
    def top_k(self, k: int, beam: int = 64) -> list[tuple[Genotype, float]]:
        """The ``k`` most probable distinct networks with their log-probabilities, best
        first, by a beam search of width ``max(beam, k)`` over the nodes (module doc)."""
        logp = {name: _log_softmax_np(t.detach().cpu().numpy()) for name, t in
                self.logits.items()}
        width = max(beam, k)
        counter = self.space.counter
        partials: list[tuple[float, tuple[Node, ...], Any]] = [(0.0, (), counter.start())]
        for i, base in enumerate(self.space.base.nodes, start=1):
            grown: list[tuple[float, tuple[Node, ...], Any]] = []
            for score, nodes, state in partials:
                for extra, node, nxt in self._node_options(i, base, state, logp):
                    grown.append((score + extra, (*nodes, node), nxt))
            partials = heapq.nlargest(width, grown, key=lambda t: t[0])
        return [(Genotype(nodes), score) for score, nodes, _ in partials[:k]]

    def _node_options(self, i: int, base: Node, state: Any, logp: Mapping[str, np.ndarray]
                      ) -> Iterator[tuple[float, Node, Any]]:
        """Every valid choice of node ``i`` from ``state``: (log-prob, node, next state)."""
        counter = self.space.counter
        choices = [c for c in counter.choices(i, state) if counter.completions(i + 1, c[2]) > 0]

        def options(kind: str, allowed: Sequence[Any]) -> list[tuple[float, Any]]:
            var = self._variables.get(f"{kind}{i}")
            if var is None:
                return [(0.0, allowed[0])]
            valid = [j for j, o in enumerate(var.options) if o in allowed]
            lp = _log_softmax_np(np.where(np.isin(np.arange(len(var.options)), valid),
                                          logp[var.name], -np.inf))
            return [(float(lp[j]), var.options[j]) for j in valid]

        for lp_a, level in options("a", sorted({c[2][0] for c in choices})):
            at_level = [c for c in choices if c[2][0] == level]
            cell = at_level[0][0]
            for lp_b, block in options("b", [base.block] if "b" not in self.space.searched
                                       else list(self.space.options["b"])):
                for lp_c, kernel in options("c", [base.kernel] if "c" not in self.space.searched
                                            else list(self.space.options["c"])):
                    for lp_d, skip in options("d", sorted({c[1] for c in at_level})):
                        yield (lp_a + lp_b + lp_c + lp_d, Node(cell, block, kernel, skip),
                               at_level[0][2])

    # -- reading -------------------------------------------------------------------------
    @torch.no_grad()
    def probabilities(self) -> dict[str, list[float]]:
        """Variable name -> softmax of its logits over all its options (unmasked), JSON."""
        return {name: torch.softmax(t.detach().float().cpu(), 0).tolist()
                for name, t in self.logits.items()}

    def option_names(self) -> dict[str, list[Any]]:
        """Variable name -> its options, in logit order (``a``: levels)."""
        return {name: list(v.options) for name, v in self._variables.items()}


def _log_softmax_np(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    top = np.max(x[np.isfinite(x)]) if np.isfinite(x).any() else 0.0
    with np.errstate(divide="ignore"):
        return x - top - np.log(np.sum(np.exp(x - top)))
