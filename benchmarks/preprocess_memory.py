"""Peak memory of `mbnas preprocess` on a spleen-sized phantom, as a ratio to 4 GB.

The phantom has the geometry of MSD Task09 Spleen by default: 41 CT cases of 512 x 512
in-plane and 31 to 168 slices. Use ``--cases`` and ``--size`` (and ``--max-slices``) to
shrink it. This script stays small itself and runs the phantom generation and the
preprocessing each in a fresh child process: Linux keeps a process's peak RSS across
``exec``, so a child started by a large parent would report the parent's peak.

    python benchmarks/preprocess_memory.py --cases 8 --size 256
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGET = 4 * 1024**3


def _peak_rss() -> int:
    """Peak resident set size of this process in bytes (Linux reports KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True,
                         text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def make(data: str, cases: int, size: int, min_slices: int, max_slices: int) -> None:
    from mbnas.data.phantom import make_phantom

    start = time.perf_counter()
    make_phantom(data, "spleen", cases, seed=0, shape=(size, size, max_slices),
                 min_slices=min_slices)
    print(json.dumps({"seconds": time.perf_counter() - start, "peak": _peak_rss()}))


def worker(data: str, cache: str, size: int) -> None:
    from mbnas.data.preprocess import PreprocessConfig, preprocess
    from mbnas.data.slices import SliceData

    baseline = _peak_rss()
    start = time.perf_counter()
    folder = preprocess(data, cache, PreprocessConfig(size=size))
    seconds = time.perf_counter() - start
    peak = _peak_rss()
    n_slices = len(SliceData.load(folder).images)
    print(json.dumps({"peak": peak, "baseline": baseline, "seconds": seconds,
                      "slices": n_slices}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=41)
    parser.add_argument("--size", type=int, default=512, help="phantom in-plane size")
    parser.add_argument("--max-slices", type=int, default=168)
    parser.add_argument("--min-slices", type=int, default=31)
    parser.add_argument("--out-size", type=int, default=128, help="preprocessing size")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keep the phantom and cache here (default: a temporary folder)")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--make", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker[0], args.worker[1], int(args.worker[2]))
        return
    if args.make:
        make(args.make[0], *(int(v) for v in args.make[1:]))
        return

    with tempfile.TemporaryDirectory() as tmp:
        root = args.workdir or Path(tmp)
        data = root / f"spleen_{args.cases}x{args.size}x{args.min_slices}-{args.max_slices}"
        if not (data / "dataset.json").exists():
            made = _child("--make", str(data), str(args.cases), str(args.size),
                          str(args.min_slices), str(args.max_slices))
            print(f"phantom: {args.cases} cases of {args.size}x{args.size}x"
                  f"{args.min_slices}-{args.max_slices} in {made['seconds']:.0f} s")
        with tempfile.TemporaryDirectory(dir=root, prefix="cache.") as cache:
            result = _child("--worker", str(data), cache, str(args.out_size))
    mib = 1024**2
    print(f"preprocess: {result['slices']} slices to {args.out_size}x{args.out_size} "
          f"in {result['seconds']:.0f} s")
    print(f"peak RSS: {result['peak'] / mib:.0f} MiB (at start, before torch is imported: "
          f"{result['baseline'] / mib:.0f} MiB)")
    print(f"ratio to 4 GB: {result['peak'] / BUDGET:.3f}")


if __name__ == "__main__":
    main()
