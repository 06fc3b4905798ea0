"""The settings of `mbnas demo`, apart from its driver so the CLI reads them without torch."""

from __future__ import annotations

from dataclasses import dataclass

from mbnas.spaces.registry import DEFAULT_SPACE

__all__ = ["DemoSettings"]

@dataclass(frozen=True)
class DemoSettings:
    """What `mbnas demo` runs; every field has a command-line flag.

    Attributes:
        budget: Evaluations of the search.
        cases: Phantom cases written.
        epochs: Training epochs of each run (the quick protocol's other settings stay).
        folds: Cross-validation folds of the search.
        threads: CPU threads per run (None: the usable CPUs).
        cache_dir: Preprocessing cache (None: ``$MBNAS_CACHE``, else ``OUT/cache``).
        seed: Seed of the phantom, the folds and the search.
        space: The space searched: ``mbnas`` (2D slices, the paper's) or a 3D space
            (``mbnas-3d``: patches of :data:`PATCH_3D`, :data:`ITERATIONS_3D` steps per
            epoch, the plan of ``mbnas.data.planning``).
    """

    budget: int = 6
    cases: int = 8
    epochs: int = 6
    folds: int = 2
    threads: int | None = None
    cache_dir: str | None = None
    seed: int = 0
    space: str = DEFAULT_SPACE


#: The 3D demo's patch (x, y, z voxels) and training steps per epoch: the phantom's
#: volumes are about 64 x 64 x 12-24 voxels at 0.8 x 0.8 x 2.5-5 mm. Six steps (was 8)
#: bring the demo to about two minutes of CPU time.
PATCH_3D = (32, 32, 8)
ITERATIONS_3D = 6
#: Overlap of the validation windows: none (nnU-Net: a half). Validating every case whole
#: each epoch was 40% of a 3D demo run's time at a quarter's overlap; without overlap it
#: tiles each volume once (a third of the windows).
OVERLAP_3D = 0.0
