"""How many CPUs this process may use, and so how many threads each training run gets.

A run that takes every core the machine has, whatever CPU limit the job has, oversubscribes
the CPU: on a 2-core machine at load 4-10 a demo epoch took 30 s with 2 threads per run
against 1-3 s for a whole run with 1 thread. So the default threads per run come from the
tightest of the limits a job can have, divided by the runs that train at once:

- the CPUs the process is pinned to (``taskset``, ``numactl``: ``os.sched_getaffinity``);
- a cgroup CPU quota (Docker ``--cpus``, Kubernetes limits, systemd): v2 ``cpu.max``, v1
  ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``, rounded up;
- ``SLURM_CPUS_PER_TASK`` (``sbatch --cpus-per-task``);
- ``OMP_NUM_THREADS``, the user's own cap.

Even then, more than one thread per run is not the default (:data:`DEFAULT_MAX_THREADS`):
the issue-35 user's demo with 2 threads on 2 usable CPUs took 2 min 25 s beside other
work against 18 s with ``--threads 1``, and on this 2-core machine at load 17-23 its first
two training runs took 486 s and 987 s. The cause is OpenMP's barrier: every operator is a
parallel region whose threads wait for each other at its end, spinning first (libgomp's
default ``GOMP_SPINCOUNT``, 300,000 spins while no more threads than CPUs are asked for);
when a neighbour holds one of the two cores, each region waits a scheduler time slice for
the descheduled thread while the other burns its share spinning, so a tiny network's many
short regions run many times slower than on one thread, which never waits (2 threads with
``OMP_WAIT_POLICY=PASSIVE``, no spinning, were as slow: 684 s and 197 s). One thread per
run, and more runs at once (``--runs-per-device``, Ray), uses the cores without that;
``--threads N`` asks for more threads on a machine known to be free.

No torch import: the CLI computes this before it loads anything heavy.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_MAX_THREADS", "CpuBudget", "cpu_budget", "default_threads"]

#: Threads per run without ``--threads``: one (see the module's docstring for why).
DEFAULT_MAX_THREADS = 1

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


@dataclass(frozen=True)
class CpuBudget:
    """The CPUs a process may use and the limit that set the number.

    Attributes:
        cpus: The usable CPUs (at least 1).
        source: Where the number came from, in words (``"affinity"``, ``"cgroup quota"``,
            ``"SLURM_CPUS_PER_TASK"``, ``"OMP_NUM_THREADS"``).
    """

    cpus: int
    source: str

    def threads_per_run(self, runs_at_once: int = 1) -> int:
        """The threads each of ``runs_at_once`` concurrent runs gets: its share of the
        CPUs, at most :data:`DEFAULT_MAX_THREADS` (never fewer than 1)."""
        return max(1, min(DEFAULT_MAX_THREADS, self.cpus // max(1, runs_at_once)))

    def describe(self, runs_at_once: int = 1) -> str:
        """``"default; 2 usable CPU(s) (cgroup quota) / 1 run(s) at once; --threads N for
        more"``: for the device line."""
        runs = max(1, runs_at_once)
        more = ("; --threads N for more" if self.cpus // runs > DEFAULT_MAX_THREADS else "")
        return (f"default; {self.cpus} usable CPU(s) ({self.source}) / {runs} run(s) at "
                f"once{more}")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _positive_int(text: str | None) -> int | None:
    try:
        value = int(str(text).strip().split(",")[0].split("(")[0])
    except (TypeError, ValueError):
        return None
    return value if value > 0 else None


def _quota_cpus(quota: int, period: int) -> int | None:
    if quota <= 0 or period <= 0:
        return None
    return max(1, math.ceil(quota / period))


def cgroup_cpus(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP) -> int | None:
    """The CPU quota of this process's cgroup (v2, else v1), or None when unlimited."""
    own = []  # the process's own cgroup first, then the mount's root (inside a container)
    for line in (_read(proc_cgroup) or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3 and parts[2].startswith("/"):
            own.append(parts[2].lstrip("/"))
    for sub in (*own, ""):
        text = _read(root / sub / "cpu.max")
        if text is not None:
            fields = text.split()
            if fields and fields[0] != "max" and len(fields) == 2:
                cpus = _quota_cpus(int(fields[0]), int(fields[1]))
                if cpus is not None:
                    return cpus
            continue
        for v1 in ("cpu", "cpu,cpuacct"):
            quota = _read(root / v1 / sub / "cpu.cfs_quota_us")
            period = _read(root / v1 / sub / "cpu.cfs_period_us")
            if quota is not None and period is not None:
                try:
                    cpus = _quota_cpus(int(quota), int(period))
                except ValueError:
                    cpus = None
                if cpus is not None:
                    return cpus
    return None


def cpu_budget(environ: Mapping[str, str] | None = None,
               affinity: set[int] | None = None,
               cgroup_root: Path = CGROUP_ROOT,
               proc_cgroup: Path = PROC_CGROUP) -> CpuBudget:
    """The usable CPUs: the tightest of affinity, cgroup quota, SLURM and OMP_NUM_THREADS.

    Args:
        environ: The environment (default ``os.environ``).
        affinity: The CPUs the process is pinned to (default ``os.sched_getaffinity(0)``).
        cgroup_root: Where the cgroup file system is mounted.
        proc_cgroup: The process's cgroup membership file.
    """
    env = os.environ if environ is None else environ
    if affinity is None:
        try:
            affinity = os.sched_getaffinity(0)
        except (AttributeError, OSError):  # macOS, Windows
            affinity = set(range(os.cpu_count() or 1))
    limits: list[tuple[int, str]] = [(max(1, len(affinity)), "affinity")]
    quota = cgroup_cpus(cgroup_root, proc_cgroup)
    if quota is not None:
        limits.append((quota, "cgroup quota"))
    for name in ("SLURM_CPUS_PER_TASK", "OMP_NUM_THREADS"):
        value = _positive_int(env.get(name))
        if value is not None:
            limits.append((value, name))
    cpus, source = min(limits, key=lambda item: item[0])  # the first of equal limits wins
    return CpuBudget(cpus, source)


def default_threads(runs_at_once: int = 1) -> int:
    """Threads per run when ``--threads`` is not given: :func:`cpu_budget` / runs at once."""
    return cpu_budget().threads_per_run(runs_at_once)
