"""Dataset folders: Medical Segmentation Decathlon v1 and nnU-Net v2 raw layouts.

Both layouts keep training images in ``imagesTr/`` and labels in ``labelsTr/`` next to a
``dataset.json``. They differ in how that file names things:

* MSD v1: ``modality`` {"0": "CT"}, ``labels`` id -> name, and an explicit ``training``
  list of {"image", "label"} paths. A multi-modal image is one 4D NIfTI file with the
  channels on the last axis (Task05 Prostate: T2 and ADC).
* nnU-Net v2: ``channel_names`` {"0": "CT"}, ``labels`` name -> id and ``file_ending``;
  cases are found by file name, ``imagesTr/CASE_0000.nii.gz`` (one file per channel) and
  ``labelsTr/CASE.nii.gz``.

Reading only looks at ``dataset.json`` and the folder listings; the volumes themselves are
checked by :mod:`mbnas.data.check`. macOS ``._*`` files, which ship inside the real MSD
tarballs, are skipped.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mbnas.data.problems import Problem, error, raise_if_errors, warning

Format = Literal["msd", "nnunet"]
NIFTI_ENDINGS = (".nii.gz", ".nii")
_CHANNEL_FILE = re.compile(r"^(?P<case>.+)_(?P<channel>\d{4})$")


@dataclass(frozen=True)
class CaseFiles:
    """The files of one training case.

    Attributes:
        case_id: Case identifier (file name without ending, and without the channel
            suffix for nnU-Net).
        images: MSD: one file holding all channels; nnU-Net: one file per channel.
        label: The label map file.
        site: Acquisition site or scanner group, when ``dataset.json`` records one
            (MSD: a ``"site"`` key per ``training`` entry; nnU-Net: a top-level
            ``"sites"`` mapping case id -> site).
    """

    case_id: str
    images: tuple[Path, ...]
    label: Path
    site: str | None = None


@dataclass(frozen=True)
class Dataset:
    """What a dataset folder declares: format, channels, classes and cases.

    Attributes:
        root: The dataset folder.
        format: ``"msd"`` or ``"nnunet"``.
        name: The ``name`` from ``dataset.json`` (the folder name if absent).
        channel_names: One name per input channel, e.g. ``("T2", "ADC")``.
        label_names: Class id -> name, ids 0..n-1 with 0 the background.
        cases: The training cases, in natural order of their ids.
        file_ending: The file ending of the volumes (``.nii.gz`` or ``.nii``).
    """

    root: Path
    format: Format
    name: str
    channel_names: tuple[str, ...]
    label_names: dict[int, str]
    cases: tuple[CaseFiles, ...]
    file_ending: str = ".nii.gz"

    @property
    def n_channels(self) -> int:
        return len(self.channel_names)

    @property
    def ct_channels(self) -> tuple[bool, ...]:
        """Whether each channel is CT (MSD modality "CT", nnU-Net channel name "CT")."""
        return tuple(name.strip().casefold() == "ct" for name in self.channel_names)

    @property
    def json_path(self) -> Path:
        return self.root / "dataset.json"


def read_dataset(data_dir: str | Path) -> Dataset:
    """Read a dataset folder's ``dataset.json`` and file listing.

    Args:
        data_dir: An MSD v1 task folder (e.g. ``Task09_Spleen``) or an nnU-Net v2 raw
            dataset folder.

    Returns:
        The declared dataset. The volumes are not opened; use
        :func:`mbnas.data.check.check_dataset` to validate them.

    Raises:
        DatasetError: listing every structural error (missing or invalid
            ``dataset.json``, missing files, unmatched images and labels, ...).
    """
    dataset, problems = scan_dataset(data_dir)
    raise_if_errors(data_dir, problems)
    assert dataset is not None  # scan_dataset returns None only with an error
    return dataset


def scan_dataset(data_dir: str | Path) -> tuple[Dataset | None, list[Problem]]:
    """Like :func:`read_dataset` but returns the problems instead of raising.

    Cases whose files are missing are left out of the returned dataset (their problems
    are reported). The dataset is None when ``dataset.json`` itself is unusable.
    """
    root = Path(data_dir)
    if not root.is_dir():
        return None, [error(root, "no such dataset folder")]
    meta, problems = _read_json(root / "dataset.json")
    if meta is None:
        return None, problems
    if "channel_names" in meta or "modality" in meta:
        scan = _scan_nnunet if "channel_names" in meta else _scan_msd
        dataset, problems = scan(root, meta)
        if dataset is not None:  # symlinks: followed inside the root, refused outside
            from mbnas.data.symlinks import drop_escaping_cases

            dataset, found = drop_escaping_cases(dataset, root)
            problems += found
        if dataset is not None and not dataset.cases and not any(p.is_error for p in problems):
            problems.append(error(root / "dataset.json", "no training cases found"))
        return dataset, problems
    return None, [
        error(
            root / "dataset.json",
            "has neither 'modality' (MSD v1) nor 'channel_names' (nnU-Net v2); "
            "not a dataset.json of a known format",
        )
    ]


def natural_key(text: str) -> tuple[Any, ...]:
    """Sort key that puts ``spleen_2`` before ``spleen_10``."""
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text))


def strip_ending(name: str) -> str | None:
    """The file name without its NIfTI ending, or None if it is not a NIfTI name."""
    for ending in NIFTI_ENDINGS:
        if name.endswith(ending) and len(name) > len(ending):
            return name[: -len(ending)]
    return None


def _read_json(path: Path) -> tuple[dict[str, Any] | None, list[Problem]]:
    if not path.is_file():
        return None, [error(path, "missing; every dataset folder needs a dataset.json")]
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        return None, [error(path, "not a text file; expected JSON")]
    except (ValueError, RecursionError) as exc:  # too deep, or an integer over 4300 digits
        return None, [error(path, f"invalid JSON: {exc}")]
    except OSError as exc:
        return None, [error(path, f"cannot be read: {exc.strerror or exc}")]
    if not isinstance(meta, dict):
        return None, [error(path, "must hold a JSON object")]
    return meta, []


def _missing_keys(path: Path, meta: dict[str, Any], keys: tuple[str, ...]) -> list[Problem]:
    missing = [k for k in keys if k not in meta]
    if not missing:
        return []
    return [error(path, f"missing key(s): {', '.join(missing)}")]


def _channels(path: Path, value: Any, key: str) -> tuple[tuple[str, ...], list[Problem]]:
    """Parse {"0": "T2", "1": "ADC"} into ("T2", "ADC")."""
    if not isinstance(value, dict) or not value:
        return (), [error(path, f"'{key}' must be a non-empty object like {{\"0\": \"CT\"}}")]
    try:
        by_index = {int(k): str(v) for k, v in value.items()}
    except (TypeError, ValueError):
        return (), [error(path, f"'{key}' keys must be channel numbers \"0\", \"1\", ...")]
    if sorted(by_index) != list(range(len(by_index))):
        return (), [error(path, f"'{key}' keys must be 0..{len(by_index) - 1}, "
                                f"got {sorted(by_index)}")]
    return tuple(by_index[i] for i in range(len(by_index))), []


def _labels(path: Path, value: Any, name_to_id: bool) -> tuple[dict[int, str], list[Problem]]:
    """Parse MSD {"0": "background"} or nnU-Net {"background": 0} into id -> name."""
    if not isinstance(value, dict) or not value:
        return {}, [error(path, "'labels' must be a non-empty object")]
    pairs = [(v, k) for k, v in value.items()] if name_to_id else list(value.items())
    labels: dict[int, str] = {}
    for raw_id, name in pairs:
        if isinstance(raw_id, list):
            return {}, [error(path, f"label '{name}' is a region (list of ids); "
                                    "region-based labels are not supported")]
        try:
            label_id = int(raw_id)
            if isinstance(raw_id, float) and raw_id != label_id:
                raise ValueError
        except (TypeError, ValueError):
            return {}, [error(path, f"label id {raw_id!r} of '{name}' is not an integer")]
        if label_id in labels:
            return {}, [error(path, f"label id {label_id} is declared twice")]
        labels[label_id] = str(name)
    ids = sorted(labels)
    if ids != list(range(len(ids))):
        return {}, [error(path, f"labels are not consecutive from 0: declared ids "
                                f"{', '.join(map(str, ids))}; renumber them 0..{len(ids) - 1} "
                                "(0 = background) in the label files and dataset.json")]
    if len(ids) > 256:
        return {}, [error(path, f"{len(ids)} labels declared; at most 256 are supported")]
    return {i: labels[i] for i in ids}, []


def _num_training(path: Path, meta: dict[str, Any], found: int,
                  what: str = "training case(s) were found") -> list[Problem]:
    value = meta.get("numTraining")
    if value is None:
        return []
    if not isinstance(value, int) or isinstance(value, bool):
        return [error(path, f"'numTraining' must be an integer, got {value!r}")]
    if value != found:
        return [error(path, f"numTraining is {value} but {found} {what}")]
    return []


def _listing(folder: Path) -> list[Path]:
    """Files in ``folder``, skipping hidden and macOS ``._*`` resource files."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def _inside(root: Path, rel: Any, json_path: Path, what: str) -> tuple[Path | None, list[Problem]]:
    """Resolve a path from dataset.json, refusing anything that leaves the dataset folder."""
    if not isinstance(rel, str) or not rel:
        return None, [error(json_path, f"{what} must be a path string, got {rel!r}")]
    norm = os.path.normpath(rel)
    if os.path.isabs(norm) or norm == ".." or norm.startswith(".." + os.sep):
        return None, [error(json_path, f"{what} {rel!r} points outside the dataset folder "
                                       f"{root}; paths must stay inside it")]
    return root / norm, []


