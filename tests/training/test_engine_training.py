"""Real training on phantom data: learning, scoring, the evaluator's store cache and failures."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from mbnas.data.slices import SliceData
from mbnas.scoring.train import Evaluator
from mbnas.spaces.mbnas import Genotype, build_model, preset
from mbnas.store import ResultStore
from mbnas.training.protocol import Protocol
from mbnas.training.runs import RunContext, RunSpec, execute_run, fold_data
from mbnas.training.train import train_run


def _folds(data: SliceData) -> tuple[tuple[str, ...], ...]:
    ids = data.case_ids
    return (ids[::2], ids[1::2])


def test_tiny_network_learns_on_phantom(phantom_slices: SliceData, tiny_protocol: Protocol
                                        ) -> None:
    protocol = dataclasses.replace(tiny_protocol, epochs=10, batch_size=8, base_channels=8,
                                   final_metrics=True)
    train, val = fold_data(phantom_slices, _folds(phantom_slices), 0)
    torch.manual_seed(0)
    model = build_model(preset("unet"), 1, 2, base_channels=8)
    out = train_run(model, train, val, protocol, seed=0, device="cpu")
    dice = [e.val_dice for e in out.curve]
    assert len(dice) == 10
    assert max(dice[-4:]) > dice[0] + 0.25, f"did not learn: {dice}"
    assert out.score == pytest.approx(np.mean(dice[-protocol.score_epochs:]))
    assert set(out.case_dice) == set(val.case_ids)
    # Report metrics per case in mm, finite by the empty-mask policy.
    assert set(out.metrics) == set(val.case_ids)
    for case in out.metrics.values():
        assert math.isfinite(case["mean_hd95"]) and 0 <= case["mean_surface_dice"] <= 1


def test_same_seed_same_run(phantom_slices: SliceData, tiny_protocol: Protocol) -> None:
    ctx = RunContext(phantom_slices, _folds(phantom_slices), "cpu")
    arch = preset("unet")
    spec = RunSpec(arch.to_dict(), arch.key, 1, 3, tiny_protocol)
    a, b = execute_run(spec, ctx), execute_run(spec, ctx)
    assert a.status == b.status == "finished"
    def losses(record):
        return [(e["loss"], e["val_dice"]) for e in record.curve]

    assert a.score == b.score and losses(a) == losses(b)
    other = execute_run(dataclasses.replace(spec, seed=4), ctx)
    assert losses(other) != losses(a)


def test_evaluating_twice_trains_once(phantom_slices: SliceData, tiny_protocol: Protocol,
                                      tmp_path) -> None:
    ctx = RunContext(phantom_slices, _folds(phantom_slices), "cpu")
    arch = preset("unet")
    with ResultStore(tmp_path / "store.sqlite") as store:
        evaluator = Evaluator(ctx, tiny_protocol, store)
        first = evaluator.evaluate(arch)
        assert first.n_trained == 2 and not first.failed
        assert first.score == pytest.approx(np.mean([r.score for r in first.runs]))
        second = evaluator.evaluate(arch)
        assert second.n_trained == 0
        assert second.score == first.score
        assert len(store.runs()) == 2
    # A new process (a new store object) sees the same runs.
    with ResultStore(tmp_path / "store.sqlite") as store:
        again = Evaluator(ctx, tiny_protocol, store).evaluate(arch)
        assert again.n_trained == 0 and again.score == first.score


def test_untrainable_architecture_scores_as_failed(phantom_slices: SliceData,
                                                   tiny_protocol: Protocol, tmp_path) -> None:
    # The U-Net preset (depth 3) needs inputs divisible by 8: at 4x4 every run fails.
    small = phantom_slices.subset(phantom_slices.case_ids)
    small = SliceData(small.images[:, :, :4, :4].copy(), small.labels[:, :4, :4].copy(),
                      small.case_index, small.slice_index, small.cases, small.label_names,
                      small.channel_names)
    ctx = RunContext(small, _folds(small), "cpu")
    with ResultStore(tmp_path / "s.sqlite") as store:
        with pytest.warns(RuntimeWarning, match="failed"):
            result = Evaluator(ctx, tiny_protocol, store).evaluate(preset("unet"))
        assert result.failed and math.isnan(result.score)
        assert all("divisible by 8" in r.error for r in result.runs)
        shallow = Genotype.from_dict({"kind": "genotype", "nodes": [
            {"channels": "same", "block": "vgg", "kernel": 3, "skip": 0}] * 10})
        ok = Evaluator(ctx, tiny_protocol, store).evaluate(shallow)
        assert not ok.failed and math.isfinite(ok.score)


def test_inprocess_threads_setting_is_applied_and_restored(phantom_slices: SliceData,
                                                           tiny_protocol: Protocol) -> None:
    from mbnas.errors import ConfigError
    from mbnas.training.executors import make_executor
    from mbnas.training.runs import InProcessExecutor

    seen = []

    class Hooks:
        def run_started(self, spec: RunSpec) -> None:
            seen.append(torch.get_num_threads())

        def epoch_done(self, spec: RunSpec, stats) -> None:
            pass

    before = torch.get_num_threads()
    executor = make_executor("inprocess", threads=1)
    assert isinstance(executor, InProcessExecutor) and executor.threads == 1
    arch = preset("unet")
    spec = RunSpec(arch.to_dict(), arch.key, 0, 0, tiny_protocol)
    records = list(executor.run([spec], RunContext(phantom_slices, _folds(phantom_slices), "cpu"),
                                Hooks()))
    assert seen == [1] and records[0].status == "finished"
    assert torch.get_num_threads() == before
    with pytest.raises(ConfigError, match="threads must be >= 1"):
        make_executor("inprocess", threads=0)
    with pytest.raises(ConfigError, match="unknown executor"):
        make_executor("dask")


def test_run_score_is_the_protocols_dice_of_the_final_network(phantom_slices: SliceData,
                                                              tiny_protocol: Protocol) -> None:
    """The search objective: each epoch's val Dice is mbnas.metrics' Dice, pooled or per case."""
    from mbnas.metrics import dice_counts, validation_dice
    from mbnas.training.train import _DeviceData, predict_labels

    train, val = fold_data(phantom_slices, _folds(phantom_slices), 0)
    scores = {}
    for mode in ("pooled", "case"):
        protocol = dataclasses.replace(tiny_protocol, epochs=1, precision="fp32", dice=mode,
                                       keep_weights=True)
        torch.manual_seed(0)
        out = train_run(build_model(preset("unet"), 1, 2, base_channels=4), train, val,
                        protocol, seed=0, device="cpu")
        model = build_model(preset("unet"), 1, 2, base_channels=4)
        model.load_state_dict(out.state_dict)
        va = _DeviceData(val, torch.device("cpu"), channels_last=False)
        counts = dice_counts(predict_labels(model, va.images, 64, False), va.labels, 2)
        want, per_case = validation_dice(counts, va.case_index, va.n_cases, mode)
        assert out.curve[-1].val_dice == pytest.approx(float(want), abs=1e-6)
        assert list(out.case_dice.values()) == pytest.approx(per_case.mean(1).tolist(), abs=1e-6)
        scores[mode] = (out.curve[-1].loss, out.curve[-1].val_dice)
    # The Dice setting changes the score only, never the training.
    assert scores["pooled"][0] == scores["case"][0]
    assert scores["pooled"][1] != scores["case"][1]


def test_an_epoch_draws_at_least_samples_per_epoch(phantom_slices: SliceData,
                                                   tiny_protocol: Protocol) -> None:
    train, _ = fold_data(phantom_slices, _folds(phantom_slices), 0)
    n = len(train.images)
    # The authors' count: Prostate's 482 training slices in batches of 32 are 16 batches,
    # 512 samples a pass, so 4 passes make 2048 (and 5 if a pass were 482 samples).
    assert dataclasses.replace(tiny_protocol, batch_size=32, samples_per_epoch=2048
                               ).passes_per_epoch(482) == 4
    protocol = dataclasses.replace(tiny_protocol, batch_size=1, samples_per_epoch=2 * n + 1)
    assert protocol.passes_per_epoch(n) == 3
    assert dataclasses.replace(tiny_protocol, samples_per_epoch=0).passes_per_epoch(n) == 1


def test_executor_recipe_of_extending_md_trains_as_the_in_process_executor(
        phantom_slices: SliceData, tiny_protocol: Protocol, plugin) -> None:
    from mbnas.training.executors import EXECUTORS, executor_names, make_executor

    built_in = executor_names()
    plugin.recipe("An executor", EXECUTORS)
    (name,) = (n for n in executor_names() if n not in built_in)
    arch = preset("unet")
    specs = [RunSpec(arch.to_dict(), arch.key, fold, 0, tiny_protocol) for fold in (0, 1)]
    ctx = RunContext(phantom_slices, _folds(phantom_slices), "cpu")
    executor = make_executor(name)
    executor.start()
    try:
        records = list(executor.run(specs, ctx))
    finally:
        executor.close()
    assert [r.fold for r in records] == [1, 0]  # the recipe's order: the last asked first
    assert all(r.status == "finished" for r in records)
    (reference,) = make_executor(built_in[0]).run(specs[1:], ctx)
    assert records[0].score == reference.score
