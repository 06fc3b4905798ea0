"""`mbnas evaluate --external DATA_DIR[:NAME]`: the evaluated models on data from elsewhere.

After the evaluation has trained every model on its folds and exported it as a model
folder (the ensemble of its fold x seed networks, with the training set's normalisation),
each external dataset is segmented case by case with exactly what `mbnas predict` does
(:class:`mbnas.inference.Segmenter`), and scored per case on the scan's original grid with
the metric functions of :mod:`mbnas.metrics`.

External data never reaches training: it is read only here, after training and export;
it is not preprocessed into the cache, not in any fold, and the normalisation applied to
it is the one recorded in the model folder (computed from the training cases only). An
external set whose channels or classes differ from the training set's is refused with
the differences listed. Results go to ``EVAL_DIR/external.json``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mbnas.data.check import load_case, voxel_sizes
from mbnas.data.formats import Dataset, read_dataset
from mbnas.errors import ConfigError, DatasetError
from mbnas.io import atomic_write_json
from mbnas.progress import track

EXTERNAL_FORMAT = "mbnas-external"


@dataclass(frozen=True)
class ExternalSet:
    """One external dataset: its folder and the name it is reported under."""

    data_dir: Path
    name: str


def parse_external(spec: str) -> ExternalSet:
    """``DATA_DIR`` or ``DATA_DIR:NAME`` (the name defaults to the folder's name).

    ``DATA_DIR`` may be an nnU-Net dataset ID or name under ``$nnUNet_raw``, as for search.
    """
    from mbnas.data.nnunet import resolve_dataset

    path, sep, name = spec.rpartition(":")
    if not sep or not path or "/" in name:
        path, name = spec, ""
    folder = resolve_dataset(path).resolve()
    return ExternalSet(folder, name or folder.name)


def parse_externals(specs: Sequence[str]) -> list[ExternalSet]:
    """Parse every ``--external``; refuse two sets of one name."""
    sets = [parse_external(s) for s in specs]
    names = [s.name for s in sets]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"two --external sets are named {dupes[0]}; name them with "
                          "DATA_DIR:NAME")
    return sets


def check_compatible(dataset: Dataset, channel_names: Sequence[str],
                     label_names: Mapping[int, str]) -> None:
    """Refuse an external dataset whose channels or classes differ from training's.

    Raises:
        ConfigError: listing every difference.
    """
    diffs = []
    if tuple(dataset.channel_names) != tuple(channel_names):
        diffs.append(f"channels {', '.join(dataset.channel_names)} instead of "
                     f"{', '.join(channel_names)}")
    theirs = {int(k): v for k, v in dataset.label_names.items()}
    ours = {int(k): v for k, v in label_names.items()}
    for k in sorted(set(theirs) | set(ours)):
        if theirs.get(k) != ours.get(k):
            diffs.append(f"label {k} is {theirs.get(k, 'absent')!r} instead of "
                         f"{ours.get(k, 'absent')!r}")
    if diffs:
        raise ConfigError(f"{dataset.root}: this external set does not match the training "
                          f"set: {'; '.join(diffs)}")


def check_externals(sets: Sequence[ExternalSet], channel_names: Sequence[str],
                    label_names: Mapping[int, str]) -> list[Dataset]:
    """Read every external set and check it matches (before anything is trained)."""
    datasets = []
    for s in sets:
        ds = read_dataset(s.data_dir)
        check_compatible(ds, channel_names, label_names)
        datasets.append(ds)
    return datasets


def score_external(dataset: Dataset, model_dir: Path, device: str,
                   tolerance_mm: float) -> list[dict[str, Any]]:
    """Segment every case of ``dataset`` with a model folder; per-case metrics.

    Returns:
        One dict per case: ``case``, ``site``, one entry per registered metric (its
        reduction over the foreground classes) and ``classes`` (the per-class values).
    """
    from mbnas.inference import Segmenter, load_model_folder
    from mbnas.metrics import case_metrics

    model = load_model_folder(model_dir)
    segmenter = Segmenter(model, device)
    out = []
    for case in dataset.cases:
        volume, problems = load_case(dataset, case)
        if volume is None:
            errors = "; ".join(str(p) for p in problems if p.is_error)
            raise DatasetError(f"external case {case.case_id}: {errors}")
        pred = segmenter.segment(volume.image, volume.affine)
        m = case_metrics(pred, volume.label, model.n_classes,
                         tuple(float(v) for v in voxel_sizes(volume.affine)), tolerance_mm)
        out.append({"case": case.case_id, "site": case.site, **m.means(),
                    "classes": {model.label_names.get(c, f"class {c}"):
                                {n: v[k] for n, v in m.values.items()}
                                for k, c in enumerate(m.classes)}})
    return out


def evaluate_external(path: Path, specs: Sequence[str], model_dirs: Mapping[str, Path],
                      channel_names: Sequence[str], label_names: Mapping[int, str],
                      device: str, tolerance_mm: float) -> Path:
    """Score every exported model on every external set; write them to ``path``
    (``EVAL_DIR/external.json``)."""
    sets = parse_externals(specs)
    datasets = check_externals(sets, channel_names, label_names)
    results: dict[str, Any] = {}
    with track("external sets", total=len(sets) * len(model_dirs), unit="model") as step:
        for s, ds in zip(sets, datasets, strict=True):
            models = {}
            for name, folder in model_dirs.items():
                models[name] = score_external(ds, Path(folder), device, tolerance_mm)
                step.advance(info=f"{name} on {s.name}")
            results[s.name] = {"data_dir": str(s.data_dir), "cases": len(ds.cases),
                               "models": models}
    atomic_write_json(path, {"format": EXTERNAL_FORMAT, "version": 1,
                             "tolerance_mm": tolerance_mm, "sets": results})
    return path


def read_external(path: Path) -> dict[str, Any]:
    """The ``sets`` of ``EVAL_DIR/external.json`` (``path``), or {} when there is none."""
    import json

    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text())
        if raw.get("format") != EXTERNAL_FORMAT:
            raise ValueError(f"format is {raw.get('format')!r}")
        return dict(raw["sets"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{path}: not readable ({exc})") from None
