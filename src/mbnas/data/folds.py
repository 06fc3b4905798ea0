"""Patient-level cross-validation folds, computed once with a seed and kept in splits.json.

Folds are made of cases (patients), never of slices, so no patient's slices are in both
the training and the validation part of a fold. As in nnU-Net, the splits are saved the
first time and reused afterwards; ``splits.json`` may also be nnU-Net's own
``splits_final.json`` (a plain list of {"train", "val"}).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mbnas.data.formats import natural_key
from mbnas.errors import ConfigError
from mbnas.io import atomic_write_json

SPLITS_FORMAT = "mbnas-splits"


@dataclass(frozen=True)
class Fold:
    """One cross-validation fold.

    Attributes:
        train: Case ids to train on, in natural order.
        val: Case ids to validate on, in natural order.
        held_out_site: For leave-site-out folds, the site that ``val`` is made of.
    """

    train: tuple[str, ...]
    val: tuple[str, ...]
    held_out_site: str | None = None


class _HasSite(Protocol):
    @property
    def case_id(self) -> str: ...

    @property
    def site(self) -> str | None: ...


def _sorted_unique(case_ids: Iterable[str]) -> list[str]:
    ids = [str(c) for c in case_ids]
    duplicates = sorted(c for c, n in Counter(ids).items() if n > 1)
    if duplicates:
        raise ConfigError(f"duplicate case ids: {', '.join(duplicates[:10])}")
    return sorted(ids, key=natural_key)


def make_splits(case_ids: Iterable[str], n_folds: int = 5, seed: int = 0) -> list[Fold]:
    """Split cases into ``n_folds`` folds; every case is in exactly one validation part.

    The result depends only on the set of case ids, ``n_folds`` and ``seed`` (not on the
    order the ids are given in). Validation parts differ in size by at most one case.

    Raises:
        ConfigError: for duplicate ids or fewer cases than folds.
    """
    ids = _sorted_unique(case_ids)
    if n_folds < 2:
        raise ConfigError(f"cross-validation needs at least 2 folds, got {n_folds}")
    if len(ids) < n_folds:
        raise ConfigError(f"{n_folds} folds need at least {n_folds} cases, got {len(ids)}")
    order = np.random.default_rng(seed).permutation(len(ids))
    folds = []
    for part in np.array_split(order, n_folds):
        val = {ids[i] for i in part}
        folds.append(Fold(train=tuple(c for c in ids if c not in val),
                          val=tuple(c for c in ids if c in val)))
    return folds


def leave_site_out_splits(cases: Iterable[_HasSite]) -> list[Fold]:
    """One fold per site: validate on that site's cases, train on all others.

    Args:
        cases: Objects with ``case_id`` and ``site`` (e.g. ``SliceData.cases`` or
            ``Dataset.cases``).

    Raises:
        ConfigError: when a case has no site or there are fewer than 2 sites.
    """
    by_site: dict[str, list[str]] = {}
    for case in cases:
        if case.site is None:
            raise ConfigError(f"case {case.case_id} has no site; leave-site-out folds need a "
                              "site for every case (a 'site' per training entry in dataset.json)")
        by_site.setdefault(str(case.site), []).append(case.case_id)
    if len(by_site) < 2:
        raise ConfigError(f"leave-site-out folds need at least 2 sites, found {len(by_site)}")
    all_ids = _sorted_unique(c for ids in by_site.values() for c in ids)
    folds = []
    for site in sorted(by_site, key=natural_key):
        val = set(by_site[site])
        folds.append(Fold(train=tuple(c for c in all_ids if c not in val),
                          val=tuple(c for c in all_ids if c in val), held_out_site=site))
    return folds


def save_splits(path: str | Path, folds: Sequence[Fold], seed: int | None = None) -> None:
    """Write folds to ``path`` atomically."""
    atomic_write_json(path, {
        "format": SPLITS_FORMAT, "n_folds": len(folds), "seed": seed,
        "folds": [{"train": list(f.train), "val": list(f.val),
                   **({"held_out_site": f.held_out_site} if f.held_out_site else {})}
                  for f in folds],
    })


def read_splits(path: str | Path) -> list[Fold]:
    """Read a splits file (ours, or nnU-Net's list of {"train", "val"})."""
    path = Path(path)
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
        items = raw["folds"] if isinstance(raw, dict) else raw
        if not isinstance(items, list):
            raise TypeError("'folds' is not a list")
        return [Fold(train=tuple(str(c) for c in f["train"]), val=tuple(str(c) for c in f["val"]),
                     held_out_site=f.get("held_out_site")) for f in items]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{path}: not a readable splits file ({type(exc).__name__}: {exc}); "
                          "delete it to make new splits") from exc


