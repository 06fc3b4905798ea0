"""Records of a search: evaluations, batches, and their JSON forms (random state included)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mbnas.errors import ConfigError

Decode = Callable[[dict[str, Any]], Any]

# Bit generators a checkpoint may name (never getattr an arbitrary name from a file).
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


@dataclass(frozen=True)
class Evaluation:
    """One architecture evaluated by the search (one line of ``search_log.jsonl``).

    Attributes:
        index: position in the history, from 0; equals the number of evaluations before it.
        genotype: the architecture evaluated.
        key: the genotype's stable key.
        score: the objective's score, or None when the evaluation failed.
        phase: "local", "random", or for bilevel search "topology" / "kernel".
        variable: name of the variable probed (local search), None for a start or a sample.
        accepted: local search: the search moved to this genotype (or it is the start and
            its evaluation succeeded); random search: it became the new best.
        batch: number of the batch it was asked in, from 0.
        pass_index: local search: 0 for the start, then 1, 2, ... for the passes over
            the variables (counted on across restarts); None for random search.
        restart: local search with restarts: 0 until the first local optimum, then the
            number of the restart it belongs to (1, 2, ...); written only when not 0.
    """

    index: int
    genotype: Any
    key: str
    score: float | None
    phase: str
    variable: str | None
    accepted: bool
    batch: int
    pass_index: int | None
    restart: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the genotype as its ``to_dict()``)."""
        return _with_restart(self.restart, {
            "index": self.index,
            "key": self.key,
            "genotype": self.genotype.to_dict(),
            "score": self.score,
            "phase": self.phase,
            "variable": self.variable,
            "accepted": self.accepted,
            "batch": self.batch,
            "pass_index": self.pass_index,
        })

    @classmethod
    def from_dict(cls, data: dict[str, Any], decode: Decode) -> Evaluation:
        """Inverse of ``to_dict``; ``decode`` rebuilds the genotype."""
        genotype = decode(data["genotype"])
        if genotype.key != data["key"]:
            raise ConfigError(
                f"search checkpoint: evaluation {data['index']} has key {data['key']} but its "
                f"genotype decodes to key {genotype.key}; the genotype format has changed"
            )
        score = data["score"]
        return cls(
            index=int(data["index"]),
            genotype=genotype,
            key=str(data["key"]),
            score=None if score is None else float(score),
            phase=str(data["phase"]),
            variable=data["variable"],
            accepted=bool(data["accepted"]),
            batch=int(data["batch"]),
            pass_index=data["pass_index"],
            restart=int(data.get("restart", 0)),
        )


@dataclass(frozen=True)
class Batch:
    """Genotypes asked together: their evaluations may run in parallel."""

    genotypes: tuple[Any, ...]
    phase: str
    variable: str | None = None
    pass_index: int | None = None
    restart: int = 0

    def to_dict(self) -> dict[str, Any]:
        return _with_restart(self.restart, {
            "genotypes": [g.to_dict() for g in self.genotypes],
            "phase": self.phase,
            "variable": self.variable,
            "pass_index": self.pass_index,
        })

    @classmethod
    def from_dict(cls, data: dict[str, Any], decode: Decode) -> Batch:
        return cls(tuple(decode(g) for g in data["genotypes"]), data["phase"],
                   data["variable"], data["pass_index"], int(data.get("restart", 0)))


def _with_restart(restart: int, d: dict[str, Any]) -> dict[str, Any]:
    """Add the restart number where it is not 0 (files of searches without restarts
    stay as they were)."""
    if restart:
        d["restart"] = restart
    return d


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.integer):
        return int(value)
    return value


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """JSON-ready state of a generator's bit generator."""
    state: dict[str, Any] = _jsonable(rng.bit_generator.state)
    return state


def rng_from_state(state: dict[str, Any]) -> np.random.Generator:
    """A new generator in exactly the saved state (of the saved bit generator type)."""
    name = state.get("bit_generator") if isinstance(state, dict) else None
    if name not in _BIT_GENERATORS:
        raise ConfigError(f"search checkpoint: unknown random bit generator {name!r}")
    rng = np.random.Generator(getattr(np.random, name)())
    rng.bit_generator.state = state
    return rng


def encode(genotype: Any | None) -> dict[str, Any] | None:
    return None if genotype is None else genotype.to_dict()


def decode_optional(data: dict[str, Any] | None, decode: Decode) -> Any | None:
    return None if data is None else decode(data)
