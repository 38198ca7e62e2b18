"""The machine a benchmark ran on: CPU model and cores, memory, GPU, load and library versions.

A latency without its machine is not a result; every report carries this record.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
from pathlib import Path
from typing import Any

import torch

from vpi import __version__

_LIBRARIES = ("torch", "torchvision", "onnxruntime", "onnxruntime-gpu", "onnx", "numpy",
              "openvino", "tensorrt", "tensorrt-cu13")


def describe_machine(device: torch.device | None = None) -> dict[str, Any]:
    """Everything that changes a timing: CPU, cores the process may use, threads, GPU, versions."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    info: dict[str, Any] = {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": cpu_model(),
        "cpu_cores_logical": os.cpu_count(),
        "cpu_cores_usable": usable,
        "torch_threads": torch.get_num_threads(),
        "memory_total_gb": _memory_total_gb(),
        "load_average": [round(x, 2) for x in load] if load else None,
        "gpu": None,
        "versions": {"vpi": __version__, **_versions()},
    }
    if torch.cuda.is_available():
        index = device.index if device is not None and device.type == "cuda" and device.index else 0
        props = torch.cuda.get_device_properties(index)
        info["gpu"] = {
            "name": props.name,
            "memory_gb": round(props.total_memory / 2**30, 1),
            "compute_capability": f"{props.major}.{props.minor}",
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
            "device_count": torch.cuda.device_count(),
        }
    return info


def cpu_model(cpuinfo: str | None = None) -> str:
    """The CPU's marketing name from /proc/cpuinfo ("model name", or "Hardware" on ARM)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return platform.processor() or platform.machine()
    for key in ("model name", "Hardware", "Processor"):
        for line in cpuinfo.splitlines():
            name, sep, value = line.partition(":")
            if sep and name.strip() == key and value.strip():
                return value.strip()
    return platform.processor() or platform.machine()


def _memory_total_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _versions() -> dict[str, str]:
    found = {}
    for dist in _LIBRARIES:
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found
