"""Augmentation keeps image and label aligned, is seeded, and really transforms."""

from __future__ import annotations

import dataclasses

import torch

from mbnas.training.augment import augment_batch, random_affine, random_brightness
from mbnas.training.augment_config import AugmentConfig
from mbnas.training.protocol import PROTOCOLS

NOTHING = AugmentConfig(scale_p=0, shift_p=0, rotate_p=0, flip_p=0, brightness_p=0)


def _blobs(n: int = 16, size: int = 48) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    images = torch.zeros(n, 1, size, size)
    for i in range(n):
        cy, cx = torch.randint(12, size - 12, (2,), generator=g).tolist()
        r = int(torch.randint(5, 10, (1,), generator=g))
        images[i, 0] = (((yy - cy) ** 2 + (xx - cx) ** 2) < r * r).float() * 4.0
    return images


def test_label_derived_by_threshold_stays_aligned() -> None:
    images = _blobs()
    labels = (images[:, 0] > 2.0).long()
    cfg = AugmentConfig(scale_p=1, shift_p=1, rotate_p=1, flip_p=0.5, brightness_p=0)
    out_img, out_lab = augment_batch(images, labels, cfg, torch.Generator().manual_seed(1))
    thresholded = (out_img[:, 0] > 2.0).long()
    disagree = (thresholded != out_lab).float()
    # Linear vs nearest resampling may disagree on the border pixels of each blob only.
    assert disagree.mean() < 0.02
    changed = (out_lab != labels).float().mean()
    assert changed > 0.01, "the augmentation did not move anything"


def test_brightness_scales_intensity_not_labels() -> None:
    images = _blobs(4)
    labels = (images[:, 0] > 2.0).long()
    cfg = dataclasses.replace(NOTHING, brightness_p=1, brightness_channel_p=1,
                              brightness=(1.5, 1.5))
    out_img, out_lab = augment_batch(images, labels, cfg, torch.Generator().manual_seed(0))
    assert torch.allclose(out_img, images * 1.5, atol=1e-4)
    assert torch.equal(out_lab, labels)


def test_flip_only_mirrors_exactly() -> None:
    images = _blobs(8)
    labels = (images[:, 0] > 2.0).long()
    cfg = dataclasses.replace(NOTHING, flip_p=1.0)
    out_img, out_lab = augment_batch(images, labels, cfg, torch.Generator().manual_seed(0))
    assert torch.allclose(out_img, images.flip(-1), atol=1e-4)
    assert torch.equal(out_lab, labels.flip(-1))


def test_same_generator_seed_same_result_and_disabled_is_identity() -> None:
    images = _blobs(4)
    labels = (images[:, 0] > 2.0).long()
    a = augment_batch(images, labels, AugmentConfig(), torch.Generator().manual_seed(7))
    b = augment_batch(images, labels, AugmentConfig(), torch.Generator().manual_seed(7))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    off = augment_batch(images, labels, AugmentConfig(enabled=False), torch.Generator())
    assert off[0] is images and off[1] is labels


def _rate(mask: torch.Tensor) -> float:
    return float(mask.float().mean())


def test_each_transform_is_drawn_per_sample_with_its_own_probability() -> None:
    n, cfg = 20000, PROTOCOLS["paper-spleen"].augment
    gen = torch.Generator().manual_seed(3)
    theta, moved = random_affine(n, cfg, gen, torch.device("cpu"))
    a = theta[:, :, :2]
    scale = torch.linalg.det(a).abs().sqrt()
    flipped = torch.linalg.det(a) < 0
    rotated = a[:, 1, 0].abs() > 1e-6
    assert abs(_rate(flipped) - cfg.flip_p) < 0.02
    assert abs(_rate(rotated) - cfg.rotate_p) < 0.02
    assert abs(_rate((scale - 1).abs() > 1e-6) - cfg.scale_p) < 0.02
    assert scale.min() >= cfg.scale[0] - 1e-6 and scale.max() <= cfg.scale[1] + 1e-6
    # Transforms are drawn independently: flips are as frequent among rotated samples.
    assert abs(_rate(flipped[rotated]) - cfg.flip_p) < 0.03
    assert abs(_rate(moved) - (1 - (1 - 0.3) * (1 - 0.2) * (1 - 0.2) * (1 - 0.4))) < 0.02
    factors = random_brightness(n, 2, cfg, gen, torch.device("cpu"))
    changed = (factors != 1).float()
    # Spleen: p=0.3 per sample, then 0.5 per channel, as in the authors' loader.
    assert abs(float(changed.mean()) - 0.15) < 0.02
    assert factors.min() >= cfg.brightness[0] and factors.max() <= cfg.brightness[1]


def test_prostate_preset_never_flips_and_shifts_farther() -> None:
    spleen, prostate = PROTOCOLS["paper-spleen"].augment, PROTOCOLS["paper-prostate"].augment
    theta, _ = random_affine(5000, prostate, torch.Generator().manual_seed(0),
                             torch.device("cpu"))
    assert not bool((torch.linalg.det(theta[:, :, :2]) < 0).any())
    assert prostate.shift_fraction * 128 == 40 and spleen.shift_fraction * 128 == 30
    assert (prostate.scale, prostate.brightness) == ((0.7, 1.3), (0.5, 1.5))


def test_shift_moves_content_by_at_most_the_set_fraction() -> None:
    images = _blobs(64)
    labels = (images[:, 0] > 2.0).long()
    cfg = dataclasses.replace(NOTHING, shift_p=1, shift_fraction=0.125)
    _, out = augment_batch(images, labels, cfg, torch.Generator().manual_seed(5))
    size = images.shape[-1]
    for before, after in zip(labels, out):
        if after.sum() < before.sum():  # pushed partly out of view
            continue
        c0 = torch.nonzero(before).float().mean(0)
        c1 = torch.nonzero(after).float().mean(0)
        assert ((c1 - c0).abs() <= 0.125 * size + 1).all()
    assert not torch.equal(out, labels)


def test_no_transform_drawn_reproduces_the_batch() -> None:
    images = _blobs(8)
    labels = (images[:, 0] > 2.0).long()
    out_img, out_lab = augment_batch(images, labels, NOTHING, torch.Generator().manual_seed(0))
    assert torch.allclose(out_img, images, atol=1e-5) and torch.equal(out_lab, labels)
