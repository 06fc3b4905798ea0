"""What a paper-scale search costs on one device: concurrent runs, fused runs, GPU-hours.

Run as a script: ``python benchmarks/gpu_search_cost.py --device cuda`` (or ``--device
cpu --steps 1`` to try it in minutes). For the U-Net preset and three random networks of
the MB-NAS space, at 128x128 in bf16 (autocast), it prints

  - training images/s of 1, 2, 4 and 8 runs at once (spawned processes that start
    their timed steps together, as ``--runs-per-device`` runs them), summed over runs;
  - training images/s of the seeds of one fold trained fused (``mbnas.training.fused``);
  - the achieved training FLOP/s of the best of these as a fraction of the device's
    bf16 matmul FLOP/s (training FLOPs = 3 x forward FLOPs, ``torch.utils.flop_counter``);
  - the estimated device-hours of the Spleen paper protocol: 150 evaluations x 15 runs x
    50 epochs x ~2,900 slices (4/5 trained, 1/5 validated by a forward pass, counted as
    1/3 of a training image), at the best rate measured for that network.
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mbnas.commands.common.estimate import seconds_per_call

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_throughput import forward_flops, matmul_flops

from mbnas.commands.common.estimate import time_network
from mbnas.costs.measure import peak_activation_memory
from mbnas.spaces.mbnas import build_model, get_space, preset
from mbnas.training.augment import augment_batch
from mbnas.training.device import device_name, select_device
from mbnas.training.fused import FusedNetworks
from mbnas.training.loss import soft_dice_loss
from mbnas.training.protocol import Protocol

SPLEEN_SLICES = 2900
SPLEEN_EVALUATIONS, SPLEEN_RUNS, SPLEEN_EPOCHS = 150, 15, 50


def _one_run(arch: Any, protocol: Protocol, device: str, steps: int, threads: int,
             barrier: Any, out: Any) -> None:
    torch.set_num_threads(threads)
    barrier.wait()
    rate = time_network("", arch, 1, 2, protocol, device, steps, validate=False)
    out.put(rate.train_images_per_s)


def concurrent_rate(arch: Any, protocol: Protocol, device: str, runs: int, steps: int
                    ) -> float:
    """Summed training images/s of ``runs`` processes training at once (one: in this
    process; spawning a worker for it only adds start-up, and on a loaded CPU its exit
    could keep the benchmark waiting past its time limit)."""
    if runs == 1:
        before = torch.get_num_threads()
        try:
            if device == "cpu":
                torch.set_num_threads(os.cpu_count() or 1)
            return float(time_network("", arch, 1, 2, protocol, device, steps,
                                      validate=False).train_images_per_s)
        finally:
            torch.set_num_threads(before)
    ctx = multiprocessing.get_context("spawn")
    barrier, out = ctx.Barrier(runs), ctx.Queue()
    threads = max(1, (os.cpu_count() or 1) // runs) if device == "cpu" else 1
    procs = [ctx.Process(target=_one_run, args=(arch, protocol, device, steps, threads,
                                                barrier, out)) for _ in range(runs)]
    for p in procs:
        p.start()
    rates = [out.get() for _ in procs]
    for p in procs:
        p.join()
    return float(sum(rates))


def fused_rate(arch: Any, protocol: Protocol, device: str, members: int, steps: int
               ) -> float:
    """Training images/s of ``members`` seeds trained as one fused network."""
    dev = select_device(device)
    models = []
    for seed in range(members):
        torch.manual_seed(seed)
        models.append(build_model(arch, 1, 2, protocol.base_channels).to(dev))
    nets = FusedNetworks(models)
    optimiser = torch.optim.Adam(list(nets.params.values()), lr=protocol.lr)
    gen = torch.Generator(device=dev).manual_seed(0)
    bs, size = protocol.batch_size, protocol.image_size
    images = torch.randn(bs, 1, size, size, generator=gen, device=dev)
    labels = torch.randint(0, 2, (bs, size, size), generator=gen, device=dev)
    bf16 = protocol.precision == "bf16"

    def step() -> None:
        pairs = [augment_batch(images, labels, protocol.augment, gen) for _ in range(members)]
        x, y = torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])
        with torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=bf16):
            logits = nets(x)
        loss = sum(soft_dice_loss(logits[i], y[i]) for i in range(members))
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    nets.train(True)
    return members * bs / seconds_per_call(step, steps, dev)


def free_memory(device: torch.device) -> int:
    """Bytes the device can still give: free GPU memory, or available host memory."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def fits(model: torch.nn.Module, size: int, images: int, copies: int, free: int) -> bool:
    """Whether ``copies`` trainings of ``images`` images per step fit in ``free`` bytes:
    twice the saved activations (the backward pass's own buffers, bf16 copies) plus
    weights, gradients and Adam state. A cell that would not fit is printed as "mem"
    instead of being run: on a CPU the kernel kills the whole benchmark instead."""
    activations = peak_activation_memory(model, (1, 1, size, size)) * images
    weights = 4 * 4 * sum(p.numel() for p in model.parameters())
    return copies * (2 * activations + weights) < 0.8 * free


