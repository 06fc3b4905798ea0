"""The last lines of ``benchmarks/device_check.sh``: the figures, from its JSON files.

Run as a script: ``python benchmarks/device_summary.py DIR`` where DIR holds
``throughput.json`` (``train_throughput.py``), ``search_cost.json``
(``gpu_search_cost.py``) and ``evaluation.json`` (``paper_evaluation.py``); a missing
file (a step that failed or ran out of time) is said, not guessed.

Estimated device-hours of a Spleen paper search (150 evaluations x 15 runs x 50 epochs)
are given six ways: one run at a time; at the best rate of ``--runs-per-device`` /
``--fuse``; and each of those with ``--fidelity`` and with ``--fidelity`` plus
``--race``. The random networks of the space are what a search trains (2.5-4.4x the
U-Net's FLOPs), so the estimate is their mean. The fidelity and race factors
(full-protocol-equivalent trainings over the plain search's) are not measured here:
they are the search's behaviour, measured on the CPU by ``benchmarks/fidelity.py`` (see
``docs/fidelity_search.md``) and passed as ``--fidelity-factor`` / ``--race-factor``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_search_cost import spleen_hours

#: Full-protocol-equivalent trainings with --fidelity 0.5,1 over those without, and with
#: --race on top: (full + 0.5 x low-rung trainings) / plain, over 3 seeds of
#: benchmarks/fidelity.py on the Spleen phantom (docs/fidelity_search.md): (20 + 12) / 48
#: and (16 + 12) / 48. Those searches did not end at the same best network.
FIDELITY_FACTOR = 0.67
FIDELITY_RACE_FACTOR = 0.58


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def summary(folder: Path, fidelity: float, race: float) -> list[str]:
    lines = []
    throughput = _read(folder / "throughput.json")
    cost = _read(folder / "search_cost.json")
    evaluation = _read(folder / "evaluation.json")
    if throughput:
        lines.append(f"images/s: U-Net preset {throughput['engine_images_per_s']:.1f} "
                     f"training images/s ({throughput['size']} px, batch "
                     f"{throughput['batch']}, {throughput['device']})")
        lines.append(f"FLOP/s fraction: {throughput['flops_fraction']:.2f} of the matmul "
                     f"FLOP/s measured in the same run "
                     f"({throughput['matmul_flops'] / 1e12:.2f} TFLOP/s)")
    else:
        lines.append("images/s and FLOP/s fraction (train_throughput.py): not measured "
                     "(the step failed or ran out of time)")
    if evaluation:
        lines.append(f"one paper-protocol evaluation of the U-Net preset ({evaluation['slices']} "
                     f"slices, 41-case phantom): {evaluation['evaluation_seconds'] / 3600:.2f} "
                     f"h ({evaluation['runs_trained']} runs timed, "
                     f"{evaluation['training_images_per_s']:.0f} training images/s)")
    else:
        lines.append("one paper-protocol evaluation (paper_evaluation.py): not measured")
    randoms = [n for n in (cost or {}).get("networks", []) if n["network"] != "U-Net preset"]
    single = [spleen_hours(n["rates"]["1"]) for n in randoms if n["rates"].get("1")]
    best = [n["spleen_hours"] for n in randoms if n.get("spleen_hours")]
    if cost and single and best:
        fractions = [n["flops_fraction"] for n in (cost or {}).get("networks", [])
                     if n.get("flops_fraction")]
        lines.append(f"FLOP/s fraction of the search's networks (gpu_search_cost.py, best "
                     f"rate): {min(fractions):.2f}-{max(fractions):.2f}")
        one, many = sum(single) / len(single), sum(best) / len(best)
        lines.append("estimated GPU-hours of a Spleen paper search (150 evaluations, mean "
                     f"of {len(randoms)} random networks): one run at a time {one:,.0f} h; "
                     f"--fidelity {one * fidelity:,.0f} h; --fidelity --race "
                     f"{one * race:,.0f} h")
        lines.append(f"  with --runs-per-device/--fuse at the best rate: {many:,.0f} h; "
                     f"--fidelity {many * fidelity:,.0f} h; --fidelity --race "
                     f"{many * race:,.0f} h (fidelity factors {fidelity:.2f} and {race:.2f} "
                     "from benchmarks/fidelity.py on the CPU phantom)")
    else:
        lines.append("estimated GPU-hours (gpu_search_cost.py): not measured")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--fidelity-factor", type=float, default=FIDELITY_FACTOR)
    parser.add_argument("--race-factor", type=float, default=FIDELITY_RACE_FACTOR)
    args = parser.parse_args()
    for line in summary(args.folder, args.fidelity_factor, args.race_factor):
        print(line)


if __name__ == "__main__":
    main()
