"""`mbnas check`, `mbnas preprocess` and `mbnas phantom`: parse, call the data API, print."""

from __future__ import annotations

import argparse
from pathlib import Path

from mbnas.data.check import check_dataset
from mbnas.data.formats import Dataset, read_dataset, scan_dataset
from mbnas.data.nnunet import resolve_dataset
from mbnas.data.phantom import DEFAULT_SHAPE, FORMATS, TASKS, make_phantom
from mbnas.data.preprocess import (
    PreprocessConfig,
    cache_folder,
    check_cropped_labels,
    is_complete,
    preprocess,
)
from mbnas.data.slices import SliceData
from mbnas.errors import EXIT_DONE, EXIT_REFUSED


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the data commands to the `mbnas` parser."""
    p = subparsers.add_parser(
        "check", help="validate a dataset folder (MSD v1 or nnU-Net v2)",
        description="List every problem of a dataset, one line each, then a summary. "
                    "Exit code 2 if there is any error.")
    p.add_argument("data_dir", metavar="DATA_DIR", type=Path,
                   help="MSD or nnU-Net dataset folder, or an nnU-Net dataset ID or name")
    p.add_argument("--sites", dest="sites_file", metavar="FILE.csv",
                   help="case,site CSV to check and count instead of dataset.json's sites")
    p.add_argument("--image-size", type=int, default=128, metavar="N",
                   help="the protocol's image size the spacing recommendation is for "
                        "(default 128, the paper's; the quick protocol and the README's CT "
                        "recipe train at 32)")
    p.set_defaults(handler=run_check)

    p = subparsers.add_parser(
        "preprocess", help="reorient, slice, resize and normalise a dataset into a cache",
        description="Preprocess a dataset into 2D slices under CACHE/<key>/; a cache made "
                    "from the same files and settings is reused.")
    p.add_argument("data_dir", metavar="DATA_DIR", type=Path,
                   help="MSD or nnU-Net dataset folder, or an nnU-Net dataset ID or name")
    p.add_argument("--cache", type=Path, metavar="DIR",
                   help="folder for preprocessed data (one subfolder per inputs/settings; "
                        "default $MBNAS_CACHE or ~/.cache/mbnas, as for every command)")
    p.add_argument("--size", type=int, default=128, help="in-plane size (default 128)")
    p.add_argument("--target-spacing", type=float, default=0.0, metavar="MM",
                   help="resample in-plane to this spacing, then crop (a window placed to "
                        "keep each case's labels) or pad to the size (default 0: resize "
                        "every slice to the size)")
    p.add_argument("--allow-cropped-labels", action="store_true",
                   help="go on when the window drops all of a case's labelled voxels")
    p.add_argument("--quiet", action="store_true", help="no per-case progress lines")
    p.set_defaults(handler=run_preprocess)

    p = subparsers.add_parser(
        "phantom", help="write a synthetic dataset (spleen CT or prostate MR)",
        description="Write a synthetic dataset in MSD v1 (or nnU-Net v2) layout that "
                    "exercises the same code as real data.")
    p.add_argument("--task", required=True, choices=TASKS,
                   help="which MSD task the phantom imitates: spleen (CT) or prostate (MRI)")
    p.add_argument("--cases", required=True, type=int, metavar="N", help="number of cases")
    p.add_argument("--out", required=True, type=Path, metavar="DIR",
                   help="dataset folder to write")
    p.add_argument("--sites", type=int, default=1, metavar="K",
                   help="number of scanner groups (default 1)")
    p.add_argument("--seed", type=int, default=0, metavar="S",
                   help="random seed of the phantom (default 0)")
    p.add_argument("--shape", type=int, nargs=3, default=list(DEFAULT_SHAPE),
                   metavar=("X", "Y", "Z"),
                   help="in-plane size and most slices per case (default %(default)s)")
    p.add_argument("--min-slices", type=int, default=None, metavar="N",
                   help="fewest slices per case (default Z // 2)")
    p.add_argument("--format", dest="fmt", choices=FORMATS, default="msd",
                   help="folder layout: MSD (default) or nnU-Net raw")
    p.set_defaults(handler=run_phantom)


def run_check(args: argparse.Namespace) -> int:
    args.data_dir = resolve_dataset(args.data_dir)
    try:
        problems = check_dataset(args.data_dir)
        dataset, _ = scan_dataset(args.data_dir)
    except Exception as exc:
        print(f"ERROR {args.data_dir}: unexpected failure ({type(exc).__name__}: {exc})")
        return EXIT_REFUSED
    for problem in problems:
        print(problem)
    n_err = sum(p.is_error for p in problems)
    n_warn = len(problems) - n_err
    what = (f"{len(dataset.cases)} case(s), {dataset.format} format" if dataset is not None
            else "dataset.json unusable")
    verdict = "FAILED" if n_err else "OK"
    print(f"{verdict}: {args.data_dir}: {n_err} error(s), {n_warn} warning(s) ({what})")
    if dataset is not None:
        from mbnas.data.check import dataset_summary

        for text in dataset_summary(dataset):
            print(text)
    line = sites_line(dataset, args.sites_file) if dataset is not None else None
    print(line or "sites: none recorded")
    if dataset is not None and not n_err:
        from mbnas.data.spacing import spacing_lines

        for line in spacing_lines([c.images[0] for c in dataset.cases], args.image_size):
            print(line)
    return EXIT_REFUSED if n_err else EXIT_DONE


def sites_line(dataset: Dataset, sites_file: Path | None) -> str | None:
    """``sites: site0 (3 cases), ...`` from dataset.json or a sites file (None: no sites)."""
    from mbnas.data.sites import read_sites_csv, site_counts

    if sites_file is not None:
        sites: dict[str, str | None] = dict(read_sites_csv(
            sites_file, [c.case_id for c in dataset.cases]))
    else:
        sites = {c.case_id: c.site for c in dataset.cases}
    counts = site_counts(sites)
    if not counts:
        return None
    unset = sum(1 for s in sites.values() if s is None)
    return ("sites: " + ", ".join(f"{k} ({n} case{'s' if n != 1 else ''})"
                                  for k, n in counts.items())
            + (f"; {unset} case(s) without a site" if unset else ""))


def run_preprocess(args: argparse.Namespace) -> int:
    from mbnas.commands.common.dataset import default_cache_dir

    args.data_dir = resolve_dataset(args.data_dir)
    config = PreprocessConfig(size=args.size, target_spacing=args.target_spacing)
    dataset = read_dataset(args.data_dir)
    cache = args.cache or default_cache_dir()
    reused = is_complete(cache_folder(dataset, cache, config))
    log = None if args.quiet else (lambda line: print(f"  {line}", flush=True))
    folder = preprocess(args.data_dir, cache, config, log=log)
    data = SliceData.load(folder)
    check_cropped_labels(data, config, args.allow_cropped_labels,
                         log=lambda line: print(f"  {line}", flush=True))
    channels = ", ".join(f"{n} (CT)" if ct else n
                         for n, ct in zip(data.channel_names, dataset.ct_channels, strict=True))
    classes = ", ".join(f"{k} {v}" for k, v in data.label_names.items())
    print(f"{dataset.name} ({dataset.format}): {len(data.cases)} cases, {len(data.images)} "
          f"slices of {data.in_channels} x {args.size} x {args.size}")
    print(f"channels: {channels}; classes: {classes}")
    print(f"cache: {folder} ({'reused, nothing to do' if reused else 'written'})")
    return 0


def run_phantom(args: argparse.Namespace) -> int:
    out = make_phantom(args.out, args.task, args.cases, args.seed, sites=args.sites,
                       shape=tuple(args.shape), fmt=args.fmt, min_slices=args.min_slices)
    sites = f", {args.sites} sites" if args.sites > 1 else ""
    print(f"wrote a {args.task} phantom: {args.cases} cases{sites}, {args.fmt} format, "
          f"to {out}")
    return 0
