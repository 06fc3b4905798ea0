"""`mbnas sample` and `mbnas import`: real scans into MSD folders (parse, call, print)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mbnas.errors import EXIT_DONE


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the real-data commands to the `mbnas` parser."""
    from mbnas.data.sample import SAMPLES

    p = subparsers.add_parser(
        "sample", help="build a real labelled CT sample (6 lung-tumour cases) as MSD",
        description="Build a sample of real scans as an MSD folder. lung-ct: 4 lung-cancer "
                    "CT crops with RTSTRUCT tumour contours from the pycerr 2.5.1 wheel and "
                    "2 full-field lung CT from the pyradiomics 3.0.1 sdist. The two archives "
                    "are fetched with `pip download` (never installed) into CACHE/downloads "
                    "and checked against pinned SHA-256; nothing but the package registry "
                    "is reached, and a warm cache works offline. Cases 1-4 are CC BY-NC 3.0 "
                    "(non-commercial).")
    p.add_argument("name", choices=SAMPLES, help="which sample")
    p.add_argument("--out", required=True, type=Path, metavar="DIR",
                   help="dataset folder to write")
    p.add_argument("--cache", type=Path, metavar="DIR",
                   help="where the archives are kept (default $MBNAS_CACHE or ~/.cache/mbnas)")
    p.set_defaults(handler=run_sample)

    p = subparsers.add_parser(
        "import", help="convert DICOM series with RTSTRUCT contours into an MSD dataset",
        description="Convert DICOM data into an MSD dataset folder. Every problem is listed, "
                    "one line each, naming its file; any error refuses the import.")
    kinds = p.add_subparsers(dest="kind", required=True, metavar="KIND")
    d = kinds.add_parser(
        "dicom-rt", help="CT/MR series + RTSTRUCT, one patient per folder",
        description="Each folder under SOURCE that holds one CT or MR series and one "
                    "RTSTRUCT file is one case. Each --roi name becomes one label.")
    d.add_argument("source", metavar="SOURCE", type=Path,
                   help="folder of patient folders (or one patient folder)")
    d.add_argument("--out", required=True, type=Path, metavar="DIR",
                   help="dataset folder to write")
    d.add_argument("--roi", required=True, metavar="NAME[,NAME..]",
                   help="ROIs to import, one label each, matched case-insensitively; "
                        "LABEL=ALIAS|ALIAS names a label and the ROI names it takes "
                        "(e.g. tumour=GTV-1|GTV1,lung)")
    d.add_argument("--site", metavar="NAME", help="site recorded for every case")
    d.set_defaults(handler=run_import)


def run_sample(args: argparse.Namespace) -> int:
    from mbnas.commands.common.dataset import default_cache_dir
    from mbnas.data.sample import NON_COMMERCIAL, make_sample

    print(f"licence: {NON_COMMERCIAL}", flush=True)
    out, written = make_sample(args.name, args.out, args.cache or default_cache_dir(),
                               say=lambda line: print(line, flush=True))
    print(f"{'wrote' if written else 'already there, nothing to do:'} sample {args.name} "
          f"(6 cases, provenance.json) at {out}")
    return EXIT_DONE


def run_import(args: argparse.Namespace) -> int:
    from mbnas.data.dicom_rt import import_dicom_rt, parse_rois

    rois = parse_rois(args.roi)
    out, problems, checks = import_dicom_rt(args.source, args.out, rois, site=args.site)
    for problem in problems:
        print(problem)
    cases = len({c.case_id for c in checks})
    worst = max((c.difference for c in checks), default=0.0)
    print(f"wrote {out}: {cases} case(s), labels {', '.join(r.label for r in rois)}; "
          f"mask volumes within {100 * worst:.1f} % of the contour areas")
    return EXIT_DONE
