"""Training throughput of the engine against the pipeline a user would otherwise write.

Run as a script (not a test): ``python benchmarks/train_throughput.py [--steps N]``.
In one process on one machine it measures

  (a) training images/s of the mbnas engine (``train_run``) on the U-Net preset at
      128x128, batch 32, with the paper's augmentation (batched, on the device);
  (b) the same network trained by a straightforward reference pipeline: MONAI
      ``CacheDataset`` + ``DataLoader`` + MONAI random dictionary transforms, plain fp32;
  (c) the machine's matrix-multiply throughput in the engine's precision,

and prints (a)/(b) and the engine's achieved training FLOP/s as a fraction of (c).
Training FLOPs are taken as 3x the forward FLOPs (forward + two backward products),
counted with ``torch.utils.flop_counter``.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from mbnas.data.slices import CaseInfo, SliceData
from mbnas.spaces.mbnas import build_model, preset
from mbnas.training.device import select_device, use_bf16
from mbnas.training.protocol import Protocol
from mbnas.training.train import train_run


def synthetic_slices(n: int, size: int, seed: int = 0) -> SliceData:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    labels = np.zeros((n, size, size), np.uint8)
    for i in range(n):
        cy, cx = rng.integers(size // 4, 3 * size // 4, 2)
        labels[i] = ((yy - cy) ** 2 + (xx - cx) ** 2) < (size // 6) ** 2
    images = (labels[:, None] * 2.0 + rng.normal(0, 1, (n, 1, size, size))).astype(np.float32)
    per_case = 16
    case_index = (np.arange(n) // per_case).astype(np.int32)
    n_cases = int(case_index.max()) + 1
    return SliceData(images, labels, case_index, (np.arange(n) % per_case).astype(np.int32),
                     tuple(CaseInfo(f"c{i}", (5.0, 1.0, 1.0)) for i in range(n_cases)),
                     {0: "background", 1: "organ"}, ("CT",))


def engine_images_per_second(model, data, val, protocol, device) -> float:
    warm = dataclasses.replace(protocol, epochs=1)
    train_run(model, data.subset(data.case_ids[:2]), val, warm, 0, device)  # warm-up
    t0 = time.perf_counter()
    out = train_run(model, data, val, protocol, 0, device)
    seconds = time.perf_counter() - t0
    return len(data.images) * protocol.epochs / seconds, out


def reference_images_per_second(model, data, steps: int, device, batch: int) -> float:
    from monai.data import CacheDataset, DataLoader
    from monai.losses import DiceLoss
    from monai.transforms import Compose, RandAffined, RandFlipd, RandScaleIntensityd

    items = [{"image": data.images[i], "label": data.labels[i][None].astype(np.float32)}
             for i in range(len(data.images))]
    transforms = Compose([
        RandAffined(keys=("image", "label"), prob=1.0, rotate_range=np.pi / 12,
                    scale_range=0.15, translate_range=(12, 12), mode=("bilinear", "nearest"),
                    padding_mode="zeros"),
        RandFlipd(keys=("image", "label"), prob=0.5, spatial_axis=1),
        RandScaleIntensityd(keys="image", factors=0.1, prob=1.0),
    ])
    ds = CacheDataset(items, transform=transforms, cache_rate=1.0, progress=False)
    loader = DataLoader(ds, batch_size=batch, shuffle=True, num_workers=0, drop_last=True)
    loss_fn = DiceLoss(to_onehot_y=True, softmax=True, include_background=False)
    model = model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    done, t0 = 0, None
    while done < steps + 1:
        for batch_data in loader:
            x, y = batch_data["image"].to(device), batch_data["label"].to(device)
            loss = loss_fn(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            done += 1
            if done == 1:
                t0 = time.perf_counter()  # the first step is warm-up
            if done == steps + 1:
                break
    return steps * batch / (time.perf_counter() - t0)


def matmul_flops(device, dtype, n: int = 2048, reps: int = 10) -> float:
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    return 2 * n ** 3 * reps / (time.perf_counter() - t0)


def forward_flops(model, size: int, device) -> int:
    model = model.to(device).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, 1, size, size, device=device))
    return counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--slices", type=int, default=256, help="training slices (a)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=8, help="reference steps (b)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--matmul-size", type=int, default=2048,
                        help="side of the square matrices of (c); smaller for a CPU smoke run")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    device = select_device(args.device)
    torch.manual_seed(0)
    # One pass per epoch: images/s below counts the slices once per epoch.
    protocol = Protocol(epochs=args.epochs, batch_size=args.batch, image_size=args.size,
                        samples_per_epoch=0)
    bf16 = use_bf16(protocol, device)
    data = synthetic_slices(args.slices, args.size)
    val = synthetic_slices(16, args.size, seed=1)
    unet = preset("unet")
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"engine precision {'bf16' if bf16 else 'fp32'} + channels_last")

    a, _ = engine_images_per_second(build_model(unet, 1, 2), data, val, protocol, device)
    print(f"(a) engine:    {a:8.1f} training images/s")
    b = reference_images_per_second(build_model(unet, 1, 2), data, args.steps, device,
                                    args.batch)
    print(f"(b) reference: {b:8.1f} training images/s (MONAI CacheDataset+DataLoader, fp32)")
    dtype = torch.bfloat16 if bf16 else torch.float32
    c = matmul_flops(device, dtype, args.matmul_size)
    print(f"(c) matmul:    {c / 1e9:8.1f} GFLOP/s ({dtype})")
    train_flops = 3 * forward_flops(build_model(unet, 1, 2), args.size, device)
    achieved = a * train_flops
    print(f"engine achieves {achieved / 1e9:.1f} GFLOP/s "
          f"({train_flops / 1e9:.2f} GFLOP per training image)")
    print(f"ratio (a)/(b) = {a / b:.2f}   (target >= 2.5)")
    print(f"engine FLOP/s / matmul FLOP/s = {achieved / c:.2f}   (target >= 0.50)")
    if args.json is not None:
        import json

        args.json.write_text(json.dumps({
            "device": str(device), "engine_images_per_s": a, "reference_images_per_s": b,
            "matmul_flops": c, "engine_flops": achieved, "flops_fraction": achieved / c,
            "size": args.size, "batch": args.batch}, indent=1))


if __name__ == "__main__":
    main()
