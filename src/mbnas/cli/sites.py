"""Command-line flags for sites: ``--folds site``, ``--group-by site``, ``--sites FILE.csv``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mbnas.errors import ConfigError


def folds_value(text: str) -> int | str:
    """``--folds``: a number of folds, or ``site`` (one fold per held-out site)."""
    if text.strip().lower() == "site":
        return "site"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--folds takes a number or 'site', got {text!r}"
                                         ) from None


def add_site_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--group-by", choices=("site",), dest="group_by",
                   help="keep each site's cases together in one fold (with --folds K)")
    p.add_argument("--sites", dest="sites_file", metavar="FILE.csv",
                   help="case,site CSV giving every case's site (default: dataset.json)")


def resolve_split(args: argparse.Namespace, data_dir: str, settings: dict[str, Any]
                  ) -> None:
    """Put ``split`` and ``sites_file`` into ``settings``; turn ``--folds site`` into the
    number of sites so that the protocol's fold count is the number of folds run."""
    from mbnas.data.sites import dataset_sites, n_site_folds

    sites_file = getattr(args, "sites_file", None) or settings.get("sites_file")
    if sites_file is not None:
        settings["sites_file"] = sites_file = str(Path(sites_file).resolve())
    by_site = args.folds == "site" or settings.get("split") == "site"
    if by_site:
        if getattr(args, "group_by", None):
            raise ConfigError("--folds site already holds out one site per fold; "
                              "--group-by site is for --folds K")
        settings["split"] = "site"
        args.folds = n_site_folds(dataset_sites(data_dir, sites_file))
    elif getattr(args, "group_by", None) == "site":
        settings["split"] = "group-site"
    if settings.get("split", "case") != "case":
        dataset_sites(data_dir, sites_file)  # a bad sites file is refused before anything


def intensity_settings(name: str) -> dict[str, Any]:
    """``--intensity-augment off|robust`` as the protocol's ``intensity`` settings."""
    import dataclasses

    from mbnas.training.intensity import ROBUST, IntensityConfig

    return dataclasses.asdict(ROBUST if name == "robust" else IntensityConfig())
