"""The latency in Table 1 and the card: measured with the run's CPU threads, which it names,
and never read back from a measurement made with other threads (issue 35)."""

from __future__ import annotations

from pathlib import Path

import torch

from mbnas.commands.common.model_cost import measure_costs
from mbnas.spaces.mbnas import preset


def test_latency_says_its_threads_and_other_threads_measure_again(tmp_path: Path) -> None:
    cache = tmp_path / "costs.json"
    arch = preset("unet").to_dict()
    before = torch.get_num_threads()
    one = measure_costs([arch], 1, 2, 4, 32, "cpu", cache=cache, threads=1)
    two = measure_costs([arch], 1, 2, 4, 32, "cpu", cache=cache, threads=2)
    again = measure_costs([arch], 1, 2, 4, 32, "cpu", cache=cache, threads=1)
    key = preset("unet").key
    assert one[key].device.endswith("1 CPU thread(s)")
    assert two[key].device.endswith("2 CPU thread(s)")
    assert again[key] == one[key]  # the same threads: read back
    assert two[key].latency_ms != one[key].latency_ms  # measured, not the cached figure
    assert torch.get_num_threads() == before