def load_or_create_splits(path: str | Path, case_ids: Iterable[str], n_folds: int = 5,
                          seed: int = 0) -> list[Fold]:
    """Reuse the folds in ``path``, or make them with :func:`make_splits` and save them.

    An existing file is the source of truth: it is reused as long as it covers exactly
    these cases with ``n_folds`` folds (its seed is kept for information only).

    Raises:
        ConfigError: when an existing file does not match the cases or ``n_folds``, or
            is not a valid splits file.
    """
    path = Path(path)
    ids = _sorted_unique(case_ids)
    if not path.exists():
        folds = make_splits(ids, n_folds, seed)
        save_splits(path, folds, seed)
        return folds
    folds = read_splits(path)
    check_splits(path, folds, ids, n_folds)
    return folds


def check_splits(path: str | Path, folds: Sequence[Fold], ids: Iterable[str],
                 n_folds: int | None = None) -> None:
    """Refuse folds that cannot be a cross-validation of the cases ``ids``.

    Every fold needs training and validation cases, only cases of the dataset, and no
    case in both parts; together the folds must be a K-fold cover: every case of the
    dataset validated in exactly one fold and trained on in all others.

    Raises:
        ConfigError: naming ``path``, the fold and the cases.
    """
    if not folds:
        raise ConfigError(f"{path}: holds no folds")
    if n_folds is not None and len(folds) != n_folds:
        raise ConfigError(f"{path} holds {len(folds)} folds but {n_folds} were asked for; "
                          "use the same number of folds, or delete the file to make new splits")
    for k, fold in enumerate(folds):
        for part, cases in (("training", fold.train), ("validation", fold.val)):
            if not cases:
                raise ConfigError(f"{path}: fold {k} has no {part} cases; every fold needs "
                                  "both")
        both = sorted(set(fold.train) & set(fold.val), key=natural_key)
        if both:
            raise ConfigError(f"{path}: fold {k} has case(s) {_few(both)} in both its train "
                              "and val parts")
    _check_cover(Path(path), folds, sorted(ids, key=natural_key))


def _few(ids: Sequence[str]) -> str:
    return f"{', '.join(ids[:5])}{' ...' if len(ids) > 5 else ''}"


def _check_cover(path: Path, folds: Sequence[Fold], ids: Sequence[str]) -> None:
    wanted = set(ids)
    in_file = {c for f in folds for c in (*f.train, *f.val)}
    missing = sorted(wanted - in_file, key=natural_key)
    extra = sorted(in_file - wanted, key=natural_key)
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"{len(missing)} case(s) of the dataset are not in it "
                         f"({_few(missing)})")
        if extra:
            first = next(k for k, f in enumerate(folds) if extra[0] in (*f.train, *f.val))
            parts.append(f"{len(extra)} case(s) in it are not in the dataset "
                         f"({_few(extra)}; fold {first} names {extra[0]})")
        raise ConfigError(f"{path} was made for other cases: {'; '.join(parts)}. Use the "
                          "dataset it was made for, or delete the file to make new splits")
    validated: dict[str, list[int]] = {c: [] for c in ids}
    for k, fold in enumerate(folds):
        for c in fold.val:
            validated[c].append(k)
        left_out = sorted(wanted - set(fold.train) - set(fold.val), key=natural_key)
        if left_out:
            raise ConfigError(f"{path}: fold {k} neither trains nor validates on case(s) "
                              f"{_few(left_out)}; in a K-fold cover every fold has every "
                              "case; delete the file to make new splits")
    twice = [c for c in ids if len(validated[c]) > 1]
    never = [c for c in ids if not validated[c]]
    if twice or never:
        what = (f"case {twice[0]} is validated in folds "
                f"{', '.join(map(str, validated[twice[0]]))}" if twice
                else f"case(s) {_few(never)} are never validated")
        raise ConfigError(f"{path}: not a K-fold cover ({what}); every case must be in "
                          "exactly one validation fold; delete the file to make new splits")
