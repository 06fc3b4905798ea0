"""Sites (scanners, hospitals) as data: where each case's site comes from, and site folds.

A case's site comes from ``dataset.json`` (a ``site`` per training entry in MSD layout, a
``sites`` mapping in nnU-Net layout, as phantoms write them) or from a ``case,site`` CSV
file given with ``--sites FILE.csv``, which then replaces the dataset's. The CSV must list
every case of the dataset exactly once and nothing else.

Site-aware folds (``mbnas search/evaluate --folds site`` or ``--group-by site``):

* ``site``: one fold per site, validating on that site's cases and training on the
  others (:func:`mbnas.data.folds.leave_site_out_splits`), so the score is held-out-site
  Dice;
* ``group-site``: K folds, each site's cases kept together in one fold.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from mbnas.data.folds import (
    Fold,
    check_splits,
    leave_site_out_splits,
    read_splits,
    save_splits,
)
from mbnas.data.formats import natural_key, read_dataset
from mbnas.data.slices import SliceData
from mbnas.errors import ConfigError

#: How cross-validation folds are made: of cases, one per site, or K keeping sites whole.
SPLITS = ("case", "site", "group-site")


def check_split(split: str) -> None:
    """Refuse an unknown way of making folds."""
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")


def read_sites_csv(path: str | Path, case_ids: Iterable[str]) -> dict[str, str]:
    """Read a ``case,site`` CSV file (a header line ``case,site`` is optional).

    Raises:
        ConfigError: naming the case, for a case of the dataset missing from the file, a
            case in the file that the dataset does not have, a case listed twice, an
            empty site, or an unreadable file.
    """
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = [r for r in csv.reader(f) if r and any(x.strip() for x in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"{path}: cannot read the sites file ({exc})") from None
    if rows and [x.strip().lower() for x in rows[0]] == ["case", "site"]:
        rows = rows[1:]
    wanted = set(case_ids)
    sites: dict[str, str] = {}
    for n, row in enumerate(rows, start=1):
        if len(row) != 2 or not row[1].strip():
            raise ConfigError(f"{path}: row {n} is not 'case,site': {','.join(row)}")
        case, site = row[0].strip(), row[1].strip()
        if case in sites:
            raise ConfigError(f"{path}: case {case} is listed twice")
        if case not in wanted:
            raise ConfigError(f"{path}: case {case} is not a case of the dataset")
        sites[case] = site
    missing = sorted(wanted - set(sites), key=natural_key)
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ConfigError(f"{path}: case {missing[0]}{more} of the dataset has no site")
    return sites


def dataset_sites(data_dir: str | Path, sites_file: str | Path | None = None
                  ) -> dict[str, str | None]:
    """Case id -> site of a dataset folder: from ``sites_file`` if given, else its own."""
    dataset = read_dataset(data_dir)
    ids = [c.case_id for c in dataset.cases]
    if sites_file is not None:
        return dict(read_sites_csv(sites_file, ids))
    return {c.case_id: c.site for c in dataset.cases}


def site_counts(sites: Mapping[str, str | None]) -> dict[str, int]:
    """Cases per site, in natural order of the site names (cases without one left out)."""
    counts = Counter(str(s) for s in sites.values() if s is not None)
    return {s: counts[s] for s in sorted(counts, key=natural_key)}


def with_sites(data: SliceData, sites: Mapping[str, str]) -> SliceData:
    """The same slices with each case's site replaced (from a sites file)."""
    cases = tuple(replace(c, site=sites[c.case_id]) for c in data.cases)
    return SliceData(images=data.images, labels=data.labels, case_index=data.case_index,
                     slice_index=data.slice_index, cases=cases, label_names=data.label_names,
                     channel_names=data.channel_names)


def n_site_folds(sites: Mapping[str, str | None]) -> int:
    """The number of leave-site-out folds (one per site).

    Raises:
        ConfigError: naming a case without a site, or for fewer than two sites.
    """
    return len(leave_site_out_splits(_Case(c, s) for c, s in sites.items()))


class _Case:
    def __init__(self, case_id: str, site: str | None) -> None:
        self.case_id, self.site = case_id, site


