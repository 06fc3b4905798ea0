"""How long `mbnas demo` takes, alone or beside CPU-bound neighbours.

Runs ``mbnas demo`` N times into fresh folders (the phantom and its cache are rebuilt
each time, as after an install), optionally with K busy-loop neighbour processes running
the whole time, and prints the median wall time and the load average. The issue's
targets: under 2 minutes on a quiet 2-core machine, under 4 with two neighbours.

    python benchmarks/demo_time.py --repeats 3 --neighbours 0
    python benchmarks/demo_time.py --repeats 3 --neighbours 2
    python benchmarks/demo_time.py --repeats 1 --neighbours 2 -- --threads 2

Arguments after ``--`` go to `mbnas demo` (e.g. ``--threads``, ``--budget``).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _busy() -> None:
    while True:
        pass


def run_once(extra: list[str]) -> float:
    with tempfile.TemporaryDirectory(prefix="mbnas-demo-") as tmp:
        env = {k: v for k, v in os.environ.items() if k != "MBNAS_CACHE"}
        src = Path(__file__).resolve().parents[1] / "src"
        env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")])
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "mbnas.cli", "demo", "--out",
                               str(Path(tmp) / "demo"), *extra], env=env,
                              capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(f"mbnas demo failed ({done.returncode}):\n{done.stderr[-2000:]}")
        return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--neighbours", type=int, default=0,
                        help="busy-loop processes running beside the demo")
    args, extra = parser.parse_known_args()
    extra = [a for a in extra if a != "--"]
    neighbours = [multiprocessing.Process(target=_busy, daemon=True)
                  for _ in range(args.neighbours)]
    for p in neighbours:
        p.start()
    try:
        times, loads = [], []
        for i in range(args.repeats):
            times.append(run_once(extra))
            loads.append(os.getloadavg()[0])
            print(f"run {i + 1}/{args.repeats}: {times[-1]:.1f} s (load {loads[-1]:.2f})",
                  flush=True)
    finally:
        for p in neighbours:
            p.terminate()
    target = 240 if args.neighbours else 120  # the targets, quiet and beside two
    print(f"mbnas demo {' '.join(extra)}: median {statistics.median(times):.1f} s over "
          f"{len(times)} run(s), {args.neighbours} busy neighbour(s), {os.cpu_count()} "
          f"CPUs, 1-min load average after each run "
          f"{', '.join(f'{x:.2f}' for x in loads)}; "
          f"ratio to the {target // 60}-minute target {statistics.median(times) / target:.2f}")


if __name__ == "__main__":
    main()
