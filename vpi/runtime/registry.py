"""The backend registry: every runner vpi has, what it needs, and how to open it.

Selection (``open_backend``, ``--backend auto`` included), `vpi bench`, `vpi export` and the CLI's
help text all read this one table, so a new backend is one runner module and one entry here.
Entries run from the reference (eager PyTorch) to the fastest; ``auto`` tries them fastest first.

This module imports neither torch nor any backend library: the CLI reads it to write its help, and
each opener imports its runner only when it is called.
"""

from __future__ import annotations

import importlib
import platform
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from vpi.errors import BackendError, ConfigError

if TYPE_CHECKING:

    from vpi.runtime.base import Runner

CHECKPOINT, EXPORT = "checkpoint", "export"  # what a backend runs: a training checkpoint, or an export folder
PERFORMANCE_HINTS = ("latency", "throughput")
AUTO_PRECISION = "auto"  # the backend library's own pick for this machine
_X86 = ("x86_64", "amd64", "i386", "i686")


@dataclass(frozen=True)
class RunnerOptions:
    """How to run. A backend reads the device and the fields its entry ``takes``, and ignores the
    rest, so one set of options opens every backend of a sweep.

    ``precision`` None is the backend's default (an export's recorded precision, else fp32);
    ``"auto"`` lets the library pick for this CPU (what `vpi bench` measures on random weights).
    """

    device: str = "auto"
    threads: int | None = None
    precision: str | None = None
    performance_hint: str | None = None

    def __post_init__(self) -> None:
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"--threads is {self.threads}; it must be 1 or more")
        if self.performance_hint is not None and self.performance_hint not in PERFORMANCE_HINTS:
            raise ConfigError(f"--performance-hint is {self.performance_hint!r}; choose one of: "
                              f"{', '.join(PERFORMANCE_HINTS)}")

    def given(self) -> list[str]:
        """The options set beyond the device, by field name."""
        return [f.name for f in fields(self) if f.name != "device" and getattr(self, f.name) is not None]


def flag(option: str) -> str:
    """The CLI flag of a RunnerOptions field: ``performance_hint`` -> ``--performance-hint``."""
    return "--" + option.replace("_", "-")


def _never(device: str) -> str | None:
    return None


@dataclass(frozen=True)
class Backend:
    """One backend: what it runs, the package it needs and how to open it (its runner says where
    it computes: ``Runner.device``).

    ``summary`` is its phrase in the CLI's help, ``library`` its name in messages. ``engine`` is
    the `vpi export --engine` (named after the backend) that writes the files it runs from, None
    for a backend that runs a checkpoint; ``reads_onnx`` says a plain ONNX export will do as well.
    ``key`` names its section of an export's manifest and its parity report. ``takes`` lists the
    RunnerOptions fields it reads, ``precisions`` its --precision values. ``auto_skip`` gives the
    reason ``auto`` passes it over for a device before trying to open it.
    """

    name: str
    summary: str
    library: str
    key: str
    runs: str
    package: str
    missing: str
    opener: Callable[[Path, RunnerOptions], Runner]
    engine: str | None = None
    reads_onnx: bool = False
    precisions: tuple[str, ...] = ()
    takes: frozenset[str] = field(default_factory=frozenset)
    auto_skip: Callable[[str], str | None] = _never

    def require(self) -> ModuleType:
        """The backend's library, or a BackendError with the line that says how to install it."""
        try:
            return importlib.import_module(self.package)
        except ImportError:
            raise BackendError(self.missing) from None

    def open(self, source: str | Path, options: RunnerOptions | None = None) -> Runner:
        """A runner of ``source`` (a checkpoint or an export folder, as ``runs`` says)."""
        options = options or RunnerOptions()
        if "precision" in self.takes and options.precision not in (None, AUTO_PRECISION,
                                                                    *self.precisions):
            raise ConfigError(f"precision is {options.precision!r}; {self.name} takes: "
                              f"{', '.join((AUTO_PRECISION, *self.precisions))}")
        return self.opener(Path(source), options)


def _torch(path: Path, options: RunnerOptions) -> Runner:
    from vpi.runtime.torch_runner import TorchRunner

    return TorchRunner.from_checkpoint(path, device=options.device, amp=False)


def _torch_amp(path: Path, options: RunnerOptions) -> Runner:
    from vpi.device import resolve_device
    from vpi.runtime.torch_runner import TorchRunner

    if resolve_device(options.device).type != "cuda":
        raise BackendError("autocast runs on CUDA only; on the CPU it is the torch backend")
    return TorchRunner.from_checkpoint(path, device=options.device, amp=True)


