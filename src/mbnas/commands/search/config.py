"""The settings of a search (:class:`SearchConfig`) and the strategy they build.

Kept apart from the search driver so that reading the settings (``mbnas search --help``
shows their defaults) imports no torch: what checking them needs (the spaces, the cost
settings) is imported when a config is made.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mbnas.data.sites import check_split
from mbnas.errors import ConfigError
from mbnas.scoring.registry import DEFAULT_SCORING, SCORINGS
from mbnas.spaces.registry import (
    DEFAULT_SPACE,
    MBNAS_LANGUAGE,
    RANDOM_START,
    space_definition,
)
from mbnas.strategies import (
    DEFAULT_STRATEGY,
    check_method,
    make_strategy,
    strategy_definition,
    strategy_options,
    upgrade_settings,
)
from mbnas.strategies.options import options_dict
from mbnas.training.executors import DEFAULT_EXECUTOR, check_executor
from mbnas.training.fields import check_fields
from mbnas.training.protocol import Protocol, reject_unknown

if TYPE_CHECKING:
    from mbnas.commands.search.cost import CostSearch

__all__ = ["SearchConfig", "build_strategy"]

#: Networks ``--scoring supernet`` trains stand-alone at the end (``--retrain-top``).
RETRAIN_TOP = 5


@dataclass(frozen=True)
class SearchConfig:
    """Every setting of a search; the resolved config is saved in the run folder."""

    data_dir: str
    space: str = DEFAULT_SPACE
    strategy: str = DEFAULT_STRATEGY
    budget: int = 150
    seed: int = 0
    start: str = RANDOM_START
    max_depth: int | None = None  # None: the space's own (3, the authors' cap)
    # Local/bilevel search: restart from a random network at a local optimum until the
    # budget is spent (the authors' code); off: stop there (the paper's description).
    restarts: bool = False
    # Macro/bilevel: the fixed block (vgg2: the authors' VGG-only class); None: vgg.
    block: str | None = None
    protocol: Protocol = field(default_factory=Protocol)
    executor: str = DEFAULT_EXECUTOR
    threads: int | None = None
    device: str = "auto"
    cache_dir: str | None = None
    ray: dict[str, Any] = field(default_factory=dict)
    split: str = "case"
    sites_file: str | None = None
    # Cost-aware search (mbnas.commands.search.cost): objectives and hard limits.
    objectives: tuple[str, ...] = ("dice",)
    max_params: float | None = None
    max_macs: float | None = None
    max_memory: float | None = None
    max_latency_ms: float | None = None
    # Limits of figures registered without a field above ({name: value}); saved in
    # config.yaml as ``max_<name>`` (mbnas.commands.search.cost.MORE_LIMITS).
    more_limits: dict[str, Any] = field(default_factory=dict)
    latency_device: str = "cpu"
    runs_per_device: int = 1
    fuse: bool = False
    race: bool = False
    # `--fidelity 0.25,1`: rungs of multi-fidelity probing (mbnas.scoring.fidelity); () off.
    fidelity: tuple[float, ...] = ()
    # `--scoring`: how each batch of networks gets its scores (mbnas.scoring.registry).
    scoring: str = DEFAULT_SCORING
    # `--retrain-top K`: --scoring supernet trains its best K networks stand-alone at the
    # end; --strategy dnas trains its K most probable decoded networks.
    retrain_top: int = RETRAIN_TOP
    # `--strategy-option KEY=VALUE`: the strategy's own settings (e.g. dnas's
    # mbnas.strategies.dnas.DnasOptions), checked by its registration; {}: defaults.
    strategy_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from mbnas.commands.search.cost import check_cost_settings
        from mbnas.scoring.fidelity import parse_rungs
        from mbnas.spaces.mbnas import get_space

        check_cost_settings(self)  # first: it turns limits such as "50M" into numbers
        object.__setattr__(self, "protocol", protocol_for_space(self.protocol, self.space))
        if self.protocol.volume is not None and self.fuse:
            raise ConfigError("--fuse trains 2D slices only; drop it for a 3D space")
        object.__setattr__(self, "fidelity", parse_rungs(self.fidelity))
        check_fields(self, "search")
        check_split(self.split)
        check_method(self.space, self.strategy)
        given = self.strategy_options or {}  # checked, and saved with typed values
        if not isinstance(given, dict):
            raise ConfigError(f"strategy_options must be a mapping of options, got {given!r}")
        object.__setattr__(self, "strategy_options", options_dict(
            strategy_options(self.strategy, given), given))
        if self.block is not None:
            get_space(self.space, self.max_depth, self.block)  # a fixed block where allowed
        if self.restarts:  # refused now by a strategy that does not restart
            build_strategy(self, np.random.default_rng(self.seed))
        check_executor(self.executor)
        SCORINGS.get(self.scoring)  # an unknown method lists the registered ones
        if strategy_definition(self.strategy).one_shot and self.scoring != DEFAULT_SCORING:
            raise ConfigError(f"the {self.strategy} strategy trains its decoded networks "
                              f"stand-alone (scoring {DEFAULT_SCORING}); drop --scoring "
                              f"{self.scoring}")
        if strategy_definition(self.strategy).one_shot:
            space = space_definition(self.space)
            if space.language != MBNAS_LANGUAGE or space.spatial_dims != 2:
                raise ConfigError(f"the {self.strategy} strategy searches the 2D spaces of "
                                  f"the MB-NAS genotypes (its supernet's); space "
                                  f"{self.space} is not one")
        if strategy_definition(self.strategy).one_shot and tuple(self.objectives) != ("dice",):
            raise ConfigError(f"{self.strategy} searches Dice; for a cost term use "
                              "--strategy-option cost_weight=W (and cost=params|macs|memory);"
                              " --max-* limits apply to the decoded networks")
        if self.budget < 1:
            raise ConfigError(f"budget must be at least 1, got {self.budget}")
        if self.retrain_top < 1:
            raise ConfigError(f"retrain_top must be at least 1, got {self.retrain_top}")
        if self.restarts and tuple(self.objectives) != ("dice",):
            raise ConfigError("restarts: Pareto local search (objectives beyond dice) does "
                              "not restart; drop --restarts or search Dice alone")

    def to_dict(self) -> dict[str, Any]:
        from mbnas.commands.search.cost import without_default_cost_settings

        d = dataclasses.asdict(self)
        d["protocol"] = self.protocol.to_dict()
        d["objectives"] = list(self.objectives)
        d["fidelity"] = list(self.fidelity)
        if not self.fidelity:
            del d["fidelity"]  # the configs of searches without it stay as they were
        for name in ("restarts", "block"):  # folders made before they existed match
            if not d[name]:
                d.pop(name)
        if self.scoring == DEFAULT_SCORING:
            del d["scoring"]
        if self.retrain_top == RETRAIN_TOP:  # configs from before it stay as they were
            del d["retrain_top"]
        if not self.strategy_options:
            del d["strategy_options"]
        return without_default_cost_settings(d)  # folders of Dice-only searches unchanged

    @property
    def options(self) -> Any:
        """The strategy's options object (None for a strategy that takes none)."""
        return strategy_options(self.strategy, self.strategy_options)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SearchConfig:
        """The config of a dict (``config.yaml``); settings of older versions are read as
        today's (``space: bilevel`` is the macro space with the bilevel strategy)."""
        from mbnas.commands.search.cost import with_more_limits

        d = with_more_limits(upgrade_settings(d), [f.name for f in dataclasses.fields(cls)])
        d.pop("data_fingerprint", None)  # written into config.yaml beside the settings
        reject_unknown(cls, d, "search")
        protocol = Protocol.from_dict(d.pop("protocol", {}) or {})
        return cls(protocol=protocol, **d)


