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
from vpi.graphs import GraphSpec, SampleMaps
from vpi.ranges import check_batch, check_samples, check_shots

ArrayLike = np.ndarray | torch.Tensor


class Runner(ABC):
    """Runs ``prior_encoder`` and ``segmentation_decoder`` on a batch of B independent items;
    returns fp32 CPU tensors.

    ``name`` says which backend ran (e.g. "onnx (CUDAExecutionProvider)"); ``precision`` what it
    computes in (reports and the parity tolerance read it); ``device`` where it computes (the CPU
    unless a runner says otherwise: the benchmark's clock and the parity tolerance read it);
    ``warnings`` collects what a user should see, such as a provider that silently fell back to
    the CPU.
    """

    backend: str = "base"
    precision: str = "fp32"

    def __init__(self, spec: GraphSpec) -> None:
        self.spec = spec
        self.warnings: list[str] = []
        self._device = torch.device("cpu")

    @property
    def name(self) -> str:
        return self.backend

    @property
    def device(self) -> torch.device:
        """Where the graphs compute."""
        return self._device

    @device.setter
    def device(self, device: torch.device) -> None:
        self._device = device

    def check_request(
        self, *, batch: int | None = None, shots: int | None = None, samples: int | None = None
    ) -> None:
        """B, K and L against what these graphs take (``spec``): the one check of the three,
        which ``run_prior`` and ``run_decoder`` make and callers make before costly work."""
        if batch is not None:
            check_batch(batch, self.spec.max_batch)
        if shots is not None:
            check_shots(shots, self.spec.max_shots)
        if samples is not None:
            check_samples(samples, self.spec.max_samples)

    def run_prior(
        self, images: ArrayLike, masks: ArrayLike
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """B support sets: images (B, K, 3, H, W) in [0, 1], masks (B, K, 1, H, W) -> mean,
        variance (B, D)."""
        s = self.spec.input_size
        images = _as_float("support images", images, ("B", "K", 3, s, s))
        masks = _as_float("support masks", masks, ("B", "K", 1, s, s))
        batch, shots = images.shape[:2]
        if masks.shape[:2] != images.shape[:2]:
            raise DataError(f"got {batch} sets of {shots} support images but {masks.shape[0]} "
                            f"sets of {masks.shape[1]} support masks")
        self.check_request(batch=batch, shots=shots)
        mean, variance = self._run_prior(images, masks)
        return mean, variance

    def run_decoder(
        self, query: ArrayLike, prototypes: ArrayLike
    ) -> SampleMaps:
        """B queries (B, 3, H, W) in [0, 1], each with its own L prototypes (B, L, D) -> the
        mean probability and the uncertainty maps, (B, H, W) each."""
        s = self.spec.input_size
        query = _as_float("query images", query, ("B", 3, s, s))
        prototypes = _as_float("prototypes", prototypes, ("B", "L", self.spec.latent_dim))
        if prototypes.shape[0] != query.shape[0]:
            raise DataError(f"got {query.shape[0]} query images but prototypes for "
                            f"{prototypes.shape[0]}")
        self.check_request(batch=query.shape[0], samples=prototypes.shape[1])
        return SampleMaps(*self._run_decoder(query, prototypes))

    @abstractmethod
    def _run_prior(
        self, images: torch.Tensor, masks: torch.Tensor
    ) -> tuple[torch.Tensor, ...]: ...

    @abstractmethod
    def _run_decoder(
        self, query: torch.Tensor, prototypes: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        """The decoder graph's outputs, in ``DECODER_OUTPUTS`` order."""


def _as_float(
    what: str, value: ArrayLike, shape: tuple[int | str, ...]
) -> torch.Tensor:
    """A contiguous fp32 CPU tensor of ``shape`` (a name such as "B" = any size), or one clear
    error."""
    if isinstance(value, np.ndarray):
        if not np.issubdtype(value.dtype, np.floating):
            raise TypeError(f"{what} must be a float array in [0, 1], got dtype {value.dtype}")
        value = torch.from_numpy(np.ascontiguousarray(value))
    elif not isinstance(value, torch.Tensor):
        raise TypeError(f"{what} must be a numpy array or torch tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"{what} must be a float tensor in [0, 1], got dtype {value.dtype}")
    expected = "(" + ", ".join(str(n) for n in shape) + ")"
    if value.ndim != len(shape) or any(
        isinstance(n, int) and n != got for n, got in zip(shape, value.shape, strict=True)
    ):
        raise DataError(f"{what} has shape {tuple(value.shape)}, expected {expected}")
    return value.detach().to("cpu", torch.float32).contiguous()
