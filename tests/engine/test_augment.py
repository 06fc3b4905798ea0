"""Augmentation keeps image and label aligned, is seeded, and really transforms."""

from __future__ import annotations

import dataclasses

import torch

from mbnas.engine.augment import augment_batch
from mbnas.engine.config import AugmentConfig


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
    cfg = dataclasses.replace(AugmentConfig(), brightness=(1.0, 1.0))
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
    cfg = AugmentConfig(scale=(1, 1), rotate_degrees=0, shift_fraction=0, flip_probability=0,
                        brightness=(1.5, 1.5))
    out_img, out_lab = augment_batch(images, labels, cfg, torch.Generator().manual_seed(0))
    assert torch.allclose(out_img, images * 1.5, atol=1e-4)
    assert torch.equal(out_lab, labels)


def test_flip_only_mirrors_exactly() -> None:
    images = _blobs(8)
    labels = (images[:, 0] > 2.0).long()
    cfg = AugmentConfig(scale=(1, 1), rotate_degrees=0, shift_fraction=0, flip_probability=1.0,
                        brightness=(1, 1))
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
