"""Fixtures of the Triton tests, shared by the offline and the server tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="session")
def client() -> ModuleType:
    """examples/triton_client.py, imported as a module."""
    spec = importlib.util.spec_from_file_location("triton_client", EXAMPLES / "triton_client.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
