"""Fused training of one architecture's seeds equals separate training within fp32 tolerance."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from mbnas.data.slices import SliceData
from mbnas.spaces.mbnas import Genotype, architecture_from_dict, build_model, get_space, preset
from mbnas.training.fused import FusedNetworks, execute_group, fusable_groups, train_fused
from mbnas.training.loss import soft_dice_loss
from mbnas.training.protocol import Protocol
from mbnas.training.runs import RunContext, RunSpec, execute_run, fold_data
from mbnas.training.score_rule import run_score, score_epochs
from mbnas.training.train import train_run


def _folds(data: SliceData) -> tuple[tuple[str, ...], ...]:
    ids = data.case_ids
    return (ids[::2], ids[1::2])


def _separate(spec: RunSpec, ctx: RunContext):  # noqa: ANN202
    train, val = fold_data(ctx.data, ctx.folds, spec.fold)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        model = build_model(architecture_from_dict(spec.architecture), 1, 2,
                            spec.protocol.base_channels)
    return train_run(model, train, val, spec.protocol, spec.seed, "cpu")


def _genotype(arch: str) -> Genotype:
    return preset("unet") if arch == "unet" else get_space("mbnas").sample(
        np.random.default_rng(3))


@pytest.mark.parametrize("arch", ["unet", "random"])
def test_each_member_gets_its_own_gradient(arch: str) -> None:
    # In float64: the mechanism must be exact, and fp32 rounding (amplified by BatchNorm
    # over 4x4 maps in deep random networks, up to 1e-3 relative) cannot hide an error.
    genotype = _genotype(arch)
    models = []
    for seed in (0, 1, 2):
        torch.manual_seed(seed)
        models.append(build_model(genotype, 1, 2, 4).double())
    nets = FusedNetworks(models)
    gen = torch.Generator().manual_seed(0)
    # 16 px: 2x2 maps at depth 3, a quarter of 32 px's work for the same mechanism.
    x = torch.randn(3, 4, 1, 16, 16, generator=gen, dtype=torch.float64)
    y = (torch.rand(3, 4, 16, 16, generator=gen) > 0.7).long()
    logits = nets(x)
    sum(soft_dice_loss(logits[i], y[i]) for i in range(3)).backward()
    for i, model in enumerate(models):
        soft_dice_loss(model(x[i]), y[i]).backward()
        for name, p in model.named_parameters():
            torch.testing.assert_close(nets.params[name].grad[i], p.grad, rtol=1e-9,
                                       atol=1e-12, msg=f"member {i}: {name}")
        for name, b in model.named_buffers():  # BatchNorm statistics, per member
            torch.testing.assert_close(nets.buffers[name][i], b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("arch", ["unet", "random"])
def test_fused_seeds_equal_separate_runs(phantom_slices: SliceData, tiny_protocol: Protocol,
                                         arch: str) -> None:
    # Two members: each is compared with its own separate run (three members are checked
    # exactly, in float64, by the gradient test above).
    protocol = dataclasses.replace(tiny_protocol, seeds=(0, 1), precision="fp32",
                                   keep_weights=True, channels_last="off")
    genotype = _genotype(arch)
    ctx = RunContext(phantom_slices, _folds(phantom_slices), "cpu")
    specs = [RunSpec(genotype.to_dict(), genotype.key, 1, s, protocol) for s in (0, 1)]
    fused = train_fused(specs, ctx)
    n_train = len(fold_data(phantom_slices, ctx.folds, 1)[0].images)
    steps = protocol.epochs * -(-n_train // protocol.batch_size)
    for spec, outcome in zip(specs, fused, strict=True):
        alone = _separate(spec, ctx)
        assert [e.loss for e in outcome.curve] == pytest.approx(
            [e.loss for e in alone.curve], abs=1e-4)
        assert outcome.score == pytest.approx(alone.score, abs=1e-3)
        assert set(outcome.state_dict) == set(alone.state_dict)
        for name, value in alone.state_dict.items():
            # Adam scales each update to about lr, so fp32 noise in a near-zero gradient
            # can move a weight by up to 2 lr per step; the gradients agree to 1e-4 above.
            torch.testing.assert_close(outcome.state_dict[name], value, rtol=0,
                                       atol=2 * protocol.lr * steps, msg=name)
    assert fused[0].curve[-1].loss != fused[1].curve[-1].loss  # members differ


def test_groups_are_one_architecture_and_fold(phantom_slices: SliceData,
                                              tiny_protocol: Protocol) -> None:
    protocol = dataclasses.replace(tiny_protocol, seeds=(0, 1), precision="fp32")
    a = preset("unet")
    specs = [RunSpec(a.to_dict(), a.key, f, s, protocol) for f in (0, 1) for s in (0, 1)]
    groups = fusable_groups(specs)
    assert [[(s.fold, s.seed) for s in g] for g in groups] == [[(0, 0), (0, 1)],
                                                             [(1, 0), (1, 1)]]
    ctx = RunContext(phantom_slices, _folds(phantom_slices), "cpu")
    records = execute_group(groups[0], ctx)
    assert [r.status for r in records] == ["finished", "finished"]
    assert all(r.metrics["fused_members"] == 2 for r in records)
    alone = execute_run(groups[0][1], ctx)
    assert records[1].score == pytest.approx(alone.score, abs=1e-4)


def test_fused_folds_equal_separate_runs_in_float64(phantom_spleen, phantom_cache) -> None:
    # Two members of two folds whose training sets differ in size (4 cases against 2),
    # so some steps update one member only; float64, so any difference is a bug.
    from mbnas.data import PreprocessConfig, load_slices

    data = load_slices(phantom_spleen, phantom_cache, PreprocessConfig(size=16))
    data = dataclasses.replace(data, images=data.images.astype(np.float64))
    ids = data.case_ids
    ctx = RunContext(data, (ids[:2], ids[2:]), "cpu")
    protocol = Protocol(epochs=2, folds=2, seeds=(0,), image_size=16, base_channels=4,
                        batch_size=16, samples_per_epoch=0, precision="fp32",
                        channels_last="off", keep_weights=True)
    genotype = _genotype("random")
    specs = [RunSpec(genotype.to_dict(), genotype.key, f, s, protocol) for f, s in ((0, 0), (1, 1))]
    assert [len(g) for g in fusable_groups(specs, folds=True)] == [2]
    fused = train_fused(specs, ctx)
    sizes = {len(fold_data(data, ctx.folds, s.fold)[0].images) for s in specs}
    assert len(sizes) == 2 and all(n % protocol.batch_size for n in sizes)
    for spec, outcome in zip(specs, fused, strict=True):
        train, val = fold_data(data, ctx.folds, spec.fold)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(spec.seed)
            model = build_model(genotype, 1, 2, 4).double()
        alone = train_run(model, train, val, protocol, spec.seed, "cpu")
        assert [e.loss for e in outcome.curve] == pytest.approx(
            [e.loss for e in alone.curve], rel=1e-9)
        assert [e.val_dice for e in outcome.curve] == [e.val_dice for e in alone.curve]
        assert outcome.case_dice == pytest.approx(alone.case_dice, rel=1e-9)
        for name, value in alone.state_dict.items():
            torch.testing.assert_close(outcome.state_dict[name], value, rtol=1e-7,
                                       atol=1e-9, msg=name)
    assert set(fused[0].case_dice) != set(fused[1].case_dice)  # each on its own fold


def test_both_trainers_score_a_run_by_the_one_run_score_rule(phantom_slices: SliceData,
                                                              tiny_protocol: Protocol) -> None:
    # 3 epochs, fraction 0.5: the score is the mean of the last 2 validation Dice values,
    # in the single and the fused trainer alike (one rule, training/score_rule.py).
    # lr 0.01 and batches of 4: the U-Net learns at once, so the epochs differ.
    protocol = dataclasses.replace(tiny_protocol, epochs=3, score_fraction=0.5, seeds=(0,),
                                   precision="fp32", lr=0.01, batch_size=4)
    assert protocol.score_epochs == score_epochs(3, 0.5) == 2
    genotype = preset("unet")
    ctx = RunContext(phantom_slices, _folds(phantom_slices), "cpu")
    specs = [RunSpec(genotype.to_dict(), genotype.key, 0, 0, protocol)]
    for outcome in [*train_fused(specs, ctx), _separate(specs[0], ctx)]:
        dice = [e.val_dice for e in outcome.curve]
        assert len(dice) == 3 and len(set(dice)) > 1  # the epochs differ
        assert outcome.score == run_score(dice, protocol.score_fraction)
        assert outcome.score == pytest.approx((dice[1] + dice[2]) / 2, rel=1e-12)


def test_the_run_score_rule() -> None:
    dice = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    assert run_score(dice, 0.2) == pytest.approx(0.95)  # the paper's: last 20%
    assert run_score(dice, 0.0) == 1.0  # at least one epoch
    assert run_score(dice, 1.0) == pytest.approx(0.55)
    assert run_score(dice[:3], 0.2) == pytest.approx(0.3)  # round(0.6) = 1
    with pytest.raises(ValueError, match="at least one epoch"):
        run_score([], 0.2)
