"""One Runner interface for every backend: the base class checks inputs, subclasses only execute.

A runner executes the two exported graphs (``vpi.graphs``) and nothing else, so torch, ONNX
Runtime, OpenVINO and TensorRT differ only in how they run the same computation. Inputs are
checked here, once, with messages that name what was received and what the graphs take.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch

from vpi.errors import DataError
from vpi.graphs import GraphSpec
from vpi.ranges import check_samples, check_shots

ArrayLike = np.ndarray | torch.Tensor


class Runner(ABC):
    """Runs ``prior_encoder`` and ``segmentation_decoder``; returns fp32 CPU tensors.

    ``name`` says which backend ran (e.g. "onnx (CUDAExecutionProvider)"); ``precision`` what it
    computes in (reports and the parity tolerance read it); ``warnings`` collects what a user
    should see, such as a provider that silently fell back to the CPU.
    """

    backend: str = "base"
    precision: str = "fp32"

    def __init__(self, spec: GraphSpec) -> None:
        self.spec = spec
        self.warnings: list[str] = []

    @property
    def name(self) -> str:
        return self.backend

    def run_prior(
        self, images: ArrayLike, masks: ArrayLike
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Support images (K, 3, H, W) in [0, 1], masks (K, 1, H, W) -> mean, variance (1, D)."""
        s = self.spec.input_size
        images = _as_float("support images", images, (None, 3, s, s))
        masks = _as_float("support masks", masks, (None, 1, s, s))
        shots = images.shape[0]
        if masks.shape[0] != shots:
            raise DataError(f"got {shots} support images but {masks.shape[0]} support masks")
        check_shots(shots, self.spec.max_shots)
        return self._run_prior(images, masks)

    def run_decoder(
        self, query: ArrayLike, prototypes: ArrayLike
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Query (1, 3, H, W) in [0, 1], prototypes (L, D) -> probability, uncertainty (1, 1, H, W)."""
        s = self.spec.input_size
        query = _as_float("query image", query, (1, 3, s, s))
        prototypes = _as_float("prototypes", prototypes, (None, self.spec.latent_dim))
        check_samples(prototypes.shape[0], self.spec.max_samples)
        return self._run_decoder(query, prototypes)

    @abstractmethod
    def _run_prior(
        self, images: torch.Tensor, masks: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]: ...

    @abstractmethod
    def _run_decoder(
        self, query: torch.Tensor, prototypes: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]: ...


def _as_float(
    what: str, value: ArrayLike, shape: tuple[int | None, ...]
) -> torch.Tensor:
    """A contiguous fp32 CPU tensor of ``shape`` (None = any size), or one clear error."""
    if isinstance(value, np.ndarray):
        if not np.issubdtype(value.dtype, np.floating):
            raise TypeError(f"{what} must be a float array in [0, 1], got dtype {value.dtype}")
        value = torch.from_numpy(np.ascontiguousarray(value))
    elif not isinstance(value, torch.Tensor):
        raise TypeError(f"{what} must be a numpy array or torch tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"{what} must be a float tensor in [0, 1], got dtype {value.dtype}")
    expected = "(" + ", ".join("N" if n is None else str(n) for n in shape) + ")"
    if value.ndim != len(shape) or any(
        n is not None and n != got for n, got in zip(shape, value.shape, strict=True)
    ):
        raise DataError(f"{what} has shape {tuple(value.shape)}, expected {expected}")
    return value.detach().to("cpu", torch.float32).contiguous()