def _scan_msd(root: Path, meta: dict[str, Any]) -> tuple[Dataset | None, list[Problem]]:
    jpath = root / "dataset.json"
    problems = _missing_keys(jpath, meta, ("modality", "labels", "training", "numTraining"))
    channels, p = _channels(jpath, meta.get("modality"), "modality")
    problems += p
    labels, p = _labels(jpath, meta.get("labels"), name_to_id=False)
    problems += p if "labels" in meta else []
    training = meta.get("training", [])
    if not isinstance(training, list):
        problems.append(error(jpath, "'training' must be a list of {image, label} entries"))
        training = []

    cases: list[CaseFiles] = []
    seen: dict[str, int] = {}
    referenced: set[Path] = set()
    for i, entry in enumerate(training):
        if not isinstance(entry, dict) or "image" not in entry or "label" not in entry:
            problems.append(error(jpath, f"training entry #{i} must have 'image' and 'label'"))
            continue
        image, p1 = _inside(root, entry["image"], jpath, f"training entry #{i} image")
        label, p2 = _inside(root, entry["label"], jpath, f"training entry #{i} label")
        problems += p1 + p2
        referenced.update(p for p in (image, label) if p is not None)
        if image is None or label is None:
            continue
        case_id = strip_ending(image.name)
        if case_id is None:
            problems.append(error(image, f"not a NIfTI file name (expected {NIFTI_ENDINGS})"))
            continue
        if case_id in seen:
            problems.append(error(jpath, f"duplicate case id '{case_id}': training entries "
                                         f"#{seen[case_id]} and #{i} ({entry['image']})"))
            continue
        seen[case_id] = i
        ok = True
        if not image.is_file():
            ok = False
            problems.append(error(image, f"missing: image of case '{case_id}' listed in "
                                         "dataset.json does not exist"
                                         + (" (label without image)" if label.is_file() else "")))
        if not label.is_file():
            ok = False
            problems.append(error(label, f"missing: label of case '{case_id}' listed in "
                                         "dataset.json does not exist"
                                         + (" (image without label)" if image.is_file() else "")))
        site = entry.get("site")
        if ok:
            cases.append(CaseFiles(case_id, (image,), label, None if site is None else str(site)))

    for folder in ("imagesTr", "labelsTr"):
        for path in _listing(root / folder):
            if path not in referenced:
                problems.append(warning(path, "stray file: not part of any case listed in "
                                              "dataset.json 'training'; it is ignored"))
    problems += _num_training(jpath, meta, len(training), "entries are listed in 'training'")
    if not channels or not labels:
        return None, problems
    cases.sort(key=lambda c: natural_key(c.case_id))
    name = str(meta.get("name") or root.name)
    return Dataset(root, "msd", name, channels, labels, tuple(cases)), problems