def _onnx(folder: Path, options: RunnerOptions) -> Runner:
    from vpi.device import resolve_device
    from vpi.runtime.onnx_runner import OnnxRunner

    # ONNX Runtime is told a kind of device: "cuda:N" is checked as torch checks it, then "cuda".
    device = "auto" if options.device == "auto" else resolve_device(options.device).type
    return OnnxRunner(folder, device=device, threads=options.threads)


def _openvino(folder: Path, options: RunnerOptions) -> Runner:
    from vpi.runtime.openvino_runner import OpenVinoRunner

    return OpenVinoRunner(folder, device=options.device, precision=options.precision,
                          threads=options.threads, performance_hint=options.performance_hint)


def _trt(folder: Path, options: RunnerOptions) -> Runner:
    from vpi.runtime.tensorrt_runner import TensorRTRunner

    return TensorRTRunner(folder)


def _trt_auto_skip(device: str) -> str | None:
    return "device is cpu" if device == "cpu" else None


def _openvino_auto_skip(device: str) -> str | None:
    """OpenVINO computes on the CPU here; auto prefers it on x86, unless ONNX Runtime has a GPU."""
    if device not in ("auto", "cpu"):
        return f"it runs on the CPU, and device is {device}"
    machine = platform.machine()
    if machine.lower() not in _X86:
        return f"auto prefers it on x86 CPUs, and this one is {machine}"
    if device == "auto" and _onnx_has_a_gpu():
        return "ONNX Runtime can use this machine's CUDA GPU"
    return None


def _onnx_has_a_gpu() -> bool:
    import torch

    if not torch.cuda.is_available():
        return False
    try:
        providers = BACKENDS["onnx"].require().get_available_providers()
    except BackendError:
        return False
    return "CUDAExecutionProvider" in providers


_TORCH_MISSING = "PyTorch is not installed: pip install vpi"
_ENTRIES = (
    Backend(name="torch", summary="eager PyTorch, the reference", library="PyTorch", key="torch",
            runs=CHECKPOINT, package="torch", missing=_TORCH_MISSING, opener=_torch),
    Backend(name="torch-amp", summary="PyTorch with autocast, CUDA only", library="PyTorch",
            key="torch", runs=CHECKPOINT, package="torch", missing=_TORCH_MISSING,
            opener=_torch_amp),
    Backend(name="onnx", summary="ONNX Runtime, CPU or CUDA", library="ONNX Runtime",
            key="onnxruntime", runs=EXPORT, package="onnxruntime",
            missing="ONNX Runtime is not installed: pip install 'vpi[cpu]' (or 'vpi[gpu]' for CUDA)",
            opener=_onnx, engine="onnx", reads_onnx=True,
            takes=frozenset({"threads"})),
    Backend(name="openvino", summary="OpenVINO on the CPU", library="OpenVINO", key="openvino",
            runs=EXPORT, package="openvino",
            missing="OpenVINO is not installed: pip install 'vpi[openvino]'",
            opener=_openvino, engine="openvino", reads_onnx=True,
            precisions=("fp32", "bf16", "fp16", "int8"),
            takes=frozenset({"threads", "precision", "performance_hint"}),
            auto_skip=_openvino_auto_skip),
    Backend(name="trt", summary="TensorRT engines, NVIDIA GPU", library="TensorRT", key="tensorrt",
            runs=EXPORT, package="tensorrt",
            missing="TensorRT is not installed: pip install 'vpi[gpu]' on a machine with an NVIDIA GPU",
            opener=_trt, engine="trt", auto_skip=_trt_auto_skip),
)
BACKENDS: dict[str, Backend] = {entry.name: entry for entry in _ENTRIES}
ENGINES = tuple(dict.fromkeys(b.engine for b in _ENTRIES if b.engine))  # `vpi export --engine`


def taking(option: str) -> list[str]:
    """The backends that take a RunnerOptions field, e.g. "precision" -> ["openvino"]."""
    return [b.name for b in _ENTRIES if option in b.takes]


def backend_help(*, auto: bool) -> str:
    """The backends for a --backend help text, each with what it is."""
    listed = ", ".join(f"{b.name} ({b.summary})" for b in _ENTRIES)
    return f"auto (the fastest that runs here), {listed}" if auto else listed


def precision_help(default: str) -> str:
    """The --precision help text of a command that runs a backend, ending with its default."""
    parts = [f"{b.name}: {', '.join(b.precisions)}" for b in _ENTRIES if "precision" in b.takes]
    return (f"Inference precision ({'; '.join(parts)}), or {AUTO_PRECISION}: the library's own "
            f"pick for this CPU. Default: {default}.")
