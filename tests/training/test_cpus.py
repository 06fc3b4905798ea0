"""The usable CPUs: affinity, cgroup quota (v1, v2), SLURM and OMP_NUM_THREADS, with fake files."""

from __future__ import annotations

from pathlib import Path

import pytest

from mbnas.training.cpus import cgroup_cpus, cpu_budget

FOUR = {0, 1, 2, 3}


def _v2(root: Path, text: str, own: str = "") -> tuple[Path, Path]:
    (root / own).mkdir(parents=True, exist_ok=True)
    (root / own / "cpu.max").write_text(text + "\n")
    proc = root / "proc_cgroup"
    proc.write_text(f"0::/{own}\n")
    return root, proc


def test_affinity_alone_sets_the_cpus(tmp_path: Path) -> None:
    budget = cpu_budget({}, FOUR, tmp_path / "none", tmp_path / "none")
    assert (budget.cpus, budget.source) == (4, "affinity")
    assert budget.threads_per_run(8) == 1  # never fewer than one thread


def test_the_default_is_one_thread_per_run_however_many_cpus(tmp_path: Path) -> None:
    # OpenMP threads of one run wait for each other under load (issue 35: 8x slower)
    budget = cpu_budget({}, FOUR, tmp_path / "none", tmp_path / "none")
    assert [budget.threads_per_run(r) for r in (1, 2, 4)] == [1, 1, 1]
    assert "--threads N for more" in budget.describe(1)


@pytest.mark.parametrize(("text", "cpus"), [("150000 100000", 2), ("50000 100000", 1),
                                            ("max 100000", None)])
def test_cgroup_v2_quota_is_rounded_up(tmp_path: Path, text: str, cpus: int | None) -> None:
    root, proc = _v2(tmp_path, text, own="job.slice/x")
    assert cgroup_cpus(root, proc) == cpus


def test_cgroup_v1_quota(tmp_path: Path) -> None:
    cpu = tmp_path / "cpu,cpuacct"
    cpu.mkdir()
    (cpu / "cpu.cfs_quota_us").write_text("300000\n")
    (cpu / "cpu.cfs_period_us").write_text("100000\n")
    (tmp_path / "proc").write_text("4:cpu,cpuacct:/\n")
    assert cgroup_cpus(tmp_path, tmp_path / "proc") == 3
    (cpu / "cpu.cfs_quota_us").write_text("-1\n")  # unlimited
    assert cgroup_cpus(tmp_path, tmp_path / "proc") is None


def test_the_tightest_limit_wins_and_is_named(tmp_path: Path) -> None:
    root, proc = _v2(tmp_path, "300000 100000")
    budget = cpu_budget({}, FOUR, root, proc)
    assert (budget.cpus, budget.source) == (3, "cgroup quota")
    budget = cpu_budget({"SLURM_CPUS_PER_TASK": "2"}, FOUR, root, proc)
    assert (budget.cpus, budget.source) == (2, "SLURM_CPUS_PER_TASK")
    budget = cpu_budget({"SLURM_CPUS_PER_TASK": "2", "OMP_NUM_THREADS": "1"}, FOUR, root, proc)
    assert (budget.cpus, budget.source) == (1, "OMP_NUM_THREADS")
    assert "OMP_NUM_THREADS" in budget.describe(1)


def test_nonsense_settings_are_ignored(tmp_path: Path) -> None:
    budget = cpu_budget({"OMP_NUM_THREADS": "lots", "SLURM_CPUS_PER_TASK": "0"}, {0, 1},
                        tmp_path / "none", tmp_path / "none")
    assert (budget.cpus, budget.source) == (2, "affinity")


def test_the_device_line_says_where_the_threads_came_from(tiny_protocol) -> None:
    from mbnas.training.device import describe_device

    assert "(--threads)" in describe_device("cpu", tiny_protocol, threads=1)
    budget = cpu_budget()
    line = describe_device("cpu", tiny_protocol, runs_per_device=1)
    assert f"{budget.threads_per_run(1)} CPU thread(s) per run ({budget.describe(1)})" in line


def test_a_run_trains_with_the_usable_cpus_not_every_core(monkeypatch) -> None:
    """The in-process executor sets torch's threads from the budget when none are given."""
    import torch

    from mbnas.training import runs

    seen: list[int] = []
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    before = torch.get_num_threads()
    executor = runs.InProcessExecutor()
    monkeypatch.setattr(executor, "_run", lambda specs, ctx, hooks: iter(
        [seen.append(torch.get_num_threads())]))
    list(executor.run([], None, None))  # type: ignore[arg-type]
    assert seen == [1]
    assert torch.get_num_threads() == before
