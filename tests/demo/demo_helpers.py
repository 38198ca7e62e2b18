"""Inputs as the demo page holds them, built from the shipped examples; `vpi demo` in a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vpi.demo.inputs import SupportExample
from vpi.runtime.processing import load_image, load_mask

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
STAR5 = EXAMPLES / "support-star5"
QUERIES = EXAMPLES / "queries"


def star5_pair(index: int = 1) -> SupportExample:
    """examples/support-star5's pair ``index`` as the page holds it."""
    image = load_image(STAR5 / f"star5_{index}.png")
    mask = load_mask(STAR5 / f"star5_{index}_mask.png")
    return SupportExample(image, mask, f"star5_{index}.png", f"star5_{index}_mask.png")


def painted_editor(image: np.ndarray, mask: np.ndarray, *, layers: int = 1) -> dict:
    """What Gradio's ImageEditor gives for ``image`` with ``mask`` painted in red, split over
    ``layers`` layers (top and bottom halves of the rows when 2)."""
    painted = []
    rows = np.array_split(np.arange(mask.shape[0]), layers)
    for part in rows:
        layer = np.zeros((*mask.shape, 4), np.uint8)
        selected = np.zeros(mask.shape, bool)
        selected[part] = mask[part] != 0
        layer[selected] = (255, 40, 40, 255)
        painted.append(layer)
    background = np.dstack([image, np.full(mask.shape, 255, np.uint8)])
    return {"background": background, "layers": painted, "composite": background}


def free_port() -> int:
    """A loopback port nothing listens on now (the OS's pick)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class DemoServer:
    """`vpi demo` running in a subprocess; ``lines`` is what it printed so far."""

    url: str
    checkpoint: Path
    process: subprocess.Popen
    lines: list[str] = field(default_factory=list)


def start_demo(args: list[str], cwd: Path, checkpoint: Path, timeout: float = 180.0) -> DemoServer:
    """Run `vpi demo ARGS --port P` in ``cwd`` and wait until it says it is serving."""
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "vpi", "demo", *args, "--port", str(port)],
                               cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    server = DemoServer(f"http://127.0.0.1:{port}", checkpoint, process)
    reader = threading.Thread(target=lambda: server.lines.extend(process.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    deadline = time.monotonic() + timeout
    while not any(line.startswith("serving on") for line in server.lines):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_demo(server)
            raise RuntimeError("vpi demo did not start:\n" + "".join(server.lines))
        time.sleep(0.2)
    return server


def stop_demo(server: DemoServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
