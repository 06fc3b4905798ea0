"""Four real patients of the lung CT sample, for end-to-end tests that need real scans
but not all six: the four cropped pycerr cases (203 slices). The two 512 x 512 full-field
scans are left out; decompressing and resampling them costs a tiny search more than
training on them (tests/data covers them)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

SUBSET = ("pycerr_pat_1", "pycerr_pat_2", "pycerr_pat_3", "pycerr_pat_4")


def lung_subset(sample: Path, out: Path) -> Path:
    """Copy the :data:`SUBSET` cases of ``sample`` (an MSD folder) into ``out``, with a
    ``dataset.json`` listing only them, and return ``out``. Copies, not links: a dataset
    refuses links that leave its folder."""
    dataset = json.loads((sample / "dataset.json").read_text())
    cases = [c for c in dataset["training"] if Path(c["image"]).name.split(".")[0] in SUBSET]
    assert len(cases) == len(SUBSET), "the lung sample lacks a pycerr case"
    for case in cases:
        for key in ("image", "label"):
            target = out / case[key]
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(sample / case[key], target)
    for licence in sample.glob("LICENSE_*"):
        shutil.copyfile(licence, out / licence.name)
    dataset.pop("mbnas_import", None)  # its file hashes are of the whole sample
    dataset.update(training=cases, numTraining=len(cases),
                   description=f"{len(cases)} of the lung CT sample's cases (tests)")
    (out / "dataset.json").write_text(json.dumps(dataset, indent=2))
    return out
