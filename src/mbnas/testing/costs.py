"""``check_cost``: what every registered cost figure must do.

A figure is measured on a small MB-NAS network (the U-Net preset, 4 base channels, one
32x32 input channel, two classes) and then followed through everything that reads the
registry: the ``--max-<name>`` flag, a hard limit, the front table and a front written
without it. A plugin figure is checked with ``check_cost("its-name")``; the suite runs it
on every registered figure (``tests/costs/test_costs_shared.py``).
"""

from __future__ import annotations

import math
from typing import Any

from mbnas.costs.registry import COSTS, CostFigure

__all__ = ["check_cost", "tiny_network"]

SIZE = 32


def tiny_network() -> Any:
    """The network figures are checked on (fresh weights from seed 0, on the CPU)."""
    from mbnas.commands.common.model_cost import cost_model
    from mbnas.spaces.mbnas.presets import start_genotype

    return cost_model(start_genotype("unet"), in_channels=1, n_classes=2, base_channels=4)


def check_measure(figure: CostFigure) -> float:
    """A finite value, the same twice, that leaves the network (weights, buffers,
    training mode, device) as it was; returns it."""
    import torch

    model = tiny_network()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    shape = (1, 1, SIZE, SIZE)
    value = figure.measure(model, shape, torch.device("cpu"))
    assert isinstance(value, (int, float)) and not isinstance(value, bool), \
        f"{figure.name}: measure returned {value!r}, not a number"
    assert math.isfinite(value) and value >= 0, f"{figure.name}: {value}"
    assert model.training, f"{figure.name}: measuring left the model in eval mode"
    after = model.state_dict()
    assert before.keys() == after.keys() and all(
        torch.equal(before[k], after[k].cpu()) for k in before), \
        f"{figure.name}: measuring changed the model's weights or buffers"
    if not figure.device:  # a timing varies; every other figure is deterministic
        again = figure.measure(model, shape, torch.device("cpu"))
        assert again == value, f"{figure.name}: {value} then {again}"
    return float(value)


def check_registration(figure: CostFigure) -> None:
    """A name usable as an objective and a flag, a direction, a format for messages."""
    assert figure.name.isidentifier() and figure.name != "dice", figure.name
    assert figure.direction in ("min", "max")
    assert figure.about, f"{figure.name}: no `about` line for --help"
    assert figure.format_cell(None, SIZE) == "not measured"
    text = figure.format(1234.5)
    assert isinstance(text, str) and text and "\n" not in text


def check_flag(figure: CostFigure) -> None:
    """``--max-<name>`` is a flag of ``mbnas search`` and lands in the config's limit."""
    if figure.limit is None:
        return
    import argparse

    from mbnas.cli.settings import add_cost_arguments

    parser = argparse.ArgumentParser()
    add_cost_arguments(parser)
    assert figure.flag in parser.format_help(), f"{figure.flag} missing from --help"
    args = parser.parse_args([figure.flag, "7M"])
    assert getattr(args, figure.limit_field) == "7M"


def check_limit(figure: CostFigure, value: float) -> None:
    """A limit just past the value turns the network away, one on the other side lets it
    through (through :class:`mbnas.strategies.LimitedSpace`, as every strategy sees it)."""
    if figure.limit is None:
        return
    from mbnas.strategies import LimitedSpace

    genotype = _Network()
    figures = {figure.name: value}
    step = max(abs(value) * 0.01, 1e-9)
    tight, loose = (value - step, value + step) if figure.direction == "min" else \
        (value + step, value - step)
    if tight > 0:
        refused = LimitedSpace(_Space(), lambda _g: figures, {figure.name: tight})
        assert not refused.allows(genotype), f"{figure.name}: {value} allowed under {tight}"
        assert figure.name in refused.skipped[0]["skipped"]
    allowed = LimitedSpace(_Space(), lambda _g: figures, {figure.name: loose})
    assert allowed.allows(genotype), f"{figure.name}: {value} refused under {loose}"


def check_front(figure: CostFigure, value: float) -> None:
    """Its column in the front table; a front written without it reads "not measured"."""
    if not figure.objective:
        return
    from mbnas.reporting.front import front_markdown, front_rows, objectives_text

    member = {"genotype": {"name": "toy"}, "arch_key": "k1", "score": 0.5}
    front = {"objectives": ["dice", figure.name], "image_size": SIZE,
             "latency_device": "cpu", "members": [{**member, "figures": {figure.name: value}}],
             "baselines": {}}
    row = front_rows(front)[0]
    assert row[figure.name] == figure.format_cell(value, SIZE) != "not measured"
    assert (figure.column or figure.name) in front_markdown(front, "toy")
    old = {**front, "objectives": ["dice"], "members": [{**member, "figures": {}}]}
    assert front_rows(old)[0][figure.name] == "not measured"
    if figure.limit is not None:
        line = objectives_text({"objectives": ["dice", figure.name], figure.limit_field: value})
        assert f"{figure.name} <= {figure.format(value)}" in line, line


def check_cost(name: str) -> None:
    """Run every check on the registered cost figure ``name``."""
    figure = COSTS.get(name)
    check_registration(figure)
    value = check_measure(figure)
    check_flag(figure)
    check_limit(figure, value)
    check_front(figure, value)


class _Network:
    """A stand-in genotype for the limit check (the figures are given, not measured)."""

    key = "network"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.key}


class _Space:
    name = "toy"
