"""Opening a backend by name, or choosing one: TensorRT, ONNX Runtime (CUDA, then CPU), PyTorch.

An export folder (``--engine-dir``) can run on TensorRT or ONNX Runtime; a checkpoint runs on
PyTorch. ``auto`` takes the fastest backend that works here and says which one it took and why
it skipped the others — a silent downgrade to a slower backend is the bug this guards against.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vpi.errors import BackendError, ConfigError
from vpi.manifest import read_manifest
from vpi.runtime.base import Runner
from vpi.runtime.onnx_runner import CUDA, OnnxRunner, import_onnxruntime
from vpi.runtime.tensorrt_runner import TensorRTRunner
from vpi.runtime.torch_runner import TorchRunner

BACKENDS = ("auto", "torch", "onnx", "trt")


@dataclass
class BackendChoice:
    runner: Runner
    skipped: dict[str, str] = field(default_factory=dict)  # backend -> why it was not used

    @property
    def reason(self) -> str:
        """One line for the user: what runs, and why faster backends were passed over."""
        line = f"backend: {self.runner.name}"
        if self.skipped:
            line += "; skipped " + "; ".join(f"{k} ({v})" for k, v in self.skipped.items())
        return line


def open_backend(
    backend: str = "auto",
    *,
    checkpoint: str | Path | None = None,
    engine_dir: str | Path | None = None,
    device: str = "auto",
) -> BackendChoice:
    """A runner for exactly one of ``checkpoint`` (PyTorch) or ``engine_dir`` (an export)."""
    if backend not in BACKENDS:
        raise ConfigError(f"backend is {backend!r}; choose one of: {', '.join(BACKENDS)}")
    if checkpoint is not None and engine_dir is not None:
        raise ConfigError("give a checkpoint or an export folder (--engine-dir), not both")
    if checkpoint is None and engine_dir is None:
        raise ConfigError("give a checkpoint or an export folder (--engine-dir) to run")
    if checkpoint is not None:
        if backend in ("onnx", "trt"):
            raise ConfigError(
                f"--backend {backend} runs an export folder: run `vpi export CHECKPOINT --out DIR`"
                f"{' --engine trt' if backend == 'trt' else ''}, then pass --engine-dir DIR"
            )
        skipped = {} if backend == "torch" else {"trt/onnx": "they run an export (--engine-dir)"}
        return BackendChoice(TorchRunner.from_checkpoint(checkpoint, device=device), skipped)
    if backend == "torch":
        raise ConfigError("--backend torch runs a checkpoint: pass --checkpoint, not --engine-dir")
    if backend == "trt":
        return BackendChoice(TensorRTRunner(engine_dir))
    if backend == "onnx":
        return BackendChoice(OnnxRunner(engine_dir, device=device))
    return _auto(Path(engine_dir), device)


def _auto(engine_dir: Path, device: str) -> BackendChoice:
    manifest = read_manifest(engine_dir)  # a folder from another vpi fails here, for every backend
    skipped: dict[str, str] = {}
    if not manifest.get("tensorrt"):
        skipped["trt"] = "the export holds no TensorRT engines"
    elif device == "cpu":
        skipped["trt"] = "device is cpu"
    else:
        try:
            return BackendChoice(TensorRTRunner(engine_dir))
        except BackendError as exc:
            skipped["trt"] = str(exc)
    ort = import_onnxruntime()
    if device != "cpu" and CUDA not in ort.get_available_providers():
        skipped["onnx+CUDA"] = f"this ONNX Runtime has no {CUDA}"
    return BackendChoice(OnnxRunner(engine_dir, device=device), skipped)
