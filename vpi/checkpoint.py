"""Checkpoints: config, weights, optimizer state, step and versions in one atomically written file.

The config inside rebuilds the model, so eval, export and the runtime need nothing but the path.
"""

from __future__ import annotations

import hashlib
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from vpi import __version__
from vpi.config import Config, apply_overrides, config_from_dict, config_to_dict
from vpi.errors import CheckpointError, VpiError
from vpi.io import atomic_path
from vpi.model import VPIModel

FORMAT = "vpi-checkpoint"
FORMAT_VERSION = 1  # bump when the state-dict layout changes; older files are refused


def save_checkpoint(
    path: str | Path,
    model: VPIModel,
    config: Config,
    *,
    step: int,
    optimizer: torch.optim.Optimizer | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write atomically (temp file + rename): an interrupted save leaves the old file intact."""
    state = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "vpi_version": __version__,
        "torch_version": torch.__version__,
        "config": config_to_dict(config),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "step": step,
        **(extra or {}),
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return Path(path)


def failure_flag(state: dict[str, Any]) -> dict[str, Any] | None:
    """How training chose to flag likely failed queries (``vpi.eval.uncertainty``), if it did."""
    return (state.get("selection") or {}).get("failure_flag")


def failure_threshold(state: dict[str, Any]) -> float | None:
    flag = failure_flag(state)
    return None if flag is None else flag["threshold"]


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load and validate a checkpoint file; anything else is one clear CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, OSError) as exc:
        raise CheckpointError(f"{str(path)!r} is not a vpi checkpoint ({exc})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{str(path)!r} is not a vpi checkpoint")
    if state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {str(path)!r} has format {state.get('format_version')} "
            f"(written by vpi {state.get('vpi_version')}); this vpi {__version__} reads format "
            f"{FORMAT_VERSION}: retrain or export with the matching vpi version"
        )
    return state


def load_model(
    path: str | Path, device: torch.device | str = "cpu", test_time: dict[str, Any] | None = None
) -> tuple[VPIModel, Config, dict[str, Any]]:
    """Rebuild the model from the checkpoint's own config; returns it in eval mode. ``test_time``
    (e.g. ``{"blocks_per_sample": "none"}``) changes model fields that no weight depends on
    (``TEST_TIME_MODEL_FIELDS``), as the returned config then says: what an export is built with."""
    state = read_checkpoint(path)
    try:
        config = config_from_dict(state["config"])
    except VpiError as exc:
        raise CheckpointError(f"checkpoint {str(path)!r} holds an unusable config: {exc}") from None
    model = VPIModel(config.model)
    weights = state.get("model") or {}
    expected = model.state_dict()
    missing = [k for k in expected if k not in weights]
    unexpected = [k for k in weights if k not in expected]
    misshapen = [k for k in expected if k in weights and weights[k].shape != expected[k].shape]
    for problem, keys in (("lacks", missing), ("has unknown", unexpected),
                          ("has wrongly shaped", misshapen)):
        if keys:
            raise CheckpointError(
                f"checkpoint {str(path)!r} {problem} weights for its model: "
                f"{', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''} ({len(keys)} in all)"
            )
    model.load_state_dict(weights)
    if test_time:
        config = apply_overrides(config, {"model": test_time})
        model.use_test_time(config.model)
    return model.to(device).eval(), config, state


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
