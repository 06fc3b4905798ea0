"""The longest time a command prints nothing, as a user outside a terminal sees it.

Runs one command with stdout and stderr on a pipe (as under sbatch, nohup or
``> log.txt``), stamps each line as it arrives, and prints the wall time, the number of
lines and the longest silence with the lines either side of it. Issue 23's target: no
step silent for over a minute (with ``MBNAS_PROGRESS_SECONDS`` at its default of 60).

    python benchmarks/longest_silence.py -- mbnas search DATA --protocol paper --estimate
    python benchmarks/longest_silence.py --timeout 600 -- mbnas evaluate RUN --out EVAL

``--timeout`` stops the command (the figures so far are printed; a silence still open
at the stop counts).
"""

from __future__ import annotations

import argparse
import subprocess
import threading
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--timeout", type=float, default=None,
                        help="stop the command after this many seconds")
    parser.add_argument("command", nargs=argparse.REMAINDER,
                        help="the command, after --")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command after --")
    start = time.monotonic()
    lines: list[tuple[float, str]] = []
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1)

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append((time.monotonic() - start, line.rstrip("\n")))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        rc = proc.wait(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = proc.wait()
        print(f"stopped after {args.timeout:.0f} s")
    reader.join(timeout=5)
    wall = time.monotonic() - start
    stamps = [0.0, *(t for t, _ in lines), wall]
    gaps = [(b - a, i) for i, (a, b) in enumerate(zip(stamps, stamps[1:]))]
    gap, at = max(gaps)
    before = lines[at - 1][1] if at >= 1 else "(the start)"
    after = lines[at][1] if at < len(lines) else "(the end)"
    print(f"command: {' '.join(command)}")
    print(f"exit code {rc}, wall {wall:.1f} s, {len(lines)} lines")
    print(f"longest silence: {gap:.1f} s ({gap / max(wall, 1e-9):.2f} of the wall time)")
    print(f"  after:  {before[:150]}")
    print(f"  before: {after[:150]}")


if __name__ == "__main__":
    main()
