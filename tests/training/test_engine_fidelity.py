"""`--fidelity` rungs: parsing, rung protocols and the screen's successive halving.

The screen is driven by a test-only executor that scores a run from its architecture and
epochs (no training), so the decisions can be checked exactly.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from mbnas.errors import ConfigError
from mbnas.scoring.fidelity import ETA, Screen, parse_rungs, rung_keys, rung_protocol
from mbnas.scoring.train import Evaluator
from mbnas.store import ResultStore, RunRecord
from mbnas.training.protocol import Protocol
from mbnas.training.runs import RunContext, RunSpec


@dataclass(frozen=True)
class Net:
    """An architecture for the evaluator: anything with ``key`` and ``to_dict()``."""

    key: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "test", "key": self.key}


@dataclass
class ScoringExecutor:
    """Scores a run as ``SCORES[key] + epochs / 1000`` (0: failed) and counts the runs."""

    scores: dict[str, float]
    ran: list[tuple[str, int, int, int]] = field(default_factory=list)

    def start(self) -> None: ...

    def close(self) -> None: ...

    def run(self, specs: Sequence[RunSpec], ctx: Any, hooks: Any = None
            ) -> Iterator[RunRecord]:
        for s in specs:
            self.ran.append((s.arch_key, s.protocol.epochs, s.fold, s.seed))
            base = self.scores[s.arch_key]
            ok = base > 0
            yield RunRecord(
                arch_key=s.arch_key, protocol_key=s.protocol.key, fold=s.fold, seed=s.seed,
                status="finished" if ok else "failed",
                score=base + s.protocol.epochs / 1000 if ok else None,
                error=None if ok else "ValueError: untrainable", failure=None if ok else "network",
                curve=[], metrics={}, seconds=1.0, device="cpu", versions={},
                architecture=s.architecture, protocol=s.protocol.to_dict(),
                started_at="2026-01-01T00:00:00+00:00", finished_at="2026-01-01T00:00:01+00:00")


PROTOCOL = Protocol(epochs=8, folds=3, seeds=(4, 5))


@pytest.fixture()
def store(tmp_path) -> Iterator[ResultStore]:
    with ResultStore(tmp_path / "store.sqlite") as s:
        yield s


def _screen(store: ResultStore, scores: dict[str, float], rungs=(0.25, 1.0)
            ) -> tuple[Screen, ScoringExecutor]:
    executor = ScoringExecutor(scores)
    ctx = RunContext(data=None, folds=((), (), ()))  # type: ignore[arg-type]
    return Screen(Evaluator(ctx, PROTOCOL, store, executor), rungs), executor


@pytest.mark.parametrize("text, rungs", [("0.25,1", (0.25, 1.0)), ([0.1, 0.5, 1], (0.1, 0.5, 1.0)),
                                         ("", ()), (None, ())])
def test_rungs_are_parsed(text, rungs) -> None:
    assert parse_rungs(text) == rungs


@pytest.mark.parametrize("text", ["0.5", "0.5,0.25,1", "0,1", "0.25,0.5", "a,1", "0.5,1.5",
                                  "nan,1"])
def test_bad_rungs_are_refused_in_one_line(text) -> None:
    with pytest.raises(ConfigError) as err:
        parse_rungs(text)
    assert "fidelity" in str(err.value) and "\n" not in str(err.value)


def test_a_rung_is_its_own_protocol_with_the_epochs_compressed() -> None:
    low = rung_protocol(PROTOCOL, 0.25)
    assert low.epochs == 2 and low.folds == PROTOCOL.folds and low.seeds == PROTOCOL.seeds
    assert low.key != PROTOCOL.key
    assert rung_keys(PROTOCOL, (0.25, 0.5, 1.0)) == [low.key, rung_protocol(PROTOCOL, 0.5).key]
    assert rung_protocol(Protocol(epochs=2), 0.1).epochs == 1


@pytest.mark.filterwarnings("ignore:run f fold 0 seed 4 failed")
def test_only_options_above_the_bar_and_in_the_best_half_go_on(store) -> None:
    scores = {"bar": 0.5, "a": 0.4, "b": 0.7, "c": 0.6, "d": 0.9, "e": 0.55, "f": 0, "g": 0.5}
    screen, executor = _screen(store, scores)
    batch = [Net(k) for k in "abcdefg"]
    verdicts = screen.screen(batch, lambda _o: [Net("bar")])
    # One training each (fold 0, the first seed, a quarter of the epochs), the bar included.
    assert sorted(executor.ran) == sorted((k, 2, 0, 4) for k in [*"abcdefg", "bar"])
    cap = -(-len(batch) // ETA)
    above = [k for k in "abcdefg" if scores[k] >= scores["bar"]]  # a tie may still win
    expected = sorted(above, key=lambda k: -scores[k])[:cap]
    assert [n.key for n, v in zip(batch, verdicts, strict=True) if v is None] == sorted(expected)
    notes = {n.key: v.note() for n, v in zip(batch, verdicts, strict=True) if v is not None}
    assert "below the bar's 0.5020" in notes["a"] and "failed" in notes["f"]
    assert "best 1/2" in notes["g"]
    assert screen.trained[0] == 8 and all(v.rung == 0.25 for v in verdicts if v is not None)


def test_without_halving_every_option_above_its_bar_goes_on(store) -> None:
    scores = {"cheap": 0.3, "x": 0.35, "y": 0.32, "z": 0.2}
    screen, _ = _screen(store, scores)
    verdicts = screen.screen([Net("x"), Net("y"), Net("z")], lambda _o: [Net("cheap")],
                             halving=False)
    assert [v is None for v in verdicts] == [True, True, False]


def test_stored_low_rung_runs_are_reused_and_never_in_the_full_protocol(store) -> None:
    scores = {"bar": 0.5, "a": 0.6, "b": 0.4}
    screen, executor = _screen(store, scores, rungs=(0.25, 0.5, 1.0))
    batch = [Net("a"), Net("b")]
    first = screen.screen(batch, lambda _o: [Net("bar")])
    assert {(k, e) for k, e, _, _ in executor.ran} == {
        ("a", 2), ("b", 2), ("bar", 2), ("a", 4), ("bar", 4)}
    assert store.runs(protocol_key=PROTOCOL.key) == []
    again, executor2 = _screen(store, scores, rungs=(0.25, 0.5, 1.0))
    assert again.screen(batch, lambda _o: [Net("bar")]) == first
    assert executor2.ran == []  # a resumed search trains nothing twice
