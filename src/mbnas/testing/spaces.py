"""``check_space``: what every registered search space must do, through the interface the
strategies see (``variables``, ``value``, ``with_value``, ``sample``, ``contains``,
``size``), whatever its architecture language.

Sampling is seeded and valid; the variables have distinct names and options; changing
one variable gives a member of the space that differs in that variable only (or None,
an invalid change); a genotype's JSON form is stable. The suite runs it on every
registered space (``tests/spaces/test_space_spaces.py``); a plugin space is checked with
``check_space("its-name")``.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

__all__ = ["check_neighbours", "check_sampling", "check_space", "check_variables"]


def _space(space: Any) -> Any:
    if isinstance(space, str):
        from mbnas.spaces.mbnas import get_space

        return get_space(space)
    return space


def _vector(space: Any, genotype: Any) -> tuple[Any, ...]:
    return tuple(space.value(genotype, v) for v in space.variables())


def check_variables(space: Any) -> None:
    """Distinct names, at least two options each, the space's size positive."""
    space = _space(space)
    variables = space.variables()
    assert variables, f"space {space.name}: no variables"
    assert len({v.name for v in variables}) == len(variables)
    for v in variables:
        assert len(v.options) >= 2, f"space {space.name}: {v.name} has {v.options}"
    assert space.size() > 0


def check_sampling(space: Any) -> None:
    """The same seed samples the same genotypes, another seed others; all are members,
    with a stable key and a JSON form."""
    space = _space(space)
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    first = [space.sample(rng_a) for _ in range(20)]
    assert first == [space.sample(rng_b) for _ in range(20)]
    other = [space.sample(np.random.default_rng(4)) for _ in range(20)]
    assert first != other
    assert len({g.key for g in first}) > min(15, space.size() // 2)
    for g in first:
        assert space.contains(g)
        assert json.loads(json.dumps(g.to_dict())) == g.to_dict()


def check_neighbours(space: Any) -> None:
    """Every option of every variable of a few samples: None (an invalid change) or a
    member differing from the start in that variable only, with that value."""
    space = _space(space)
    rng = np.random.default_rng(2)
    for start in [space.sample(rng) for _ in range(3)]:
        base = _vector(space, start)
        changed = 0
        for i, variable in enumerate(space.variables()):
            for option in variable.options:
                if option == base[i]:
                    continue
                neighbour = space.with_value(start, variable, option)
                if neighbour is None:
                    continue
                changed += 1
                assert space.contains(neighbour)
                vector = _vector(space, neighbour)
                assert vector[i] == option
                assert sum(x != y for x, y in zip(base, vector, strict=True)) == 1
        assert changed, f"space {space.name}: a sample without a single valid neighbour"


def check_space(name: str) -> None:
    """Every check on the registered space ``name``."""
    for check in (check_variables, check_sampling, check_neighbours):
        check(name)
