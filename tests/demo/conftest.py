"""The demo page's tests share one checkpoint whose masks depend on the support, and one server."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from demo_helpers import DemoServer, start_demo, stop_demo
from runtime.helpers import support_reading_model

from vpi.checkpoint import save_checkpoint
from vpi.config import get_preset

RUN = "tiny-20260101-000000"  # the run folder the demo server finds


@pytest.fixture(scope="session")
def reading_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny preset made to read its support (runtime.helpers): masks neither empty nor full."""
    folder = tmp_path_factory.mktemp("demo-model")
    return save_checkpoint(folder / "reads.pt", support_reading_model(), get_preset("tiny"), step=0)


@pytest.fixture(scope="session")
def demo_server(reading_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[DemoServer]:
    """`vpi demo` with no model argument, in a folder whose newest run is ``reading_checkpoint``,
    or the checkpoint VPI_DEMO_CHECKPOINT=runs/RUN/best.pt names (the README's picture is of the
    demo preset's)."""
    pytest.importorskip("gradio", reason="the demo page needs the demo extra: pip install -e '.[demo]'")
    cwd = tmp_path_factory.mktemp("demo-server")
    chosen = Path(os.environ.get("VPI_DEMO_CHECKPOINT") or reading_checkpoint)
    run = cwd / "runs" / (chosen.parent.name if "VPI_DEMO_CHECKPOINT" in os.environ else RUN)
    run.mkdir(parents=True)
    checkpoint = Path(shutil.copy(chosen, run / "best.pt"))
    server = start_demo(["--device", "cpu"], cwd, checkpoint)
    yield server
    stop_demo(server)
