"""Eager PyTorch runner: the reference every other backend is compared against."""

from __future__ import annotations

from pathlib import Path

import torch

from vpi.checkpoint import failure_threshold, load_model
from vpi.device import autocast, autocast_dtype, resolve_device
from vpi.graphs import GraphSpec
from vpi.model import VPIModel
from vpi.model.graphs import PriorEncoderGraph, SegmentationDecoderGraph
from vpi.runtime.base import Runner


class TorchRunner(Runner):
    """Runs the same graph modules that are exported, on the CPU or CUDA.

    ``amp`` turns on autocast where CUDA is used (the graphs keep their reductions in fp32); on the
    CPU it is a no-op, so CPU results are plain fp32 and match ONNX Runtime to ~1e-7.
    """

    backend = "torch"

    def __init__(
        self, model: VPIModel, spec: GraphSpec, *, device: str = "auto", amp: bool = True
    ) -> None:
        super().__init__(spec)
        self.device = resolve_device(device)
        self.amp = amp
        if amp and self.device.type == "cuda":
            bf16 = autocast_dtype(self.device) == torch.bfloat16
            self.precision = "bf16 autocast" if bf16 else "fp16 autocast"
        model = model.to(self.device).eval()
        self.prior_graph = PriorEncoderGraph(model).eval()
        self.decoder_graph = SegmentationDecoderGraph(model).eval()

    @classmethod
    def from_checkpoint(
        cls, path: str | Path, *, device: str = "auto", amp: bool = True
    ) -> TorchRunner:
        model, config, state = load_model(path)
        spec = GraphSpec.from_config(config, failure_threshold(state))
        return cls(model, spec, device=device, amp=amp)

    @property
    def name(self) -> str:
        return f"torch ({self.device.type})"

    @torch.inference_mode()
    def _run_prior(
        self, images: torch.Tensor, masks: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        with autocast(self.device, self.amp):
            out = self.prior_graph(images.to(self.device), masks.to(self.device))
        return _to_cpu(out)

    @torch.inference_mode()
    def _run_decoder(
        self, query: torch.Tensor, prototypes: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        with autocast(self.device, self.amp):
            out = self.decoder_graph(query.to(self.device), prototypes.to(self.device))
        return _to_cpu(out)


def _to_cpu(outputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    return tuple(output.float().cpu() for output in outputs)
