"""In-plane spacing of a dataset: resampling to a target spacing, and its spread.

Real datasets mix fields of view: a 0.98 mm crop and a 0.6 mm full scan, both resized to
the same image size, reach the network at scales that differ 3x. ``target_spacing``
resamples every slice to one spacing instead, then centre-crops or pads it to the image
size (nnU-Net resamples to the median spacing likewise). `mbnas check` shows the spread.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mbnas.errors import ConfigError

# Largest side (px) of a slice resampled to --target-spacing: 4x a 512 px CT slice. A finer
# target would allocate gigabytes per case before cropping to the image size.
MAX_RESAMPLED_SIDE = 2048
# Spread (largest / smallest) of in-plane spacing or field of view above which `check`
# recommends --target-spacing.
SPREAD_LIMIT = 1.5


def header_geometry(paths: list[Path]) -> list[tuple[float, float, float, float]]:
    """(spacing_x, spacing_y, fov_x, fov_y) in mm of each image's in-plane axes, from
    the headers only, in the closest canonical orientation."""
    import nibabel as nib

    out = []
    for path in paths:
        img = nib.load(path)
        ornt = nib.orientations.io_orientation(img.affine)
        sizes = np.sqrt((np.asarray(img.affine)[:3, :3] ** 2).sum(axis=0))
        axis = [int(np.flatnonzero(ornt[:, 0] == k)[0]) for k in (0, 1)]
        sx, sy = (float(sizes[a]) for a in axis)
        out.append((sx, sy, sx * img.shape[axis[0]], sy * img.shape[axis[1]]))
    return out


def median_spacing(paths: list[Path]) -> float:
    """The median in-plane spacing (mm) over the images (``--target-spacing median``)."""
    geometry = header_geometry(paths)
    return round(float(np.median([g[k] for g in geometry for k in (0, 1)])), 4)


def dataset_median_spacing(data_dir: str | Path) -> float:
    """:func:`median_spacing` of a dataset folder's images."""
    from mbnas.data.formats import read_dataset

    return median_spacing([c.images[0] for c in read_dataset(data_dir).cases])


def spacing_lines(paths: list[Path], image_size: int = 128) -> list[str]:
    """What `mbnas check` prints: the spacing and field-of-view spread, and, when either
    spreads over :data:`SPREAD_LIMIT`, the recommended ``--target-spacing``."""
    geometry = np.asarray(header_geometry(paths))
    if not len(geometry):
        return []
    spacing, fov = geometry[:, :2].ravel(), geometry[:, 2:].ravel()
    lines = [f"in-plane spacing {spacing.min():.2f}-{spacing.max():.2f} mm "
             f"(median {np.median(spacing):.2f}), field of view {fov.min():.0f}-"
             f"{fov.max():.0f} mm"]
    spread = max(spacing.max() / spacing.min(), fov.max() / fov.min())
    if spread > SPREAD_LIMIT:
        median = float(np.median(spacing))
        fits = float(fov.max()) / image_size  # the largest field of view stays whole
        best = max(median, fits)
        why = ("the median spacing" if best == median else
               f"the largest field of view, {fov.max():.0f} mm, fits in {image_size} px; the "
               f"median spacing {median:.2f} mm would crop the larger scans to their central "
               f"{image_size * median:.0f} mm")
        lines.append(f"recommendation: the scans differ {spread:.1f}x in spacing or field of "
                     f"view, so resized to {image_size} px each they are seen at different "
                     f"scales; use --target-spacing {best:.2f} ({why})")
    return lines


def spacing_grid(shape: tuple[int, int], voxel: tuple[float, float],
                 target: float) -> tuple[int, int]:
    """In-plane grid of a slice of ``shape`` and ``voxel`` size resampled to ``target`` mm.

    Raises:
        ConfigError: The grid would be over :data:`MAX_RESAMPLED_SIDE` px on a side (checked
            before anything is allocated).
    """
    with np.errstate(over="ignore", divide="ignore"):
        sides = [float(np.float64(n) * v / target) for n, v in zip(shape, voxel, strict=True)]
    if not all(np.isfinite(sides)) or max(sides) > MAX_RESAMPLED_SIDE:
        smallest = max(n * v for n, v in zip(shape, voxel, strict=True)) / MAX_RESAMPLED_SIDE
        raise ConfigError(
            f"--target-spacing {target:g} mm would resample a {shape[0]} x {shape[1]} slice of "
            f"{voxel[0]:.3g} x {voxel[1]:.3g} mm to {' x '.join(f'{s:.3g}' for s in sides)} px;"
            f" at most {MAX_RESAMPLED_SIDE} px a side are allowed: use a target spacing of at "
            f"least {smallest:.3g} mm")
    return (max(1, round(sides[0])), max(1, round(sides[1])))


def crop_or_pad(src: np.ndarray, out: np.ndarray, fill: np.ndarray) -> None:
    """Centre ``src`` (..., H, W) in ``out`` (..., h, w): crop what overhangs, fill the rest.

    Args:
        src: Slices (Z, C, H, W) or labels (Z, H, W).
        out: Array of the same leading shape receiving them.
        fill: Pad value per channel (C,) for images, one value for labels.
    """
    if src.ndim == 4:
        out[...] = np.asarray(fill, out.dtype)[None, :, None, None]
    else:
        out[...] = np.asarray(fill, out.dtype).reshape(-1)[0]
    (sh, sw), (oh, ow) = src.shape[-2:], out.shape[-2:]
    # offsets of the common window in src (a) and in out (b), per axis
    ah, bh, nh = max(0, (sh - oh) // 2), max(0, (oh - sh) // 2), min(sh, oh)
    aw, bw, nw = max(0, (sw - ow) // 2), max(0, (ow - sw) // 2), min(sw, ow)
    out[..., bh:bh + nh, bw:bw + nw] = src[..., ah:ah + nh, aw:aw + nw]
