"""Shared fixtures: the tiny preset drives every CPU test through the production code path.

The checkpoint and the exports are built once per session and only read; a test that changes one
works on a copy in its tmp_path (``runtime.helpers.copy_export`` for an export).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from runtime.helpers import support_reading_model

from vpi.checkpoint import save_checkpoint
from vpi.config import Config, get_preset
from vpi.export import export_model
from vpi.model import VPIModel


def _tiny_model(config: Config) -> VPIModel:
    torch.manual_seed(0)
    return VPIModel(config.model).eval()


@pytest.fixture
def tiny_config() -> Config:
    return get_preset("tiny")


@pytest.fixture
def tiny_model(tiny_config: Config) -> VPIModel:
    """The tiny preset, randomly initialised from seed 0."""
    return _tiny_model(tiny_config)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tiny_model`` saved as a real checkpoint, once per session."""
    config = get_preset("tiny")
    folder = tmp_path_factory.mktemp("tiny")
    return save_checkpoint(folder / "tiny.pt", _tiny_model(config), config, step=0)


@pytest.fixture(scope="session")
def exported(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(checkpoint, export folder): ``tiny_checkpoint`` exported to ONNX, once per session."""
    folder = tmp_path_factory.mktemp("tiny-export") / "onnx"
    export_model(tiny_checkpoint, folder)
    return tiny_checkpoint, folder


@pytest.fixture(scope="session")
def reading_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(checkpoint, fp32 ONNX export) of ``support_reading_model``, whose class-IoU is neither 0
    nor blind to the noise: what accuracy comparisons between engines need."""
    folder = tmp_path_factory.mktemp("reading")
    checkpoint = save_checkpoint(folder / "reads.pt", support_reading_model(), get_preset("tiny"),
                                 step=0)
    export_model(checkpoint, folder / "onnx")
    return checkpoint, folder / "onnx"
