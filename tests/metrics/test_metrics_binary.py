"""Dice, HD95 and Surface Dice of binary masks: known geometry, the empty-mask policy, MONAI."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from monai.metrics import compute_dice, compute_hausdorff_distance, compute_surface_dice
from scipy import ndimage

from mbnas.errors import MbnasError
from mbnas.metrics import MetricError, dice, hd95, image_diagonal_mm, surface_dice


def square(shape: tuple[int, ...], start: tuple[int, ...], size: int) -> np.ndarray:
    """A bool image with one axis-aligned square (cube in 3D) of side ``size``."""
    mask = np.zeros(shape, dtype=bool)
    mask[tuple(slice(s, s + size) for s in start)] = True
    return mask


def blobs(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Random smooth non-empty shapes: thresholded Gaussian-filtered noise."""
    smooth = ndimage.gaussian_filter(rng.standard_normal(shape), sigma=3)
    mask = smooth > np.quantile(smooth, 0.8)
    assert mask.any()
    return mask


# ---- Dice -------------------------------------------------------------------------------


def test_dice_of_half_overlapping_squares_is_one_half() -> None:
    a = square((40, 40), (10, 10), 10)
    b = square((40, 40), (10, 15), 10)  # shifted by half its width
    assert dice(a, b) == pytest.approx(0.5)


@pytest.mark.parametrize(("shift", "expected"), [(0, 1.0), (2, 0.8), (8, 0.2), (10, 0.0)])
def test_dice_follows_overlap(shift: int, expected: float) -> None:
    a = square((40, 40), (10, 10), 10)
    b = square((40, 40), (10 + shift, 10), 10)
    assert dice(a, b) == pytest.approx(expected)


def test_dice_accepts_torch_and_integer_masks() -> None:
    a = square((30, 30), (5, 5), 10)
    b = square((30, 30), (5, 10), 10)
    assert dice(torch.from_numpy(a), torch.from_numpy(b).to(torch.uint8)) == pytest.approx(0.5)


# ---- HD95 -------------------------------------------------------------------------------


def test_hd95_of_squares_offset_by_three_pixels_at_half_mm() -> None:
    a = square((40, 40), (10, 10), 10)
    b = square((40, 40), (10, 13), 10)
    assert hd95(a, b, spacing=(0.5, 0.5)) == pytest.approx(1.5)


def test_hd95_scales_with_the_spacing_of_the_shifted_axis_only() -> None:
    a = square((40, 40), (10, 10), 10)
    along_rows = square((40, 40), (13, 10), 10)
    along_cols = square((40, 40), (10, 13), 10)
    spacing = (2.0, 0.5)  # anisotropic: rows 2 mm apart, columns 0.5 mm
    assert hd95(a, along_rows, spacing) == pytest.approx(6.0)
    assert hd95(a, along_cols, spacing) == pytest.approx(1.5)


def test_hd95_in_3d_uses_through_plane_spacing() -> None:
    a = square((12, 30, 30), (3, 10, 10), 6)
    through = square((12, 30, 30), (5, 10, 10), 6)
    in_plane = square((12, 30, 30), (3, 12, 10), 6)
    spacing = (3.0, 0.8, 0.8)
    assert hd95(a, through, spacing) == pytest.approx(6.0)
    assert hd95(a, in_plane, spacing) == pytest.approx(1.6)


# ---- Surface Dice -----------------------------------------------------------------------


def test_surface_dice_of_identical_masks_is_one() -> None:
    a = square((40, 40), (10, 10), 10)
    assert surface_dice(a, a.copy(), spacing=(1.0, 1.0)) == pytest.approx(1.0)


def test_surface_dice_of_far_apart_masks_is_zero() -> None:
    a = square((60, 60), (5, 5), 8)
    b = square((60, 60), (40, 40), 8)
    assert surface_dice(a, b, spacing=(1.0, 1.0), tolerance_mm=2.0) == 0.0


def test_surface_dice_within_tolerance_is_one() -> None:
    a = square((40, 40), (10, 10), 10)
    b = square((40, 40), (10, 11), 10)  # one pixel = 1 mm, within the 2 mm tolerance
    assert surface_dice(a, b, spacing=(1.0, 1.0), tolerance_mm=2.0) == pytest.approx(1.0)


def test_surface_dice_grows_with_tolerance_and_shrinks_with_spacing() -> None:
    a = square((40, 40), (10, 10), 10)
    b = square((40, 40), (10, 13), 10)
    values = [surface_dice(a, b, (1.0, 1.0), tolerance_mm=t) for t in (0.5, 1.0, 2.0, 3.0)]
    assert values == sorted(values)
    assert 0.0 < values[0] < values[-1] == pytest.approx(1.0)
    # The same 3-pixel shift is 6 mm at 2 mm spacing: no longer within 3 mm.
    assert surface_dice(a, b, (2.0, 2.0), tolerance_mm=3.0) < values[-1]


