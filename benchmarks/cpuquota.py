"""A CPU budget per server process, to measure scaling on a machine with too few cores.

``--workers 2 ≥ 1.7x one worker`` needs a core per worker and one more for the load
generator. On two cores we give each worker process a cgroup of its own, limited to
the same fraction of one CPU (CFS bandwidth control), with every worker on the
server's core and the generator alone on the other: one worker gets one budget, two
workers get two, as they would get one core each on a bigger machine, only slower.
What it leaves out is said where the figures are shown: the broker is not limited,
and kernel work done in softirq context is charged to no process. And it is a coarse
instrument: a worker held to a budget builds a backlog, more publications then share
each frame, and where a rate-stepped run stops depends on how deep that got, so the
same run's maxima moved 30-64 % from one try to the next here. It finds a second worker
that adds nothing; it does not measure a scaling ratio.

Needs root and the ``cpu`` controller: cgroup v1 (``/sys/fs/cgroup/cpu``) or v2
(``/sys/fs/cgroup/cpu.max`` in a child group).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

V1_ROOT = Path("/sys/fs/cgroup/cpu")
V2_ROOT = Path("/sys/fs/cgroup")
PERIOD_US = 10_000
"""CFS period: 10 ms, so a throttled process waits at most ~10 ms, not the 100 ms of
the kernel's default period (which would show as latency, not as throughput)."""


class QuotaUnavailable(RuntimeError):
    """This machine (or this user) cannot limit a process's CPU with a cgroup."""


class CpuQuota:
    """A cgroup limiting every process in it to ``share`` of one CPU."""

    def __init__(self, name: str, share: float) -> None:
        if not 0 < share <= 1:
            raise ValueError(f"share must be within (0, 1], got {share}")
        quota = max(1_000, round(share * PERIOD_US))
        if (V1_ROOT / "cpu.cfs_quota_us").exists():
            self.path = V1_ROOT / name
            self._make()
            (self.path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (self.path / "cpu.cfs_quota_us").write_text(str(quota))
        elif "cpu" in _read(V2_ROOT / "cgroup.subtree_control").split():
            self.path = V2_ROOT / name
            self._make()
            (self.path / "cpu.max").write_text(f"{quota} {PERIOD_US}")
        else:
            raise QuotaUnavailable(
                "no cgroup cpu controller: neither /sys/fs/cgroup/cpu (v1) nor 'cpu' in "
                "/sys/fs/cgroup/cgroup.subtree_control (v2)"
            )

    def _make(self) -> None:
        try:
            self.path.mkdir(exist_ok=True)
        except PermissionError as exc:
            raise QuotaUnavailable(f"cannot create {self.path}: run as root") from exc

    def add(self, pid: int) -> None:
        """Move process ``pid`` (all its threads) into the group."""
        (self.path / "cgroup.procs").write_text(str(pid))

    def stats(self) -> dict[str, int]:
        """The kernel's counters: periods, periods throttled, time throttled."""
        found: dict[str, int] = {}
        for line in _read(self.path / "cpu.stat").splitlines():
            key, _, value = line.partition(" ")
            if value.strip().isdigit():
                found[key] = int(value)
        return found

    def remove(self) -> bool:
        """Delete the group once its processes are gone (waits up to 5 s for them)."""
        for _ in range(50):
            with contextlib.suppress(OSError):
                self.path.rmdir()
                return True
            time.sleep(0.1)
        return False


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
