"""An exponential moving average of the trained weights (Polyak averaging).

A run of a thousand small batches ends wherever its last batches pushed it; the average of its
last few hundred steps is a flatter, steadier point, and the one that validation then chooses
between is less a matter of which batch came last (``train.average_decay``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


class WeightAverage:
    """The running average of ``model``'s trained parameters (those with ``requires_grad``)."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.params = {name: p for name, p in model.named_parameters() if p.requires_grad}
        self.average = {name: p.detach().clone() for name, p in self.params.items()}

    @torch.no_grad()
    def update(self) -> None:
        """Fold the current weights in, after an optimizer step."""
        for name, p in self.params.items():
            self.average[name].lerp_(p.detach(), 1.0 - self.decay)

    @contextmanager
    def applied(self) -> Iterator[None]:
        """The model holds the averaged weights inside the block, its own again after it."""
        own = {name: p.detach().clone() for name, p in self.params.items()}
        _copy_into(self.params, self.average)
        try:
            yield
        finally:
            _copy_into(self.params, own)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.average)

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        _copy_into(self.average, state)


@torch.no_grad()
def _copy_into(targets: dict[str, torch.Tensor], sources: dict[str, torch.Tensor]) -> None:
    for name, target in targets.items():
        target.copy_(sources[name])
