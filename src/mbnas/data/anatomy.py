"""Synthetic anatomy for the phantoms: organ-like shapes, intensities, noise and bias.

Everything is drawn in the canonical RAS voxel grid (axis 0 towards the patient's right,
axis 1 anterior, axis 2 superior) from coordinates normalised to [-1, 1] per axis, so a
small grid is a coarser version of a large one. Shapes are ellipsoids deformed by smooth
random fields (a few random Fourier modes), which are cheap at any size and fully
determined by the generator passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

Grid = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class SiteEffect:
    """How one scanner differs from another: intensities, noise, bias and geometry.

    Attributes:
        scale: Multiplicative intensity scale (MR) or calibration slope (CT).
        offset: Additive intensity offset (CT, in HU).
        contrast: Multiplier on the difference between organs and surrounding tissue.
        noise: Multiplier on the noise standard deviation.
        bias: Multiplier on the strength of the smooth bias field.
        fov: In-plane field of view relative to the task's (the anatomy keeps its size,
            so a larger field of view shows more around it and coarser voxels).
        matrix: In-plane voxels relative to the requested shape at the same field of
            view (a finer or coarser resolution).
        thickness: Slice thickness in mm (None: the task's usual range).
    """

    scale: float = 1.0
    offset: float = 0.0
    contrast: float = 1.0
    noise: float = 1.0
    bias: float = 1.0
    fov: float = 1.0
    matrix: float = 1.0
    thickness: float | None = None


NEUTRAL_SITE = SiteEffect()


def draw_site(rng: np.random.Generator, task: str) -> SiteEffect:
    """A random scanner: MR intensities are arbitrary units, so they vary far more.

    The intensity effects are drawn first, so adding the geometric ones kept the
    intensities of earlier phantoms.
    """
    if task == "spleen":
        site = SiteEffect(scale=float(rng.uniform(0.97, 1.03)), offset=float(rng.uniform(-15, 15)),
                          contrast=float(rng.uniform(0.7, 1.3)), noise=float(rng.uniform(0.6, 1.8)))
        thickness = float(rng.choice([1.5, 2.5, 3.0, 5.0]))
    else:
        site = SiteEffect(scale=float(rng.uniform(0.5, 2.0)), offset=0.0,
                          contrast=float(rng.uniform(0.75, 1.25)),
                          noise=float(rng.uniform(0.5, 2.0)))
        thickness = float(rng.uniform(3.0, 4.5))
    return replace(site, bias=float(rng.uniform(0.3, 3.0)), fov=float(rng.uniform(0.85, 1.2)),
                   matrix=float(rng.choice([0.75, 1.0, 1.25])), thickness=thickness)


def grid(shape: tuple[int, int, int], fov: float = 1.0) -> Grid:
    """Broadcastable coordinates in [-1, 1]: shapes (X,1,1), (1,Y,1), (1,1,Z).

    ``fov`` widens (or narrows) the in-plane axes to [-fov, fov]: the anatomy keeps its
    size and the field of view around it changes.
    """
    ext = (fov, fov, 1.0)
    axes = [np.linspace(-e, e, n, dtype=np.float32) if n > 1 else np.zeros(1, np.float32)
            for n, e in zip(shape, ext)]
    return axes[0][:, None, None], axes[1][None, :, None], axes[2][None, None, :]


def smooth_field(rng: np.random.Generator, g: Grid, max_freq: float = 2.0, modes: int = 6,
                 planar: bool = False) -> np.ndarray:
    """A smooth random field of roughly unit standard deviation.

    Args:
        rng: Random generator (the only source of randomness).
        g: Grid from :func:`grid`.
        max_freq: Highest spatial frequency, in cycles over the [-1, 1] range.
        modes: Number of random Fourier modes summed.
        planar: Constant along axis 2 (returns shape (X, Y, 1)).
    """
    x, y, z = g
    out: np.ndarray = np.zeros((x.shape[0], y.shape[1], 1 if planar else z.shape[2]), np.float32)
    for _ in range(modes):
        w = rng.uniform(-max_freq, max_freq, 3) * np.pi
        phase = rng.uniform(0, 2 * np.pi)
        arg = np.float32(w[0]) * x + np.float32(w[1]) * y + np.float32(phase)
        out += np.sin(arg if planar else arg + np.float32(w[2]) * z)
    out *= np.float32(np.sqrt(2.0 / modes))
    return out


def blob(rng: np.random.Generator, g: Grid, center: tuple[float, float, float],
         radii: tuple[float, float, float], deform: float) -> np.ndarray:
    """A deformed ellipsoid: boolean mask of the grid's shape."""
    x, y, z = g
    r2 = ((x - center[0]) / radii[0]) ** 2 + ((y - center[1]) / radii[1]) ** 2
    r2 = r2 + ((z - center[2]) / radii[2]) ** 2
    bound = 1.0 + deform * np.clip(smooth_field(rng, g, max_freq=1.5), -2, 2)
    return r2 < bound * bound


def _body(rng: np.random.Generator, g: Grid, axes: tuple[float, float],
          fat_from: float) -> tuple[np.ndarray, np.ndarray]:
    """Body outline and subcutaneous fat ring, both (X, Y, 1)."""
    x, y, _ = g
    r = np.sqrt((x / axes[0]) ** 2 + (y / axes[1]) ** 2)
    wobble = 0.04 * smooth_field(rng, g, max_freq=1.5, planar=True)
    body = r < 1.0 + wobble
    return body, body & (r > fat_from + wobble)


def _finish(rng: np.random.Generator, img: np.ndarray, sigma: float) -> np.ndarray:
    """Partial-volume blur in-plane, then Gaussian noise of the given standard deviation."""
    from scipy.ndimage import gaussian_filter  # here: SciPy would slow `mbnas --help`

    img = gaussian_filter(img, sigma=(0.6, 0.6, 0.0))
    img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(sigma)
    return img


def spleen_case(rng: np.random.Generator, shape: tuple[int, int, int],
                site: SiteEffect) -> tuple[np.ndarray, np.ndarray]:
    """A contrast-enhanced abdominal CT in HU with the spleen labelled 1.

    Returns:
        image (X, Y, Z) int16 HU and label (X, Y, Z) uint8, in the canonical grid.
    """
    g = grid(shape, site.fov)
    x, y, _ = g
    body, fat = _body(rng, g, (0.88, 0.7), fat_from=0.88)
    tissue = np.float32(40.0 + rng.uniform(-5, 5))
    img = np.where(body, tissue, np.float32(-1000.0)) + np.zeros(shape, np.float32)
    img[np.broadcast_to(fat, shape)] = -100.0
    texture = smooth_field(rng, g, max_freq=3.0)
    img += np.where(np.broadcast_to(body, shape), 5.0 * texture, 0.0).astype(np.float32)
    spine = ((x / 0.12) ** 2 + ((y + 0.48) / 0.12) ** 2) < 1.0
    img[np.broadcast_to(spine & body, shape)] = 450.0
    liver = blob(rng, g, (0.35 + rng.uniform(-0.05, 0.05), 0.05, rng.uniform(-0.3, 0.1)),
                 (0.32, 0.38, 0.7), deform=0.2) & body & ~fat
    img[liver] = tissue + site.contrast * 25.0
    center = (-0.45 + rng.uniform(-0.08, 0.08), -0.15 + rng.uniform(-0.1, 0.1),
              rng.uniform(-0.25, 0.25))
    radii = (rng.uniform(0.14, 0.22), rng.uniform(0.2, 0.3), rng.uniform(0.3, 0.55))
    spleen = blob(rng, g, center, radii, deform=0.25) & body & ~fat & ~liver
    enhancement = np.float32(site.contrast * rng.uniform(55, 85))
    img[spleen] = tissue + enhancement + 8.0 * texture[spleen]
    # beam-hardening-like bias
    img += np.float32(12.0 * site.bias) * smooth_field(rng, g, max_freq=0.7)
    img = (img + 1000.0) * np.float32(site.scale) - 1000.0 + np.float32(site.offset)
    img = _finish(rng, img, sigma=12.0 * site.noise)
    hu = np.clip(np.rint(img), -1024, 3071).astype(np.int16)
    return hu, spleen.astype(np.uint8)


def prostate_case(rng: np.random.Generator, shape: tuple[int, int, int],
                  site: SiteEffect) -> tuple[np.ndarray, np.ndarray]:
    """A pelvic MR with T2 and ADC channels; labels 1 PZ (peripheral zone), 2 TZ.

    In about a quarter of the cases the peripheral zone is absent, as in some real scans.

    Returns:
        image (X, Y, Z, 2) float32 (T2, ADC) and label (X, Y, Z) uint8.
    """
    g = grid(shape, site.fov)
    x, y, _ = g
    body, fat = _body(rng, g, (0.92, 0.75), fat_from=0.8)
    # (air, fat, muscle, TZ, PZ) for T2 (arbitrary units) and ADC (1e-6 mm^2/s).
    t2_values = np.array([5, 700, 180, 400, 680], np.float32)
    adc_values = np.array([0, 250, 1300, 1000, 1700], np.float32)
    tissue = np.where(body, 2, 0) + np.zeros(shape, np.int8)
    tissue[np.broadcast_to(fat, shape)] = 1
    center = (rng.normal(0, 0.03), rng.uniform(-0.15, 0.0), rng.uniform(-0.15, 0.15))
    radii = (rng.uniform(0.22, 0.3), rng.uniform(0.17, 0.24), rng.uniform(0.4, 0.65))
    gland = blob(rng, g, center, radii, deform=0.15) & (tissue == 2)
    core_center = (center[0], center[1] + 0.3 * radii[1], center[2])
    core_radii = (radii[0] * rng.uniform(0.62, 0.78), radii[1] * rng.uniform(0.62, 0.78),
                  radii[2] * rng.uniform(0.62, 0.78))
    core = blob(rng, g, core_center, core_radii, deform=0.15)
    has_pz = rng.uniform() >= 0.25
    pz = gland & ~core & (y < center[1] + 0.25 * radii[1]) if has_pz else np.zeros(shape, bool)
    label = np.where(pz, 1, np.where(gland, 2, 0)).astype(np.uint8)
    tissue[label == 2] = 3
    tissue[label == 1] = 4
    rectum = ((x - center[0]) / 0.09) ** 2 + ((y - center[1] + radii[1] + 0.13) / 0.08) ** 2 < 1
    tissue[np.broadcast_to(rectum, shape) & (label == 0)] = 0
    texture = smooth_field(rng, g, max_freq=3.0)
    from scipy.ndimage import gaussian_filter  # here: SciPy would slow `mbnas --help`

    channels = []
    for values, noise, bias_amount in ((t2_values, 15.0, 0.25), (adc_values, 60.0, 0.03)):
        ref = values[2]
        contrasted = ref + np.float32(site.contrast) * (values - ref)
        contrasted[0] = values[0]
        img = contrasted[tissue] * (1.0 + np.float32(0.06) * texture)
        img *= np.exp(np.float32(bias_amount * site.bias) * smooth_field(rng, g, max_freq=0.6))
        img = gaussian_filter(img, sigma=(0.6, 0.6, 0.0))
        sigma = np.float32(noise * site.noise)
        # Magnitude images have Rician noise.
        real = img + rng.standard_normal(shape, dtype=np.float32) * sigma
        imag = rng.standard_normal(shape, dtype=np.float32) * sigma
        img = np.sqrt(real * real + imag * imag)
        if values is t2_values:
            img *= np.float32(site.scale)
        channels.append(img.astype(np.float32))
    return np.stack(channels, axis=-1), label
