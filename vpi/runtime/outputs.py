"""Writing what ``vpi segment`` produces: mask, overlay and uncertainty PNGs, and results.json.

The uncertainty PNGs: ``_uncertainty`` (variance of the L samples), ``_entropy`` (of the mean
probability) and ``_mutual_information`` (how much the samples disagree); each query's record
gives its confidence and whether it is likely to have failed (``vpi.graphs.failure_score``).

Every file is written atomically (vpi.io), so an interrupted run never leaves half a PNG behind.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from vpi import __version__
from vpi.io import atomic_write_bytes, atomic_write_text

if TYPE_CHECKING:
    from vpi.runtime.segmenter import Segmentation
    from vpi.runtime.select import BackendChoice

OVERLAY_COLOUR = np.array([255, 40, 40], dtype=np.float32)
OVERLAY_ALPHA = 0.5
MAX_STD = 0.5  # the spread of values in [0, 1]: variance at most 1/4, standard deviation 1/2
COLORMAP = "inferno"
# Each map's PNG: the Segmentation field, the top of its fixed scale, and whether the square root
# is shown (so the small spreads of a confident model stay visible). Entropy is shown as it is.
HEAT_MAPS = {
    "uncertainty": ("uncertainty", MAX_STD**2, True),
    "entropy": ("entropy", math.log(2), False),
    "mutual_information": ("mutual_information", math.log(2), True),
}


def overlay(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The image with the mask tinted over it: (H, W, 3) uint8."""
    weight = OVERLAY_ALPHA * mask.astype(np.float32)[..., None]
    blended = image.astype(np.float32) * (1.0 - weight) + OVERLAY_COLOUR * weight
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def heat_map(values: np.ndarray, top: float = MAX_STD**2, root: bool = True) -> np.ndarray:
    """An uncertainty map as a colour image (H, W, 3) uint8, by default the variance.

    On a fixed 0..``top`` scale, so maps compare across images and runs; with ``root`` the square
    root is coloured (the variance as a standard deviation 0..0.5).
    """
    from matplotlib import colormaps  # only this function needs matplotlib

    scaled = np.clip(np.clip(values, 0.0, None) / top, 0.0, 1.0)
    scaled = np.sqrt(scaled) if root else scaled
    return (colormaps[COLORMAP](scaled)[..., :3] * 255).round().astype(np.uint8)


def write_png(path: Path, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())


def output_paths(out_dir: Path, query: Path) -> dict[str, Path]:
    """Where one query's PNGs go: ``<stem>_mask.png``, ``_overlay.png`` and one per heat map."""
    return {kind: out_dir / f"{query.stem}_{kind}.png"
            for kind in ("mask", "overlay", *HEAT_MAPS)}


def write_query_outputs(
    out_dir: Path, query: Path, image: np.ndarray, result: Segmentation
) -> dict[str, str]:
    """The PNGs of one query; returns their file names for results.json."""
    paths = output_paths(out_dir, query)
    write_png(paths["mask"], result.mask.astype(np.uint8) * 255)
    write_png(paths["overlay"], overlay(image, result.mask))
    for kind, (field, top, root) in HEAT_MAPS.items():
        write_png(paths[kind], heat_map(getattr(result, field), top, root))
    return {kind: path.name for kind, path in paths.items()}


def query_record(
    query: str, image: np.ndarray, result: Segmentation, files: dict[str, str],
    timing_ms: dict[str, float],
) -> dict[str, Any]:
    """One query's entry in results.json: its size (W, H), output files, figures and timings."""
    return {
        "query": query,
        "size": [image.shape[1], image.shape[0]],
        "files": files,
        "foreground_fraction": round(result.foreground_fraction, 6),
        "mean_uncertainty": round(result.mean_uncertainty, 8),
        "confidence": round(result.confidence, 6),
        "likely_failed": result.likely_failed,
        "timing_ms": timing_ms,
    }


def results_document(
    choice: BackendChoice,
    *,
    checkpoint: str | Path | None,
    engine_dir: str | Path | None,
    support: dict[str, Any],
    samples: int,
    seed: int,
    threshold: float,
    batch_size: int,
    queries: list[dict[str, Any]],
    timing_ms: dict[str, float],
) -> dict[str, Any]:
    """What results.json holds, for `vpi segment` and `vpi demo` alike: the backend and why, the
    model, the support pairs, the settings, one ``query_record`` per query and the timings."""
    return {
        "vpi_version": __version__,
        "backend": choice.runner.name,
        "precision": choice.runner.precision,
        "backend_choice": choice.reason,
        "warnings": list(choice.runner.warnings),
        "checkpoint": str(checkpoint) if checkpoint is not None else None,
        "engine_dir": str(engine_dir) if engine_dir is not None else None,
        "support": support,
        "samples": samples,
        "samples_decoded": samples if choice.runner.spec.probabilistic else 1,
        "seed": seed,
        "threshold": threshold,
        "failure_threshold": choice.runner.spec.failure_threshold,
        "batch_size": batch_size,
        "queries": queries,
        "timing_ms": timing_ms,
    }


def write_results(out_dir: Path, results: dict[str, Any]) -> Path:
    path = out_dir / "results.json"
    atomic_write_text(path, json.dumps(results, indent=2) + "\n")
    return path
