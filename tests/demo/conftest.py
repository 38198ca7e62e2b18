"""The demo page's tests share one checkpoint whose masks depend on the support."""

from __future__ import annotations

from pathlib import Path

import pytest
from runtime.helpers import (
    exported,  # noqa: F401  (the session's shared tiny export)
    support_reading_model,
)

from vpi.checkpoint import save_checkpoint
from vpi.config import get_preset


@pytest.fixture(scope="session")
def reading_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny preset made to read its support (runtime.helpers): masks neither empty nor full."""
    folder = tmp_path_factory.mktemp("demo-model")
    return save_checkpoint(folder / "reads.pt", support_reading_model(), get_preset("tiny"), step=0)
