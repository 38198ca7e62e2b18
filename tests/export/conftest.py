"""Fixtures of the export tests; the Triton ones are shared by the offline and the server tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import torch
from runtime.helpers import exported, reading_export  # noqa: F401  (the session's exports)

from vpi.checkpoint import save_checkpoint
from vpi.config import get_preset
from vpi.model import VPIModel

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny preset, randomly initialised as in ``tiny_checkpoint``, shared by the session."""
    config = get_preset("tiny")
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("triton")
    return save_checkpoint(folder / "tiny.pt", VPIModel(config.model).eval(), config, step=0)


@pytest.fixture(scope="session")
def client() -> ModuleType:
    """examples/triton_client.py, imported as a module."""
    spec = importlib.util.spec_from_file_location("triton_client", EXAMPLES / "triton_client.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
