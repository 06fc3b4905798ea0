"""The search driver's side of ``--strategy dnas``: run the DNAS phase, hand over its
decoded networks.

Named by the strategy's registration (``one_shot``, :mod:`mbnas.strategies.dnas`) and
called by :func:`mbnas.commands.search.run.run_search` before its ask/tell loop. It joins
what the DNAS phase needs from the search: the space, the run context, the protocol, the
options, the search seed, the cost figures of the cost term (the run folder's cached
:class:`~mbnas.commands.search.cost.CostOracle`) and the ``--max-*`` limits applied to the
decoded networks.
"""

from __future__ import annotations

from typing import Any

from mbnas.commands.search.cost import CostOracle, limits_of
from mbnas.spaces.mbnas import get_space
from mbnas.spaces.mbnas.genotype import Genotype
from mbnas.strategies.limits import violations


def architecture_search(config: Any, folder: Any, ctx: Any, cost: Any = None
                        ) -> list[tuple[Genotype, float]]:
    """Train (or resume) the DNAS phase in ``<run>/dnas`` and decode it.

    Args:
        config: The search config (``strategy_options``: :class:`DnasOptions`).
        folder: The run folder (:class:`~mbnas.commands.common.runfolder.RunFolder`).
        ctx: The run context (data and folds).
        cost: The search's cost part (limits), or None.

    Returns:
        (genotype, log-probability) of the networks to train stand-alone, most probable
        first (the masked argmax first).
    """
    from mbnas.scoring.dnas_search import DnasSearch

    options = config.options
    space = get_space(config.space, config.max_depth, config.block)
    relative = None
    if options.cost_weight > 0:
        oracle = CostOracle(ctx.data.in_channels, ctx.data.n_classes,
                            config.protocol.base_channels, config.protocol.image_size,
                            cache=folder.costs)
        reference = oracle.figures(space.base, (options.cost,))[options.cost]

        def relative(genotype: Genotype) -> float:
            return oracle.figures(genotype, (options.cost,))[options.cost] / reference

    search = DnasSearch(space, ctx, config.protocol, options, config.seed,
                        folder.dnas, relative, config.device)
    from mbnas.costs.measure import cpu_threads
    from mbnas.training.cpus import default_threads

    # The run's threads, as a training run takes them: float sums of another thread count
    # differ, so a resumed search would not reproduce an uninterrupted one.
    with cpu_threads(config.threads if config.threads is not None else default_threads()):
        search.train()
    k = min(config.retrain_top, config.budget)
    limits = limits_of(config)
    if not limits:
        return search.decode(k)
    # Limits make the search cost-aware: it has its cost part (CostSearch.for_config).
    assert cost is not None
    figures = cost.figures

    def allowed(genotype: Genotype) -> bool:
        return not violations(figures(genotype), limits)

    return search.decode(k, allowed)
