"""The authors' local-search neighbourhood at one start, against mbnas's.

Run as a script with a checkout of the authors' code (GPL; read, never copied here)::

    python benchmarks/authors_probes.py --authors P3GOMEA-MIS/py_src \\
        --start 0000100020003000300030003000200110010001

Their local search (``src_GOMEA/``) probes every other value of every digit of the
40-digit string, from the alphabet the MB-NAS options are inferred from (depth options
1 2 3 4 4 4 4 3 2 1 per node, 4 blocks, 3 convolutions, skips 0-2 on nodes 3-10): 84
probes. Each is built raw, without ``Individual::verify``. This script builds each probe
in their class ``NAS_WNet_blocks_convs`` (a forward pass at 64x64) and sorts it:

  - crash: their class fails to build or run it (their fitness scores it 0);
  - duplicate: the same network (parameter shapes, wiring, scaling) as the start or an
    earlier probe;
  - evaluated by mbnas: a new network that is one of mbnas's neighbours (one search
    variable changed, ``SearchSpace.neighbours``);
  - unreachable in one mbnas move: a new network mbnas reaches only by changing two
    variables (e.g. a depth change that silently drops a dangling skip).

Each crash or duplicate costs the authors' search an evaluation; mbnas skips them free.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import sys
from typing import Any

import torch
from torch import nn

from mbnas.errors import GenotypeError
from mbnas.spaces.mbnas import from_authors_string, get_space

DEPTH_OPTIONS = (1, 2, 3, 4, 4, 4, 4, 3, 2, 1)
KERNEL_OF_DIGIT = {0: 3, 1: 5, 2: 7, 3: 1}


def digit_options(position: int) -> range:
    """The alphabet's values of digit ``position`` (node, then depth/block/conv/skip)."""
    node, kind = divmod(position, 4)
    return range((DEPTH_OPTIONS[node], 4, 3, 1 if node < 2 else 3)[kind])


def authors_network(authors_class: Any, text: str) -> tuple:
    """Build and run ``text`` in the authors' class, as their initialize_network does;
    return a signature that is equal for equal networks."""
    digits = [int(ch) for ch in text]
    depth, blocks, skips = digits[0::4], digits[1::4], digits[3::4]
    kernels = [[KERNEL_OF_DIGIT[d]] * 2 for d in digits[2::4]]
    with contextlib.redirect_stdout(io.StringIO()):  # their class prints its layout
        net = authors_class(
            1, 32, 2, 10, 2, 2, nn.Conv2d, nn.InstanceNorm2d, {"eps": 1e-5, "affine": True},
            nn.Dropout2d, {"p": 0, "inplace": True}, nn.LeakyReLU, {"inplace": True}, False,
            False, None, [[2, 2]] * 10, kernels, False, True, True, depth=depth,
            skip_connects=skips, block_types=blocks).eval()
        with torch.no_grad():
            net(torch.zeros(1, 1, 64, 64))
    return (tuple((n, tuple(p.shape)) for n, p in net.named_parameters()),
            tuple(tuple(net.connections[i]["skip_from"]) for i in sorted(net.connections)),
            tuple(net.network[i]["scaling"] for i in sorted(net.network)))


def classify(authors_class: Any, start: str) -> tuple[collections.Counter, list, int]:
    """(counts per kind, the probes other than evaluated ones, mbnas's neighbours)."""
    space = get_space("mbnas")
    neighbours = {g.key for g in space.neighbours(from_authors_string(start))}
    seen = {authors_network(authors_class, start): "the start"}
    counts: collections.Counter = collections.Counter()
    notes = []
    for position in range(len(start)):
        for value in digit_options(position):
            if value == int(start[position]):
                continue
            probe = start[:position] + str(value) + start[position + 1:]
            try:
                signature = authors_network(authors_class, probe)
            except Exception as exc:
                kind, why = "crash", f"{type(exc).__name__}: {str(exc).splitlines()[0][:60]}"
            else:
                kind, why = ("duplicate", f"= {seen[signature]}") if signature in seen \
                    else ("new", "")
                seen.setdefault(signature, probe)
            if kind == "new":
                try:
                    genotype = from_authors_string(probe)
                    reached = space.contains(genotype) and genotype.key in neighbours
                except GenotypeError:
                    reached = False
                kind = "evaluated by mbnas" if reached else "unreachable in one mbnas move"
            counts[kind] += 1
            if kind != "evaluated by mbnas":
                notes.append((position // 4 + 1, "dbcs"[position % 4], value, kind, why))
    return counts, notes, len(neighbours)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--authors", required=True, help="the authors' py_src folder")
    parser.add_argument("--start", default="0000100020003000300030003000200110010001",
                        help="40-digit start string (default: mbnas's U-Net preset)")
    args = parser.parse_args()
    sys.path.insert(0, args.authors)
    from unet.models.NAS_WNet_blocks_convs import NAS_WNet_blocks_convs

    counts, notes, n_neighbours = classify(NAS_WNet_blocks_convs, args.start)
    for node, digit, value, kind, why in notes:
        print(f"node {node} digit {digit} -> {value}: {kind} {why}")
    print(f"{sum(counts.values())} probes at {args.start}: " +
          ", ".join(f"{n} {k}" for k, n in counts.most_common()))
    print(f"mbnas's neighbourhood there: {n_neighbours} networks")


if __name__ == "__main__":
    main()
