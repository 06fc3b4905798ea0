"""Read an architecture from a JSON file or a name, for the command line and scripts.

Accepted specs:

* a JSON file holding a genotype dict, a baseline dict, or a result dict with a
  ``"genotype"`` (or ``"architecture"``) key, such as the search's ``best.json``
  (``{"genotype": {...}, "score": ...}``);
* ``preset:NAME`` (e.g. ``preset:unet``, the U-Net genotype of the MB-NAS space) or
  ``baseline:NAME`` (``baseline:unet``, ``baseline:resunet``: smp networks);
* an authors' 40-digit genotype string (:mod:`mbnas.spaces.mbnas.authors`);
* a bare name. :func:`load_architecture` tries baselines first, so ``unet`` there is
  smp's U-Net; :func:`load_genotype` only knows presets, so ``unet`` there is the
  preset genotype.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from mbnas.errors import ConfigError, GenotypeError
from mbnas.spaces.mbnas.authors import from_authors_string, looks_like_authors_string
from mbnas.spaces.mbnas.baselines import (
    BASELINES,
    OLD_BASELINE_NAMES,
    Baseline,
    architecture_from_dict,
)
from mbnas.spaces.mbnas.genotype import Genotype
from mbnas.spaces.mbnas.presets import PRESETS, preset

_RESULT_KEYS = ("genotype", "architecture")


def _read_file(path: Path) -> Genotype | Baseline:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise GenotypeError(f"{path} is not a text file (not UTF-8); expected JSON") from None
    try:
        data: Any = json.loads(text)
    except (ValueError, RecursionError) as exc:  # also too deep, or an integer over 4300 digits
        raise GenotypeError(f"{path} is not valid JSON: {exc}") from None
    if isinstance(data, dict):
        for key in _RESULT_KEYS:
            if key in data and "nodes" not in data:
                data = data[key]
                break
    try:
        return architecture_from_dict(data)
    except GenotypeError as exc:
        raise GenotypeError(f"{path}: {exc}") from None


def _looks_like_path(spec: str) -> bool:
    return spec.endswith(".json") or "/" in spec or "\\" in spec


def load_architecture(spec: str | Path) -> Genotype | Baseline:
    """A genotype or baseline from a file, ``preset:NAME``, ``baseline:NAME`` or a name.

    Raises:
        ConfigError: If a file cannot be read.
        GenotypeError: If a file does not hold an architecture, or the name is unknown;
            the message names the file or lists the valid names.
    """
    text = str(spec)
    path = Path(text)
    if path.is_file():
        return _read_file(path)
    if looks_like_authors_string(text):
        return from_authors_string(text)
    if text.startswith("preset:"):
        return preset(text.removeprefix("preset:"))
    if text.startswith("baseline:"):
        return Baseline(text.removeprefix("baseline:"))
    if isinstance(spec, Path) or _looks_like_path(text):
        raise ConfigError(f"architecture file {text} does not exist")
    if text in BASELINES:
        return Baseline(text)
    if text in PRESETS:  # "unet" is the preset; smp's U-Net is "smp-unet"
        return PRESETS[text]
    if text in OLD_BASELINE_NAMES:
        warnings.warn(f"architecture {text!r} is now called {OLD_BASELINE_NAMES[text]!r}",
                      FutureWarning, stacklevel=2)
        return Baseline(text)
    raise GenotypeError(
        f"unknown architecture {text!r}: not a file, a baseline ({', '.join(BASELINES)}) "
        f"or a preset ({', '.join(PRESETS)}; write preset:NAME)"
    )


def load_genotype(spec: str | Path) -> Genotype:
    """A genotype from a file, ``preset:NAME`` or a preset name.

    Raises:
        ConfigError: If a file cannot be read.
        GenotypeError: If the file or name does not give a genotype (a baseline is not
            a genotype).
    """
    text = str(spec)
    if text in PRESETS and not Path(text).is_file():
        return PRESETS[text]
    if looks_like_authors_string(text) and not Path(text).is_file():
        return from_authors_string(text)
    if not Path(text).is_file() and not text.startswith(("preset:", "baseline:")) \
            and not isinstance(spec, Path) and not _looks_like_path(text):
        raise GenotypeError(
            f"unknown genotype {text!r}: not a file or a preset ({', '.join(PRESETS)})"
        )
    architecture = load_architecture(spec)
    if not isinstance(architecture, Genotype):
        raise GenotypeError(
            f"{text} is {architecture.describe()}, not a genotype of the MB-NAS space"
        )
    return architecture