def grouped_splits(sites: Mapping[str, str | None], n_folds: int, seed: int) -> list[Fold]:
    """``n_folds`` folds that keep every site's cases together.

    Sites are taken largest first (ties in a seeded random order) and each goes to the
    fold with the fewest cases so far, so the folds are as even as whole sites allow.

    Raises:
        ConfigError: for a case without a site or fewer sites than folds.
    """
    by_site: dict[str, list[str]] = {}
    for case, site in sites.items():
        if site is None:
            raise ConfigError(f"case {case} has no site; --group-by site needs a site for "
                              "every case (dataset.json or --sites FILE.csv)")
        by_site.setdefault(str(site), []).append(case)
    if n_folds < 2 or len(by_site) < n_folds:
        raise ConfigError(f"{n_folds} folds grouped by site need at least {n_folds} sites, "
                          f"found {len(by_site)}")
    names = sorted(by_site, key=natural_key)
    tie = np.random.default_rng(seed).permutation(len(names))
    order = sorted(range(len(names)), key=lambda i: (-len(by_site[names[i]]), tie[i]))
    parts: list[list[str]] = [[] for _ in range(n_folds)]
    for i in order:
        smallest = min(range(n_folds), key=lambda k: (len(parts[k]), k))
        parts[smallest] += by_site[names[i]]
    everyone = sorted(sites, key=natural_key)
    return [Fold(train=tuple(c for c in everyone if c not in set(p)),
                 val=tuple(sorted(p, key=natural_key))) for p in parts]


def load_or_create_site_splits(path: str | Path, sites: Mapping[str, str | None], split: str,
                               n_folds: int, seed: int) -> list[Fold]:
    """Site-aware folds, saved to ``path`` the first time and reused afterwards.

    Args:
        path: The run folder's ``splits.json``.
        sites: Case id -> site of every case.
        split: ``"site"`` (leave-site-out, the held-out site recorded per fold) or
            ``"group-site"`` (``n_folds`` folds keeping sites whole).
        n_folds: Folds asked for (for ``site``: the number of sites).
        seed: Seed of the ``group-site`` assignment.

    Raises:
        ConfigError: when an existing file does not match, or the sites do not allow
            the folds.
    """
    path = Path(path)
    if split == "site":
        folds = leave_site_out_splits(_Case(c, s) for c, s in sites.items())
    elif split == "group-site":
        folds = grouped_splits(sites, n_folds, seed)
    else:
        raise ConfigError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    if not path.exists():
        save_splits(path, folds, seed)
        return folds
    saved = read_splits(path)
    if len(saved) != len(folds):
        raise ConfigError(f"{path} holds {len(saved)} folds but {len(folds)} were asked for; "
                          "delete the file to make new splits")
    check_splits(path, saved, sites)
    return saved


def whole_site_warnings(val_folds: Sequence[Sequence[str]], sites: Mapping[str, str | None]
                        ) -> list[str]:
    """Patient-level folds (``--folds K``) that validate on every case of a site.

    Such a fold trains without that site, so its score is held-out-site Dice while the
    other folds' are not: the mean mixes two questions. Sites of one case are left out
    (any fold holding it holds the whole site), as are datasets of fewer than two sites.

    Returns:
        One line per (fold, site), naming ``--group-by site``.
    """
    names = {s for s in sites.values() if s is not None}
    if len(names) < 2:
        return []
    out = []
    for site in sorted(names, key=natural_key):
        cases = {c for c, s in sites.items() if s == site}
        if len(cases) < 2:
            continue
        out += [f"fold {k} validates on every case of site {site!r} ({len(cases)} cases): "
                "it trains without that site and so scores held-out-site Dice, unlike the "
                "other folds; pass --group-by site to keep every site whole in one fold "
                "(or --folds site for leave-site-out folds)"
                for k, val in enumerate(val_folds) if cases <= set(val)]
    return out


def fold_sites(folds: Sequence[Fold]) -> list[str | None]:
    """The held-out site of each fold (None for folds that are not leave-site-out)."""
    return [f.held_out_site for f in folds]
