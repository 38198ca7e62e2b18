"""Shared fixtures: the tiny preset drives every CPU test through the production code path."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from vpi.checkpoint import save_checkpoint
from vpi.config import Config, get_preset
from vpi.model import VPIModel


@pytest.fixture
def tiny_config() -> Config:
    return get_preset("tiny")


@pytest.fixture
def tiny_model(tiny_config: Config) -> VPIModel:
    torch.manual_seed(0)
    return VPIModel(tiny_config.model).eval()


@pytest.fixture
def tiny_checkpoint(tmp_path: Path, tiny_model: VPIModel, tiny_config: Config) -> Path:
    """A randomly initialised tiny model saved as a real checkpoint."""
    return save_checkpoint(tmp_path / "tiny.pt", tiny_model, tiny_config, step=0)