def _scan_nnunet(root: Path, meta: dict[str, Any]) -> tuple[Dataset | None, list[Problem]]:
    jpath = root / "dataset.json"
    problems = _missing_keys(jpath, meta, ("channel_names", "labels", "numTraining",
                                           "file_ending"))
    channels, p = _channels(jpath, meta.get("channel_names"), "channel_names")
    problems += p
    labels, p = _labels(jpath, meta.get("labels"), name_to_id=True)
    problems += p if "labels" in meta else []
    ending = meta.get("file_ending", ".nii.gz")
    if ending not in NIFTI_ENDINGS:
        problems.append(error(jpath, f"file_ending {ending!r} is not supported; "
                                     f"use one of {', '.join(NIFTI_ENDINGS)}"))
        return None, problems
    sites = meta.get("sites", {})
    if not isinstance(sites, dict):
        problems.append(error(jpath, "'sites' must map case ids to site names"))
        sites = {}

    images: dict[str, dict[int, Path]] = {}
    for path in _listing(root / "imagesTr"):
        stem = path.name[: -len(ending)] if path.name.endswith(ending) else None
        match = _CHANNEL_FILE.match(stem) if stem else None
        if match is None:
            problems.append(warning(path, f"stray file: not named CASE_XXXX{ending}; ignored"))
            continue
        channel = int(match["channel"])
        if channels and channel >= len(channels):
            problems.append(error(path, f"wrong number of channels: channel {channel} found but "
                                        f"dataset.json declares {len(channels)} "
                                        f"({', '.join(channels)})"))
            continue
        images.setdefault(match["case"], {})[channel] = path
    labels_found: dict[str, Path] = {}
    for path in _listing(root / "labelsTr"):
        if not path.name.endswith(ending) or len(path.name) == len(ending):
            problems.append(warning(path, f"stray file: not named CASE{ending}; ignored"))
            continue
        labels_found[path.name[: -len(ending)]] = path

    cases: list[CaseFiles] = []
    for case_id in sorted(set(images) | set(labels_found), key=natural_key):
        files = images.get(case_id, {})
        label = labels_found.get(case_id)
        if label is None:
            first = files[min(files)]
            problems.append(error(first, f"image without label: {root / 'labelsTr'}/"
                                         f"{case_id}{ending} does not exist"))
            continue
        if not files:
            problems.append(error(label, f"label without image: no {root / 'imagesTr'}/"
                                         f"{case_id}_XXXX{ending} files"))
            continue
        missing = [i for i in range(len(channels)) if i not in files]
        for i in missing:
            problems.append(error(root / "imagesTr" / f"{case_id}_{i:04d}{ending}",
                                  f"missing: wrong number of channels for case '{case_id}' "
                                  f"(dataset.json declares {len(channels)})"))
        if channels and not missing:
            site = sites.get(case_id)
            cases.append(CaseFiles(case_id, tuple(files[i] for i in range(len(channels))), label,
                                   None if site is None else str(site)))
    n_found = len(set(images) | set(labels_found))
    problems += _num_training(jpath, meta, n_found)
    if not channels or not labels:
        return None, problems
    name = str(meta.get("name") or root.name)
    return Dataset(root, "nnunet", name, channels, labels, tuple(cases), ending), problems
