"""Clocks, percentiles and peak memory: the measuring instruments of `vpi bench`.

On a GPU a stage is timed with CUDA events recorded on the current stream and read after one
synchronisation (the way trtexec separates device time from host jitter); on the CPU with
``time.perf_counter``. Peak memory is the process's resident-set high-water mark on the CPU
(``VmHWM`` in ``/proc/self/status``, reset between measurements through ``/proc/self/clear_refs``)
and the torch allocator's peak on a GPU.
"""

from __future__ import annotations

import math
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

PERCENTILES = (50, 90, 99)
_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) with linear interpolation between order statistics
    (numpy's default), so p50 of an even count is the mean of the two middle values."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(values_ms: Sequence[float]) -> dict[str, float]:
    """p50 / p90 / p99, mean, min, max and the count of a list of latencies in ms."""
    stats = {f"p{q}": round(percentile(values_ms, q), 4) for q in PERCENTILES}
    stats.update(
        mean=round(sum(values_ms) / len(values_ms), 4),
        min=round(min(values_ms), 4),
        max=round(max(values_ms), 4),
        n=len(values_ms),
    )
    return stats


class Clock:
    """Marks instants in a run and turns pairs of marks into milliseconds.

    ``mark()`` returns a CUDA event recorded on the current stream when ``device`` is CUDA, else
    a ``perf_counter`` reading; ``elapsed_ms(marks)`` synchronises once (GPU) and returns the
    gaps between consecutive marks.
    """

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"

    @property
    def method(self) -> str:
        return "cuda-events" if self.cuda else "perf_counter"

    def start(self) -> Any:
        """The first mark of a run: on a GPU, earlier queued work is finished first."""
        if self.cuda:
            torch.cuda.synchronize()
        return self.mark()

    def mark(self) -> Any:
        if not self.cuda:
            return time.perf_counter()
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def elapsed_ms(self, marks: Sequence[Any]) -> list[float]:
        if not self.cuda:
            return [(b - a) * 1000.0 for a, b in zip(marks, marks[1:], strict=False)]
        marks[-1].synchronize()
        return [a.elapsed_time(b) for a, b in zip(marks, marks[1:], strict=False)]


class PeakMemory:
    """Memory of one backend, in MiB: the peak during a run, and what is in use now.

    CPU: the process's resident set (peak: its high-water mark, reset before each run). GPU: the
    torch allocator where the backend allocates through torch; ONNX Runtime and TensorRT keep
    their own pools, so for them it is the device memory in use (``cudaMemGetInfo``, every process
    on the GPU) after the run. ``scope`` is "run", or "process" where the kernel refused to reset
    the RSS peak (the figure is then the peak since the process started).
    """

    def __init__(self, device: torch.device, torch_allocated: bool = True) -> None:
        self.device = device
        self.cuda = device.type == "cuda"
        self.torch_allocated = torch_allocated
        if not self.cuda:
            self.kind = "rss"
        else:
            self.kind = "cuda_allocated" if torch_allocated else "cuda_in_use"
        self.scope = "run"

    def reset(self) -> None:
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
        elif not _reset_rss_peak():
            self.scope = "process"

    def peak_mb(self) -> float:
        if not self.cuda:
            return round(_status_bytes("VmHWM:") / 2**20, 1)
        if self.torch_allocated:
            return round(torch.cuda.max_memory_allocated(self.device) / 2**20, 1)
        return self.current_mb()

    def current_mb(self) -> float:
        if not self.cuda:
            return round(_status_bytes("VmRSS:") / 2**20, 1)
        if self.torch_allocated:
            return round(torch.cuda.memory_allocated(self.device) / 2**20, 1)
        free, total = torch.cuda.mem_get_info(self.device)
        return round((total - free) / 2**20, 1)


def _status_bytes(field: str) -> int:
    """A field of /proc/self/status in bytes; without /proc, the peak from ``ru_maxrss``."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def _reset_rss_peak() -> bool:
    """Writing 5 to clear_refs resets VmHWM to the current RSS (Linux 4.0+)."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True
