"""The export folder's manifest.json: what was exported, from what, and how well it matched.

Runners read it before loading anything, so a folder from another vpi version, or an engine for
another TensorRT or GPU, is refused with a message that says what to rebuild — never a crash deep
inside a backend.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vpi import __version__
from vpi.errors import BackendError
from vpi.io import atomic_write_text

FORMAT = "vpi-export"
# 2: both graphs lead with a batch axis B (1 had none), and the decoder's maps are (B, H, W).
# 3: the decoder returns the variance, entropy and mutual-information maps (2: "uncertainty").
FORMAT_VERSION = 3
MANIFEST = "manifest.json"


def major_minor(version: str) -> tuple[int, ...]:
    """``"0.1.3" -> (0, 1)``; the parts that must agree between exporter and runner."""
    parts = []
    for piece in version.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else -1)
    return tuple(parts)


def check_vpi_version(found: str | None, where: str) -> None:
    """Refuse files written by a vpi whose major.minor differs from ours (layouts may differ)."""
    if found is None or major_minor(found) != major_minor(__version__):
        raise BackendError(
            f"{where} was written by vpi {found or 'of unknown version'}, but this is vpi "
            f"{__version__}: export the checkpoint again with `vpi export CHECKPOINT`"
        )


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The validated manifest of an export folder; anything else is one BackendError line."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not folder.is_dir():
        raise BackendError(f"export folder {str(folder)!r} does not exist")
    if not path.is_file():
        raise BackendError(
            f"{str(folder)!r} holds no {MANIFEST}, so it is not a vpi export: "
            f"run `vpi export CHECKPOINT --out {folder}`"
        )
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BackendError(f"{str(path)!r} is not readable JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackendError(f"{str(path)!r} is not a vpi export manifest")
    check_vpi_version(manifest.get("vpi_version"), f"export {str(folder)!r}")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackendError(
            f"export {str(folder)!r} was exported by another vpi version (manifest format "
            f"{manifest.get('format_version')}, this vpi reads {FORMAT_VERSION}): export the "
            "checkpoint again with `vpi export CHECKPOINT`"
        )
    return manifest


def write_manifest(folder: str | Path, manifest: dict[str, Any]) -> Path:
    path = Path(folder) / MANIFEST
    atomic_write_text(path, json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    return path