def protocol_for_space(protocol: Protocol, space: str) -> Protocol:
    """The protocol with a (not yet planned) volume and per-case Dice for a 3D space; a
    volume given for a 2D space is refused, so a 3D run folder never resumes as 2D or the
    other way round."""
    from mbnas.spaces.registry import space_definition
    from mbnas.training.volume import VolumeConfig

    dims = getattr(space_definition(space), "spatial_dims", 2)
    if dims == 3 and protocol.intensity.enabled:
        raise ConfigError("intensity augmentation (--intensity-augment) is for 2D slices "
                          "only so far; drop it for a 3D space")
    if dims == 3:  # whole volumes: scored by per-case Dice (the 2D default is pooled)
        return dataclasses.replace(protocol, volume=protocol.volume or VolumeConfig(),
                                   dice="case")
    if dims == 2 and protocol.volume is not None:
        raise ConfigError(f"space {space!r} is 2D, but the protocol has 3D settings (volume: "
                          "--patch-size, --iterations, --memory-budget); use a 3D space "
                          "such as mbnas-3d, or drop them")
    return protocol


def build_strategy(config: SearchConfig, rng: np.random.Generator,
                   cost: CostSearch | None = None):
    """The strategy object for a config (not yet started); ``cost`` for objectives and
    limits beyond Dice."""
    from mbnas.spaces.mbnas import architecture_from_dict, get_space, kernel_space
    from mbnas.spaces.mbnas.definitions import with_block
    from mbnas.spaces.mbnas.presets import start_genotype

    start = None if config.start == RANDOM_START else start_genotype(config.start)
    space = get_space(config.space, config.max_depth, config.block)
    if start is not None and config.block is not None:
        start = with_block(start, config.block, config.space)  # the start's topology
    if start is not None and not space.contains(start):
        raise ConfigError(f"start {config.start!r} is not a network of the {config.space} space")
    if cost is not None:
        return cost.build(config, space, start, rng)
    return make_strategy(
        config.strategy, space=space, budget=config.budget, rng=rng,
        decode=architecture_from_dict, start=start, kernel_space_for=kernel_space,
        restarts=config.restarts, options=config.strategy_options,
    )
