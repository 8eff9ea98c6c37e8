"""Which machine a benchmark ran on, and how busy it was: one header for every bench.

Every script here records the same block in its JSON (``"machine"``) and prints the same
header: CPU model, SIMD flags (AVX, AVX2, AVX-512, VNNI), cores, and over the run the steal
time (``/proc/stat``) and the 1-min load. The facts come from :mod:`ahmer.preprocessing.host`
(the library reads the same to choose thread counts)::

    from bench_machine import BenchMachine

    machine = BenchMachine.start()       # prints the header's first line
    ...                                  # the measurements
    summary["machine"] = machine.finish()  # prints steal and load, returns the JSON block
"""

from __future__ import annotations

import time

from ahmer.preprocessing.host import CpuMeter, host_info

__all__ = ["BenchMachine", "machine_block"]


def machine_block(usage=None, started: float | None = None) -> dict:
    """The JSON block: ``host_info()``, the start (``started``, epoch seconds; else now) and,
    when given, a ``CpuUsage`` as ``run``."""
    block = {
        "host": host_info().to_dict(),
        "date_utc": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
    }
    if usage is not None:
        block["run"] = usage.to_dict()
    return block


class BenchMachine:
    """A :class:`~ahmer.preprocessing.host.CpuMeter` over a whole benchmark run, with the
    header printed at :meth:`start` and the run's steal and load at :meth:`finish`."""

    def __init__(self, quiet: bool = False, file=None) -> None:
        self.meter = CpuMeter()
        self.quiet = quiet
        self.file = file  # where the header goes (None: stdout)
        self.started = time.time()

    @classmethod
    def start(cls, quiet: bool = False, file=None) -> BenchMachine:
        machine = cls(quiet, file)
        machine.started = time.time()
        machine.meter.start()
        if not quiet:
            print(f"machine: {host_info().line()}", flush=True, file=file)
        return machine

    def finish(self) -> dict:
        """Stop the meter; print and return the JSON block."""
        usage = self.meter.stop()
        if not self.quiet:
            print(f"machine during the run: {usage.line()}", flush=True, file=self.file)
        return machine_block(usage, self.started)

    def header(self) -> str:
        """Both lines for a printed report (after :meth:`finish`)."""
        usage = self.meter.usage
        return f"machine: {host_info().line()}" + (
            f"\nduring the run: {usage.line()}" if usage is not None else ""
        )
