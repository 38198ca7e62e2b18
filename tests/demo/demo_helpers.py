"""Inputs as the demo page holds them, built from the shipped examples."""

from __future__ import annotations

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
