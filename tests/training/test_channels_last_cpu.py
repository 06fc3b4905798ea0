"""Channels-last training on the CPU survives oneDNN's strided 1x1 convolution bug.

In torch 2.14.1 a strided 1x1 ``Conv2d`` on channels-last CPU input of an odd batch size
with two threads corrupts the heap and kills the process ("double free or corruption").
The Residual block's downscaling shortcut is such a convolution, and an epoch's last
batch is often odd, so `mbnas search` died on small datasets. The engine computes these
convolutions by slicing instead (``mbnas.training.device.to_channels_last``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import torch
from torch import nn

from mbnas.spaces.mbnas import build_model, get_space
from mbnas.training.device import to_channels_last

SCRIPT = textwrap.dedent("""
    import numpy as np, torch
    from torch import nn
    from mbnas.training.device import to_channels_last
    from mbnas.spaces.mbnas import build_model, get_space
    torch.set_num_threads(2)
    torch.manual_seed(0)
    arch = get_space("mbnas").sample(np.random.default_rng(0))
    model = build_model(arch, 1, 2, 8)
    assert any(type(m) is nn.Conv2d and m.kernel_size == (1, 1) and m.stride == (2, 2)
               for m in model.modules()), "the network has no strided 1x1 convolution"
    model = {prepare}
    optimiser = torch.optim.Adam(model.parameters())
    for batch in (3, 5, 7):
        x = torch.randn(batch, 1, 32, 32).contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(x).float().mean()
        loss.backward()
        optimiser.step()
        optimiser.zero_grad()
    print("trained")
""")


def _train(prepare: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([sys.executable, "-c", SCRIPT.format(prepare=prepare)],
                          capture_output=True, text=True, timeout=300, env=env)


def test_odd_batches_train_in_channels_last_on_two_threads() -> None:
    done = _train('to_channels_last(model, torch.device("cpu"))')
    assert done.returncode == 0, done.stderr[-2000:]
    assert "trained" in done.stdout


def test_sliced_pointwise_convolution_gives_the_same_numbers() -> None:
    torch.manual_seed(0)
    plain = nn.Conv2d(8, 16, 1, stride=2, bias=True)
    sliced = to_channels_last(nn.Sequential(nn.Conv2d(8, 16, 1, stride=2, bias=True)),
                              torch.device("cpu"))[0]
    sliced.load_state_dict(plain.state_dict())
    assert type(sliced) is not nn.Conv2d and set(sliced.state_dict()) == {"weight", "bias"}
    for size in (9, 32):  # odd sizes too: ceil(size / 2) outputs either way
        x = torch.randn(3, 8, size, size, requires_grad=True)
        x2 = x.detach().clone().contiguous(memory_format=torch.channels_last)
        x2.requires_grad_(True)
        a, b = plain(x), sliced(x2)
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        a.square().sum().backward()
        b.square().sum().backward()
        torch.testing.assert_close(x.grad, x2.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(plain.weight.grad, sliced.weight.grad, rtol=1e-4, atol=1e-5)


def test_other_convolutions_and_gpu_models_are_left_alone() -> None:
    arch = get_space("mbnas").sample(np.random.default_rng(0))
    model = to_channels_last(build_model(arch, 1, 2, 8), torch.device("meta"))
    assert all(type(m) is nn.Conv2d for m in model.modules() if isinstance(m, nn.Conv2d))
    model = to_channels_last(build_model(arch, 1, 2, 8), torch.device("cpu"))
    swapped = [m for m in model.modules()
               if isinstance(m, nn.Conv2d) and type(m) is not nn.Conv2d]
    assert swapped and all(m.kernel_size == (1, 1) and m.stride == (2, 2) for m in swapped)
