"""What the machine offers and how busy it is: CPU model, SIMD flags, cores, steal time, load.

Speed depends on the host as much as on the code: the same clip ran 16x real time on an AVX
machine and 5-7x on an AVX2 one under another tenant's load. Benchmarks record
:func:`host_info` and a :class:`CpuMeter` reading (steal time from ``/proc/stat``, the 1-min
load) beside every figure, and the library picks thread counts from :func:`host_info` and
logs the choice. Linux's ``/proc`` is read where it exists; elsewhere the fields are empty
(``None`` or ``[]``), never an error.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

__all__ = ["SIMD_FLAGS", "CpuMeter", "CpuUsage", "HostInfo", "host_info", "simd_summary"]

SIMD_FLAGS = (
    "sse4_2",
    "avx",
    "fma",
    "f16c",
    "avx2",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_int8",
)
"""The ``/proc/cpuinfo`` flags that decide which kernels the inference libraries run (CTranslate2
and ONNX Runtime dispatch on them; VNNI and AMX are the int8 dot-product instructions)."""

_PROC_STAT = Path("/proc/stat")


@dataclass(frozen=True)
class HostInfo:
    """The CPU: ``model`` (``/proc/cpuinfo``'s model name), ``flags`` (those of
    :data:`SIMD_FLAGS` it has), ``cores`` (usable by this process: its affinity),
    ``logical_cpus`` (the machine's), ``memory_gib``, ``python``."""

    model: str
    flags: list[str] = field(default_factory=list)
    cores: int = 1
    logical_cpus: int = 1
    memory_gib: float | None = None
    python: str = ""

    def has(self, flag: str) -> bool:
        return flag in self.flags

    def to_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        """One header line: ``2 cores (AMD EPYC; avx fma avx2), 24 GiB RAM, Python 3.11.7``."""
        mem = f", {self.memory_gib:.0f} GiB RAM" if self.memory_gib else ""
        return (
            f"{self.cores} cores ({self.model}; {simd_summary(self.flags)}){mem}, "
            f"Python {self.python}"
        )


def simd_summary(flags: list[str]) -> str:
    """The flags as a short text, ``"no AVX"`` when there are none of note."""
    shown = [f for f in flags if f not in ("sse4_2",)]
    return " ".join(shown) if shown else "no AVX"


@lru_cache(maxsize=1)
def host_info() -> HostInfo:
    """This machine's :class:`HostInfo` (read once per process)."""
    model = ""
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and not model:
                model = value.strip()
            elif key in ("flags", "Features") and not flags:
                flags = set(value.split())
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    memory = None
    try:
        memory = round(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    return HostInfo(
        model=model or platform.processor() or platform.machine() or "unknown CPU",
        flags=[f for f in SIMD_FLAGS if f in flags],
        cores=cores,
        logical_cpus=os.cpu_count() or cores,
        memory_gib=memory,
        python=platform.python_version(),
    )


def _cpu_ticks() -> list[int] | None:
    """The aggregate ``cpu`` line of ``/proc/stat`` (user nice system idle iowait irq softirq
    steal ...), in clock ticks; ``None`` off Linux."""
    try:
        with _PROC_STAT.open() as f:
            first = f.readline().split()
    except OSError:
        return None
    if not first or first[0] != "cpu":
        return None
    return [int(x) for x in first[1:]]


def _load() -> float | None:
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return None


@dataclass(frozen=True)
class CpuUsage:
    """What the whole machine did while a :class:`CpuMeter` ran: ``seconds`` of wall time,
    ``steal_pct`` (time the hypervisor gave this VM's CPUs to others, % of all CPU time),
    ``busy_pct`` (user + system + irq, % of all CPU time; the other tenants of a shared
    machine included), ``load_start`` / ``load_end`` (the 1-min load average)."""

    seconds: float
    steal_pct: float | None
    busy_pct: float | None
    load_start: float | None
    load_end: float | None

    def to_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        def pct(x: float | None) -> str:
            return "n/a" if x is None else f"{x:.1f} %"

        def num(x: float | None) -> str:
            return "n/a" if x is None else f"{x:.2f}"

        return (
            f"steal {pct(self.steal_pct)}, machine busy {pct(self.busy_pct)}, 1-min load "
            f"{num(self.load_start)} -> {num(self.load_end)} over {self.seconds:.0f} s"
        )


class CpuMeter:
    """Steal time and load over a span: ``with CpuMeter() as m: ...; m.usage``, or
    :meth:`start` and :meth:`stop`. Reads ``/proc/stat`` twice; costs nothing between."""

    def __init__(self) -> None:
        self._ticks: list[int] | None = None
        self._t = 0.0
        self._load: float | None = None
        self.usage: CpuUsage | None = None

    def start(self) -> CpuMeter:
        self._ticks, self._t, self._load = _cpu_ticks(), time.monotonic(), _load()
        return self

    def stop(self) -> CpuUsage:
        end = _cpu_ticks()
        steal = busy = None
        if self._ticks is not None and end is not None:
            delta = [b - a for a, b in zip(self._ticks, end, strict=False)]
            total = sum(delta[:8])  # guest time is already counted in user
            if total > 0:
                steal = 100.0 * (delta[7] if len(delta) > 7 else 0) / total
                busy = 100.0 * (delta[0] + delta[1] + delta[2] + delta[5] + delta[6]) / total
        self.usage = CpuUsage(time.monotonic() - self._t, steal, busy, self._load, _load())
        return self.usage

    def __enter__(self) -> CpuMeter:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
