"""ONNX Runtime runner (CPU and CUDA providers), with the two ways ONNX Runtime fails quietly.

1. ``onnxruntime`` and ``onnxruntime-gpu`` both provide the module ``onnxruntime``; installed
   together, whichever came last wins and the CUDA provider may simply be absent.
2. A requested provider that fails to load (missing CUDA libraries, say) falls back to the CPU
   without an error. ``sess.get_providers()`` is compared with the request and any fallback is
   reported: a warning under ``device="auto"``, an error when CUDA was asked for by name.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

from vpi.errors import BackendError, ConfigError
from vpi.graphs import DECODER_INPUTS, GRAPH_FILES, PRIOR_INPUTS, GraphSpec
from vpi.manifest import check_vpi_version, read_manifest
from vpi.runtime.base import Runner
from vpi.runtime.registry import BACKENDS

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


def double_install_problem(
    version_of: Callable[[str], str] = importlib.metadata.version,
) -> str | None:
    """Explain a simultaneous onnxruntime + onnxruntime-gpu install, or None if there is none."""
    found = []
    for dist in ("onnxruntime", "onnxruntime-gpu"):
        try:
            found.append(f"{dist} {version_of(dist)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    if len(found) < 2:
        return None
    return (
        f"both {found[0]} and {found[1]} are installed; they share the module 'onnxruntime', "
        "so the one installed last wins and the CUDA provider may be missing: "
        "pip uninstall -y onnxruntime onnxruntime-gpu, then pip install onnxruntime-gpu"
    )


def requested_providers(device: str, available: list[str]) -> list[str]:
    """The provider priority list for ``device`` ("auto", "cpu" or "cuda")."""
    if device == "cpu":
        return [CPU]
    if device == "cuda":
        return [CUDA, CPU]
    if device == "auto":
        return [CUDA, CPU] if CUDA in available else [CPU]
    raise ConfigError(f"ONNX Runtime device is {device!r}; choose auto, cpu or cuda")


def fallback_warning(requested: list[str], active: list[str]) -> str | None:
    """Say which requested providers the session silently dropped, or None."""
    dropped = [p for p in requested if p not in active]
    if not dropped:
        return None
    return (
        f"ONNX Runtime was asked for {', '.join(requested)} but runs on {', '.join(active)}: "
        f"{', '.join(dropped)} failed to load (check the CUDA/cuDNN libraries and that only "
        "onnxruntime-gpu is installed)"
    )


class OnnxRunner(Runner):
    """Runs an export folder's two ``.onnx`` graphs with ONNX Runtime."""

    backend = "onnx"

    def __init__(
        self, folder: str | Path, *, device: str = "auto", threads: int | None = None
    ) -> None:
        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder)
        super().__init__(GraphSpec.from_manifest(self.manifest))
        ort = BACKENDS["onnx"].require()
        problem = double_install_problem()
        if problem:
            self.warnings.append(problem)
        # torch is imported before onnxruntime, which makes torch's CUDA libraries visible to it.
        requested = requested_providers(device, ort.get_available_providers())
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.sessions = {
            name: self._session(ort, name, options, requested) for name in GRAPH_FILES
        }
        active = self.sessions["segmentation_decoder"].get_providers()
        self.provider = active[0]
        fallback = fallback_warning(requested, active)
        if fallback and device == "cuda":
            raise BackendError(fallback)
        if fallback:
            self.warnings.append(fallback)
        if device == "auto" and CUDA not in requested and torch.cuda.is_available():
            self.warnings.append(f"this machine has a CUDA GPU, but this ONNX Runtime has no {CUDA}: "
                                 "pip install 'vpi[gpu]' to use it")

    def _session(self, ort: ModuleType, name: str, options: Any, providers: list[str]) -> Any:
        path = self.folder / GRAPH_FILES[name]
        if not path.is_file():
            raise BackendError(f"export {str(self.folder)!r} lacks {path.name}: export it again")
        try:
            session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:  # ORT raises its own exception types for bad files
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise BackendError(f"ONNX Runtime cannot load {str(path)!r}: {first}") from None
        meta = session.get_modelmeta().custom_metadata_map
        check_vpi_version(meta.get("vpi_version"), f"graph {str(path)!r}")
        return session

    @property
    def name(self) -> str:
        return f"onnx ({self.provider})"

    @property
    def device(self) -> torch.device:
        """The CUDA GPU where the CUDA provider runs the graphs, else the CPU."""
        return torch.device("cuda" if self.provider == CUDA else "cpu")

    def _run(self, graph: str, feeds: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        arrays = {key: value.numpy() for key, value in feeds.items()}
        return tuple(_tensor(output) for output in self.sessions[graph].run(None, arrays))

    def _run_prior(
        self, images: torch.Tensor, masks: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        return self._run("prior_encoder", dict(zip(PRIOR_INPUTS, (images, masks), strict=True)))

    def _run_decoder(
        self, query: torch.Tensor, prototypes: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        feeds = dict(zip(DECODER_INPUTS, (query, prototypes), strict=True))
        return self._run("segmentation_decoder", feeds)


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(array, dtype=np.float32))
