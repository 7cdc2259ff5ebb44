"""What ``/proc`` says about the server under test, and about this machine."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from hubbub.bench.results import Machine

PROC = Path("/proc")
_PACKAGES = ("hubbub", "picows", "uvloop", "aiofastnet", "msgspec", "protobuf", "hdrhistogram")


def rss_bytes(pid: int, proc: Path = PROC) -> int:
    """Resident set size of ``pid`` (``VmRSS``); 0 when the process is gone."""
    try:
        text = (proc / str(pid) / "status").read_text()
    except OSError:
        return 0
    return parse_status_kb(text, "VmRSS") * 1024


def parse_status_kb(text: str, key: str) -> int:
    """The ``kB`` value of ``key`` in a ``/proc/PID/status`` text; 0 when absent."""
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name == key:
            return int(value.split()[0])
    return 0


def children(pid: int, proc: Path = PROC) -> list[int]:
    """The processes ``pid`` started (its main thread's children), oldest first; [] when
    it is gone."""
    try:
        text = (proc / str(pid) / "task" / str(pid) / "children").read_text()
    except OSError:
        return []
    return sorted(int(child) for child in text.split())


def cpu_seconds(pid: int, proc: Path = PROC) -> float:
    """User + system CPU time ``pid`` has used so far; 0.0 when it is gone."""
    try:
        text = (proc / str(pid) / "stat").read_text()
    except OSError:
        return 0.0
    return parse_stat_cpu(text) / os.sysconf("SC_CLK_TCK")


def parse_stat_cpu(text: str) -> int:
    """utime + stime (clock ticks) from a ``/proc/PID/stat`` line.

    The command name (field 2) may hold spaces and parentheses, so fields are
    counted from the last ``)``.
    """
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of the whole line


def busy_seconds(proc: Path = PROC) -> float:
    """CPU time all CPUs have spent not idle since boot (``/proc/stat``), in seconds."""
    try:
        line = (proc / "stat").read_text().splitlines()[0]
    except (OSError, IndexError):
        return 0.0
    return parse_busy_ticks(line) / os.sysconf("SC_CLK_TCK")


def parse_busy_ticks(line: str) -> int:
    """Busy ticks from the ``cpu`` line of ``/proc/stat``: all but idle and iowait."""
    fields = [int(x) for x in line.split()[1:9]]
    idle, iowait = fields[3], fields[4]
    return sum(fields) - idle - iowait


def affinity(pid: int = 0) -> str:
    """The CPUs ``pid`` may run on, as a taskset-style list (``0`` or ``0-1``)."""
    try:
        cpus = sorted(os.sched_getaffinity(pid))
    except OSError:
        return ""
    return _ranges(cpus)


def _ranges(cpus: list[int]) -> str:
    parts: list[str] = []
    start = prev = None
    for cpu in [*cpus, None]:
        if cpu is not None and prev is not None and cpu == prev + 1:
            prev = cpu
            continue
        if start is not None:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = cpu
    return ",".join(parts)


def machine(server_pid: int = 0, fd_limit: int = 0) -> Machine:
    """This machine, as results record it."""
    return Machine(
        hostname=socket.gethostname(),
        cpu_model=_cpu_model(),
        cpus=os.cpu_count() or 0,
        memory_bytes=_memory_bytes(),
        kernel=platform.release(),
        python=sys.version.split()[0],
        fd_limit=fd_limit,
        server_cpus=affinity(server_pid) if server_pid else "",
        generator_cpus=affinity(),
    )


def _cpu_model() -> str:
    try:
        for line in (PROC / "cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_bytes() -> int:
    try:
        return parse_status_kb((PROC / "meminfo").read_text(), "MemTotal") * 1024
    except OSError:
        return 0


def git_revision(root: Path | None = None) -> str:
    """``<commit>`` of the hubbub checkout, ``+dirty`` when tracked files differ; "" if none."""
    here = root or Path(__file__).resolve().parents[3]
    try:
        commit = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=5,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return commit + ("+dirty" if dirty else "")


def versions(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Versions of Python and the packages on the measured path."""
    found = {"python": sys.version.split()[0]}
    revision = git_revision()
    if revision:
        found["hubbub_git"] = revision
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    found.update(extra or {})
    return found