def spleen_hours(images_per_s: float) -> float:
    per_run = SPLEEN_EPOCHS * (0.8 * SPLEEN_SLICES + 0.2 * SPLEEN_SLICES / 3)
    return SPLEEN_EVALUATIONS * SPLEEN_RUNS * per_run / images_per_s / 3600


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda, cpu or auto")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--base-channels", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per measurement")
    parser.add_argument("--concurrency", default="1,2,4,8", help="runs at once to measure")
    parser.add_argument("--fused", type=int, default=3, help="members of a fused network")
    parser.add_argument("--networks", type=int, default=3, help="random networks")
    parser.add_argument("--precision", default="bf16", choices=("bf16", "fp32"))
    parser.add_argument("--matmul-size", type=int, default=2048,
                        help="side of the square matrices of the matmul peak; smaller for a "
                             "CPU smoke run")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    results: list[dict[str, Any]] = []
    dev = select_device(args.device)
    device = str(dev.type)
    protocol = Protocol(batch_size=args.batch, image_size=args.size,
                        base_channels=args.base_channels, precision=args.precision)
    concurrency = [int(c) for c in args.concurrency.split(",")]
    rng = np.random.default_rng(0)
    space = get_space("mbnas")
    networks = [("U-Net preset", preset("unet"))] + [
        (f"random network {i + 1}", space.sample(rng)) for i in range(args.networks)]
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    peak = matmul_flops(dev, dtype, args.matmul_size)
    print(f"device: {device_name(dev)} ({device}), torch {torch.__version__}, "
          f"{args.size}x{args.size}, batch {args.batch}, base channels {args.base_channels}, "
          f"{args.precision}, {args.steps} timed steps; matmul {peak / 1e12:.2f} TFLOP/s")
    header = "".join(f"{f'{n} at once':>11}" for n in concurrency)
    print(f"{'network':<18}{'params M':>9}{'GFLOP/img':>10}{header}{f'fused x{args.fused}':>11}"
          f"{'best FLOP/s':>12}{'Spleen h':>9}")
    for name, arch in networks:
        model = build_model(arch, 1, 2, args.base_channels)
        params = sum(p.numel() for p in model.parameters()) / 1e6
        flops = 3 * forward_flops(model, args.size, torch.device("cpu"))
        free = free_memory(dev)
        rates = [concurrent_rate(arch, protocol, device, n, args.steps)
                 if fits(model, args.size, args.batch, n, free) else None for n in concurrency]
        fused = (fused_rate(arch, dataclasses.replace(protocol), device, args.fused,
                            args.steps)
                 if fits(model, args.size, args.batch * args.fused, 1, free) else None)
        measured = [r for r in rates + [fused] if r is not None]
        best = max(measured) if measured else None
        cells = "".join(f"{r:11.1f}" if r is not None else f"{'mem':>11}"
                        for r in rates + [fused])
        tail = (f"{best * flops / peak:12.2f}{spleen_hours(best):9.1f}" if best else
                f"{'-':>12}{'-':>9}")
        print(f"{name:<18}{params:9.2f}{flops / 1e9:10.2f}{cells}{tail}", flush=True)
        results.append({"network": name, "params_m": params, "gflop_per_image": flops / 1e9,
                        "rates": dict(zip(map(str, concurrency), rates, strict=True)),
                        "fused": fused, "best": best,
                        "flops_fraction": best * flops / peak if best else None,
                        "spleen_hours": spleen_hours(best) if best else None})
    print("images/s are training images per second summed over the runs; 'best FLOP/s' is "
          "the best rate's training FLOP/s over the matmul FLOP/s; 'Spleen h' the device-"
          "hours of the Spleen paper protocol (150 evaluations) at the best rate; 'mem': "
          "not run, the runs would not fit in the device's free memory")
    if args.json is not None:
        import json

        args.json.write_text(json.dumps({
            "device": device_name(dev), "matmul_flops": peak, "size": args.size,
            "batch": args.batch, "base_channels": args.base_channels,
            "precision": args.precision, "networks": results}, indent=1))


if __name__ == "__main__":
    main()
