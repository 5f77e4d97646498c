"""CPU time from /proc: what the server tree, the load generator and the whole machine used.

On a shared machine (other builds running next to the benchmark) requests/s alone can mislead;
CPU-milliseconds per request of the server's own processes do not depend on the neighbours.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: str) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: split after the last ')'.
    return raw[raw.rindex(")") + 2 :].split()


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU of ``root`` and all its live descendants."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(entry)
        if fields is None:
            continue
        # fields[1] is ppid; fields[11], fields[12] are utime, stime (stat(5) fields 4, 14, 15).
        parents[int(entry)] = int(fields[1])
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / _TICKS
    tree = {root}
    grew = True
    while grew:
        before = len(tree)
        tree |= {pid for pid, parent in parents.items() if parent in tree}
        grew = len(tree) > before
    return sum(cpu.get(pid, 0.0) for pid in tree)


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of all cores since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # guest time is already counted in user
    return (total - idle) / _TICKS, total / _TICKS


def children_cpu_seconds() -> float:
    """CPU of this process's waited-for children (wrk, CLI calls)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def machine_busy_fraction(seconds: float = 1.0) -> float:
    """How busy all cores were over the next ``seconds`` (0..1): neighbours' load, before a run."""
    busy_before, total_before = machine_busy_seconds()
    time.sleep(seconds)
    busy_after, total_after = machine_busy_seconds()
    return (busy_after - busy_before) / max(total_after - total_before, 1e-9)


@dataclass(frozen=True, slots=True)
class CpuSample:
    server: float
    load_generator: float
    machine_busy: float
    machine_total: float

    @classmethod
    def now(cls, server_pid: int) -> CpuSample:
        busy, total = machine_busy_seconds()
        return cls(tree_cpu_seconds(server_pid), children_cpu_seconds(), busy, total)


def cpu_between(before: CpuSample, after: CpuSample, requests: int) -> dict[str, float]:
    """CPU used during a run; 'other' is everything not the server or wrk (neighbours, DB)."""
    server = after.server - before.server
    wrk = after.load_generator - before.load_generator
    busy = after.machine_busy - before.machine_busy
    elapsed_cores = after.machine_total - before.machine_total
    return {
        "server_cpu_s": round(server, 2),
        "wrk_cpu_s": round(wrk, 2),
        "other_cpu_s": round(max(busy - server - wrk, 0.0), 2),
        "machine_busy_fraction": round(busy / max(elapsed_cores, 1e-9), 3),
        "server_cpu_ms_per_request": round(server * 1000 / max(requests, 1), 3),
    }
