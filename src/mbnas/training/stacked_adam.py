"""Adam over stacked parameters where only some members take a step.

The fused runs of several folds (``mbnas.training.fused``) train on training sets of
different sizes, so in some steps only some members have a batch. ``torch.optim.Adam``
over the stacked tensors would still move the others (their moments decay, their step
count grows). This Adam keeps a step count per member and updates only the members
named, with the arithmetic of ``torch.optim.Adam``'s single-tensor path, so each member
follows the updates it gets when trained alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch


class StackedAdam:
    """Adam (no amsgrad, L2 ``weight_decay`` as torch's) over tensors stacked along dim 0."""

    def __init__(self, params: Mapping[str, torch.Tensor], members: int, lr: float,
                 weight_decay: float = 0.0, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.params = dict(params)
        self.lr = lr
        self.weight_decay = weight_decay
        self.betas = betas
        self.eps = eps
        self.steps = [0] * members
        self.exp_avg = {k: torch.zeros_like(p) for k, p in self.params.items()}
        self.exp_avg_sq = {k: torch.zeros_like(p) for k, p in self.params.items()}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params.values():
            p.grad = None

    @torch.no_grad()
    def step(self, members: Sequence[int]) -> None:
        """Update the members named (their gradients are in ``p.grad[member]``)."""
        beta1, beta2 = self.betas
        for i in members:
            self.steps[i] += 1
        any_param = next(iter(self.params.values()))
        idx = torch.tensor(list(members), device=any_param.device)
        steps = torch.tensor([float(self.steps[i]) for i in members], dtype=torch.float64)
        step_size = (self.lr / (1 - beta1 ** steps))
        bc2_sqrt = (1 - beta2 ** steps) ** 0.5
        for k, p in self.params.items():
            if p.grad is None:
                continue
            shape = (len(members),) + (1,) * (p.dim() - 1)
            grad = p.grad.index_select(0, idx)
            param = p.index_select(0, idx)
            if self.weight_decay:
                grad = grad.add(param, alpha=self.weight_decay)
            m = self.exp_avg[k].index_select(0, idx).lerp_(grad, 1 - beta1)
            v = self.exp_avg_sq[k].index_select(0, idx).mul_(beta2).addcmul_(
                grad, grad, value=1 - beta2)
            denom = (v.sqrt() / bc2_sqrt.to(p.device, p.dtype).view(shape)).add_(self.eps)
            param = param - step_size.to(p.device, p.dtype).view(shape) * (m / denom)
            self.exp_avg[k].index_copy_(0, idx, m)
            self.exp_avg_sq[k].index_copy_(0, idx, v)
            p.index_copy_(0, idx, param)


__all__ = ["StackedAdam"]
