"""Cost-aware search: the cost figures of a network, hard limits and the Pareto front.

The search (``mbnas.search``) never imports torch: it receives the cost figures through
a callable. This module computes them, each with its registered measuring function
(:data:`mbnas.costs.registry.COSTS`; the built-in ones):

* ``params``: parameters of the network built with the protocol's base channels;
* ``macs``: multiply-accumulates of one forward pass, batch 1, at the protocol's
  training size (``image_size`` x ``image_size``);
* ``memory``: bytes of activations a training step keeps for backward, per sample, at
  the training size (measured at batch 2 and halved, as in ``mbnas evaluate``);
* ``latency``: milliseconds, the median of repeated batch-1 forward passes at the
  training size after warm-up, the device synchronised, in fp32 (the precision
  ``mbnas predict`` uses), on ``latency_device``.

Figures are cached per architecture (and device, for latency) in ``RUN_DIR/costs.json``,
so a resumed search reads the latencies it decided with instead of timing them again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mbnas.commands.common.model_cost import cost_model
from mbnas.commands.common.search_runs import BASELINE_NAMES
from mbnas.costs.registry import COSTS, limit_figures, objective_names
from mbnas.errors import ConfigError
from mbnas.io import atomic_write_json
from mbnas.spaces.mbnas import BASELINES, Baseline
from mbnas.strategies import (
    LimitedSpace,
    cost_strategies,
    make_strategy,
    pareto_front,
    parse_amount,
    strategy_definition,
)
from mbnas.strategies.limits import format_figure
from mbnas.strategies.pareto import objective_vector
from mbnas.training.device import device_label, select_device

#: SearchConfig field holding the limits of figures registered without a field of their own.
MORE_LIMITS = "more_limits"


class CostOracle:
    """Cost figures of genotypes for one dataset and protocol, cached in a JSON file.

    Args:
        in_channels, n_classes: of the dataset.
        base_channels, image_size: of the protocol (the network built and the size the
            figures hold for).
        latency_device: where latency is timed ("cpu", "cuda", "auto").
        cache: JSON file of figures measured before (read, and rewritten when ``write``).
    """

    def __init__(self, in_channels: int, n_classes: int, base_channels: int,
                 image_size: int, latency_device: str = "cpu", cache: Path | None = None,
                 write: bool = True) -> None:
        self.in_channels = in_channels
        self.n_classes = n_classes
        self.base_channels = base_channels
        self.image_size = image_size
        self.latency_device = latency_device
        self.device_name = device_label(select_device(latency_device))
        self.cache = cache
        self.write = write
        self.known: dict[str, dict[str, float]] = {}
        if cache is not None and cache.is_file():
            try:
                self.known = json.loads(cache.read_text())
            except (OSError, ValueError):
                self.known = {}

    def _ident(self, key: str) -> str:
        return f"{key}/{self.in_channels}/{self.n_classes}/{self.base_channels}/{self.image_size}"

    def figures(self, genotype: Any, names: Sequence[str] | None = None) -> dict[str, float]:
        """The figures ``names`` of ``genotype`` (default: every objective figure),
        measured the first time only."""
        names = objective_names() if names is None else tuple(names)
        entry = self.known.setdefault(self._ident(genotype.key), {})
        slot = {n: (f"{n}@{self.device_name}" if COSTS.get(n).device else n) for n in names}
        missing = [n for n in names if slot[n] not in entry]
        if missing:
            entry.update({slot[n]: v for n, v in self._measure(genotype, missing).items()})
            if self.cache is not None and self.write:
                atomic_write_json(self.cache, self.known)
        return {n: float(entry[slot[n]]) for n in names}

    def _measure(self, genotype: Any, names: Sequence[str]) -> dict[str, float]:
        model = cost_model(genotype, self.in_channels, self.n_classes, self.base_channels)
        shape = (1, self.in_channels, self.image_size, self.image_size)
        device = select_device(self.latency_device)
        return {n: float(COSTS.get(n).measure(model, shape, device)) for n in names}


def check_cost_settings(config: Any) -> None:
    """Normalise and check a search config's objectives and limits (in place: the config
    is frozen, so through ``object.__setattr__``; limits may be given as "50M").

    Raises:
        ConfigError: an unknown objective, no Dice, a bad limit, or a strategy that
            takes no costs (bilevel search).
    """
    objectives = config.objectives
    if isinstance(objectives, str):
        objectives = [o.strip() for o in objectives.split(",") if o.strip()]
    objectives = tuple(str(o) for o in objectives)
    costs = objective_names()
    bad = [o for o in objectives if o not in ("dice", *costs)]
    if bad or "dice" not in objectives or len(set(objectives)) != len(objectives):
        raise ConfigError(f"objectives must be dice and any of {', '.join(costs)}, "
                          f"each once (e.g. dice,macs); got {','.join(objectives)}")
    object.__setattr__(config, "objectives", ("dice", *(o for o in objectives if o != "dice")))
    more = getattr(config, MORE_LIMITS) or {}
    if not isinstance(more, Mapping):
        raise ConfigError(f"{MORE_LIMITS} must be a mapping of cost limits, got {more!r}")
    more = dict(more)
    figures = limit_figures()
    unknown = [k for k in more if k not in figures or _has_field(config, figures[k].limit_field)]
    if unknown:
        raise ConfigError(f"unknown cost limit(s) {', '.join(map(str, unknown))}; limits: "
                          f"{', '.join(f.flag for f in figures.values())}")
    for name, figure in figures.items():
        what = figure.flag.lstrip("-")
        if _has_field(config, figure.limit_field):
            value = getattr(config, figure.limit_field)
            if value is not None:
                object.__setattr__(config, figure.limit_field, parse_amount(value, what))
        elif more.get(name) is not None:
            more[name] = parse_amount(more[name], what)
    object.__setattr__(config, MORE_LIMITS, {k: v for k, v in more.items() if v is not None})
    if (len(config.objectives) > 1 or limits_of(config)) and \
            not strategy_definition(config.strategy).costs:
        takers = ", ".join(cost_strategies())
        raise ConfigError(f"cost objectives and limits are not supported with the "
                          f"{config.strategy} strategy; use --strategy {takers}")


def without_default_cost_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """A config dict without the cost settings left at their defaults, so the config of a
    search for Dice alone is the same as before cost-aware search existed."""
    out = dict(settings)
    # a figure registered without a field of its own: its limit saved as ``max_<name>``
    more = out.pop(MORE_LIMITS, None) or {}
    out.update({limit_figures()[n].limit_field: v for n, v in more.items()})
    defaults = {"objectives": ["dice"], "latency_device": "cpu",
                **{f.limit_field: None for f in limit_figures().values()}}
    return {k: v for k, v in out.items() if k not in defaults or v != defaults[k]}


def with_more_limits(settings: dict[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    """Settings read from ``config.yaml`` with the ``max_<name>`` keys of figures that have
    no config field of their own gathered into :data:`MORE_LIMITS` (the reverse of
    :func:`without_default_cost_settings`)."""
    out = dict(settings)
    more = dict(out.pop(MORE_LIMITS, None) or {})
    for name, figure in limit_figures().items():
        if figure.limit_field not in fields and figure.limit_field in out:
            more[name] = out.pop(figure.limit_field)
    if more:
        out[MORE_LIMITS] = more
    return out


def limits_of(config: Any) -> dict[str, float]:
    """{figure: largest allowed value} of the limits a search config sets."""
    more = getattr(config, MORE_LIMITS) or {}
    out = {}
    for name, figure in limit_figures().items():
        value = getattr(config, figure.limit_field) if _has_field(config, figure.limit_field) \
            else more.get(name)
        if value is not None:
            out[name] = float(value)
    return out


def _has_field(config: Any, name: str | None) -> bool:
    return name is not None and name != MORE_LIMITS and hasattr(config, name)


class CostSearch:
    """What a cost-aware search adds to the driver: figures, limits, archive, log fields.

    Built only when the config names a cost objective or a limit, so a search for Dice
    alone runs exactly as without this module.
    """

    def __init__(self, config: Any, costs: Path, data: Any) -> None:
        self.costs = tuple(o for o in config.objectives if o != "dice")
        self.limits = limits_of(config)
        self.names = tuple(n for n in COSTS.names() if n in self.costs or n in self.limits)
        self.oracle = CostOracle(data.in_channels, data.n_classes,
                                 config.protocol.base_channels, config.protocol.image_size,
                                 config.latency_device, costs)
        self.space: LimitedSpace | None = None

    @classmethod
    def for_config(cls, config: Any, costs: Path, data: Any) -> CostSearch | None:
        """The cost-aware part of a search (None for Dice alone); ``costs``: the run
        folder's cache of figures."""
        if tuple(config.objectives) == ("dice",) and not limits_of(config):
            return None
        return cls(config, costs, data)

    def figures(self, genotype: Any) -> dict[str, float]:
        return self.oracle.figures(genotype, self.names)

    def build(self, config: Any, space: Any, start: Any | None, rng: Any) -> Any:
        """The strategy over ``space`` restricted to the limits; a start over them is
        refused with its figures."""
        strategy: Any = None
        space = LimitedSpace(space, self.figures, self.limits,
                             clock=lambda: strategy.n_evaluated if strategy else 0)
        self.space = space
        if start is not None and space.reasons(start):
            figures = self.figures(start)
            shown = ", ".join(f"{n} {format_figure(n, figures[n])}" for n in self.names)
            raise ConfigError(f"start {config.start!r} is over the limits "
                              f"({'; '.join(space.reasons(start))}); its figures at the training "
                              f"size {self.oracle.image_size}x{self.oracle.image_size}: {shown}. "
                              "Raise the limits or start from 'random'")
        # Local search with cost objectives is Pareto local search; random search keeps
        # the front of what it sampled (``front``).
        strategy = make_strategy(config.strategy, space=space, budget=config.budget,
                                 rng=rng, decode=_decode, start=start,
                                 figures=self.figures, costs=self.costs,
                                 restarts=config.restarts, options=config.strategy_options)
        return strategy

    def check_batch(self, batch: Sequence[Any]) -> None:
        """Last guard before training: nothing over a limit reaches the executor."""
        for genotype in batch:
            reasons = self.space.reasons(genotype) if self.space is not None else []
            if reasons:
                raise RuntimeError(f"{genotype.key} is over the limits ({reasons}) but was "
                                   "asked for: a bug in the search")

    # Checkpoint and outputs ------------------------------------------------------------

    def _space(self) -> LimitedSpace:
        if self.space is None:
            raise RuntimeError("the limited space is made by build(), before the search")
        return self.space

    def state_dict(self, strategy: Any) -> dict[str, Any]:
        """The strategy's state with the skipped architectures added."""
        return {**strategy.state_dict(), "limits": self._space().state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._space().load_state_dict(state.get("limits") or {"limits": self.limits})

    def front(self, strategy: Any) -> list[str]:
        """Keys of the non-dominated evaluated networks (the archive of Pareto search)."""
        points = [(e.key, objective_vector(e.score, self.figures(e.genotype), self.costs))
                  for e in strategy.history if e.score is not None]
        return pareto_front(points)

    def annotate_log(self, strategy: Any, entries: list[dict[str, Any]]
                     ) -> list[dict[str, Any]]:
        """Log entries with each network's figures, the archive marked, and one line per
        architecture skipped for a limit (placed after the evaluations before it)."""
        front = set(self.front(strategy)) if self.costs else set()
        history = strategy.history
        skips = sorted(self._space().skipped, key=lambda s: s["after"] or 0)
        out: list[dict[str, Any]] = []
        for i, (evaluation, entry) in enumerate(zip(history, entries, strict=True)):
            out += [dict(s) for s in skips if (s["after"] or 0) == i]
            entry = {**entry, "costs": self.figures(evaluation.genotype)}
            if self.costs:
                entry["archive"] = evaluation.key in front
            out.append(entry)
        out += [dict(s) for s in skips if (s["after"] or 0) >= len(history)]
        return out

    def write_front(self, path: Path, strategy: Any, protocol_key: str) -> None:
        """``front.json`` (``path``): the archive (genotype, Dice, figures) for report and
        evaluate."""
        if not self.costs:
            return
        by_key = {e.key: e for e in strategy.history}
        # Every figure of the members and the baselines (few networks, measured once and
        # cached): the report's table and plot read them from here, without a dataset.
        members = [{"genotype": by_key[k].genotype.to_dict(), "arch_key": k,
                    "score": by_key[k].score,
                    "figures": self.oracle.figures(by_key[k].genotype)}
                   for k in self.front(strategy)]
        members.sort(key=lambda m: -m["score"])
        baselines = {BASELINE_NAMES.get(b, b): self.oracle.figures(Baseline(b))
                     for b in BASELINES}
        atomic_write_json(path, {
            "objectives": ["dice", *self.costs], "limits": self.limits,
            "image_size": self.oracle.image_size, "base_channels": self.oracle.base_channels,
            "latency_device": self.oracle.device_name, "protocol_key": protocol_key,
            "members": members, "baselines": baselines})


def _decode(d: dict[str, Any]) -> Any:
    from mbnas.spaces.mbnas import architecture_from_dict

    return architecture_from_dict(d)