# ---- The empty-mask policy --------------------------------------------------------------

SHAPE, SPACING = (30, 40), (0.5, 2.0)
EMPTY = np.zeros(SHAPE, dtype=bool)
FULL = square(SHAPE, (5, 5), 10)
DIAGONAL = math.hypot(30 * 0.5, 40 * 2.0)


@pytest.mark.parametrize(
    ("pred", "ref", "expected"),
    [
        (EMPTY, EMPTY, (1.0, 0.0, 1.0)),
        (EMPTY, FULL, (0.0, DIAGONAL, 0.0)),
        (FULL, EMPTY, (0.0, DIAGONAL, 0.0)),
        (FULL, FULL, (1.0, 0.0, 1.0)),
    ],
    ids=["both-empty", "pred-empty", "ref-empty", "both-present"],
)
def test_empty_mask_policy(pred: np.ndarray, ref: np.ndarray, expected: tuple) -> None:
    got = (dice(pred, ref), hd95(pred, ref, SPACING), surface_dice(pred, ref, SPACING))
    assert got == pytest.approx(expected)
    assert all(math.isfinite(v) for v in got)


def test_image_diagonal_in_3d() -> None:
    assert image_diagonal_mm((10, 20, 30), (3.0, 1.0, 0.5)) == pytest.approx(
        math.sqrt(30.0**2 + 20.0**2 + 15.0**2)
    )
    empty = np.zeros((10, 20, 30), dtype=bool)
    assert hd95(empty, square((10, 20, 30), (2, 2, 2), 4), (3.0, 1.0, 0.5)) == pytest.approx(
        image_diagonal_mm((10, 20, 30), (3.0, 1.0, 0.5))
    )


def test_a_missed_structure_worsens_the_mean_hd95() -> None:
    # MONAI issue 9095: with NaN for a miss, nanmean would report the good case alone.
    ref = square(SHAPE, (5, 5), 10)
    good = square(SHAPE, (5, 6), 10)
    per_case = [hd95(good, ref, SPACING), hd95(EMPTY, ref, SPACING)]
    assert np.mean(per_case) > hd95(good, ref, SPACING)


# ---- Agreement with MONAI called directly -----------------------------------------------


@pytest.mark.filterwarnings("ignore:.*always_return_as_numpy")
@pytest.mark.parametrize(
    ("shape", "spacing"),
    [((48, 48), (0.7, 1.3)), ((10, 32, 32), (2.5, 0.9, 0.9))],
    ids=["2d", "3d"],
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_monai_on_random_masks(shape, spacing, seed: int) -> None:
    rng = np.random.default_rng(seed)
    p, r = blobs(rng, shape), blobs(rng, shape)
    tp, tr = torch.from_numpy(p)[None, None].float(), torch.from_numpy(r)[None, None].float()
    want_dice = compute_dice(tp, tr, include_background=True)[0, 0].item()
    want_hd = compute_hausdorff_distance(
        tp, tr, include_background=True, percentile=95, spacing=list(spacing)
    )[0, 0].item()
    want_sd = compute_surface_dice(
        tp, tr, [2.0], include_background=True, spacing=list(spacing), use_subvoxels=True
    )[0, 0].item()
    assert dice(p, r) == pytest.approx(want_dice, rel=1e-6)
    assert hd95(p, r, spacing) == pytest.approx(want_hd, rel=1e-6)
    assert surface_dice(p, r, spacing, tolerance_mm=2.0) == pytest.approx(want_sd, rel=1e-6)
    assert 0.0 < want_sd < 1.0  # the masks are neither identical nor disjoint


# ---- Bad input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pred", "ref", "spacing", "match"),
    [
        (np.zeros((4, 4), bool), np.zeros((4, 5), bool), (1.0, 1.0), "differ in shape"),
        (np.full((4, 4), 0.5), np.zeros((4, 4), bool), (1.0, 1.0), "binary mask"),
        (np.zeros(4, bool), np.zeros(4, bool), (1.0,), "2D or 3D"),
        (np.zeros((4, 4), bool), np.zeros((4, 4), bool), (1.0,), "has 1 values"),
        (np.zeros((4, 4), bool), np.zeros((4, 4), bool), 1.0, "one value per axis"),
        (np.zeros((4, 4), bool), np.zeros((4, 4), bool), (1.0, -1.0), "positive"),
        (np.zeros((4, 4), bool), np.zeros((4, 4), bool), (1.0, float("nan")), "positive"),
    ],
)
def test_bad_input_raises_a_clear_error(pred, ref, spacing, match: str) -> None:
    with pytest.raises(MetricError, match=match) as info:
        hd95(pred, ref, spacing)
    assert isinstance(info.value, MbnasError)


def test_bad_tolerance_raises() -> None:
    a = square((10, 10), (2, 2), 3)
    with pytest.raises(MetricError, match="tolerance_mm"):
        surface_dice(a, a, (1.0, 1.0), tolerance_mm=-1.0)
