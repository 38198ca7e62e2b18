"""Helpers shared by the export, runtime and CLI tests (importable as ``runtime.helpers``); the
session's tiny checkpoint and exports are fixtures of tests/conftest.py."""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from vpi.checkpoint import save_checkpoint
from vpi.cli import main
from vpi.config import Config, get_preset
from vpi.data import build_episodes, collate_episodes
from vpi.errors import BackendError
from vpi.model import VPIModel
from vpi.runtime.registry import BACKENDS
from vpi.runtime.tensorrt_compat import import_tensorrt


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: Any
            ) -> tuple[int, str, str]:
    """Run `vpi ARGS...` in-process as the console script does; exit code, stdout, stderr."""
    monkeypatch.setattr(sys, "argv", ["vpi", *map(str, args)])
    with pytest.raises(SystemExit) as info:
        main()
    out, err = capsys.readouterr()
    return info.value.code, out, err


def support_reading_model() -> VPIModel:
    """The tiny preset, randomly initialised, made to read its support: z moves every logit a
    lot, the prior's variance stays about 1 (so the noise matters too), and the head's bias puts
    about half the pixels of the built-in test queries in the foreground."""
    config = get_preset("tiny")
    torch.manual_seed(0)
    model = VPIModel(config.model).eval()
    episodes = build_episodes(config.data, "test", shots=1, episodes=8, seed=0)
    batch = collate_episodes([episodes[i] for i in range(8)])
    with torch.no_grad():
        model.decoder.prototype_proj.weight.mul_(50)
        model.prior_net.mean.weight.mul_(50)
        mean, _ = model.prior(batch.support_images, batch.support_masks)
        logits = model.decode(model.encoder(batch.query_image), mean[:, None], (64, 64))
        model.decoder.head.bias.sub_(logits.median())
    return model


def openvino_missing() -> str | None:
    """Why OpenVINO cannot run here (the registry's one-line reason), or None if it can."""
    try:
        BACKENDS["openvino"].require()
    except BackendError as exc:
        return str(exc)
    return None


def tensorrt_missing() -> str | None:
    """Why TensorRT cannot run here (the library's own one-line reason), or None if it can."""
    try:
        import_tensorrt()
    except BackendError as exc:
        return str(exc)
    return None


def copy_export(source: Path, target: Path, **manifest_changes: Any) -> Path:
    """A copy of an export folder, with top-level manifest fields replaced."""
    shutil.copytree(source, target)
    manifest = json.loads((target / "manifest.json").read_text())
    manifest.update(manifest_changes)
    (target / "manifest.json").write_text(json.dumps(manifest))
    return target


def write_pair(folder: Path, name: str, image: np.ndarray, mask: np.ndarray,
               mask_name: str | None = None) -> None:
    """``name`` (an image file name) and its mask, ``<stem>_mask.png`` unless ``mask_name``."""
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(folder / name)
    Image.fromarray((mask != 0).astype(np.uint8) * 255).save(
        folder / (mask_name or f"{Path(name).stem}_mask.png"))


def blob_pair(seed: int, height: int = 48, width: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """A random image and a mask with one rectangle of foreground."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    mask = np.zeros((height, width), np.uint8)
    mask[height // 4: 3 * height // 4, width // 5: 3 * width // 5] = 1
    return image, mask


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes, to prove that nothing was touched."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def matching_checkpoint(tiny_config: Config, tmp_path: Path, **options: Any) -> Path:
    """An untrained checkpoint of the demo's matching decoder on the tiny encoder, with model
    ``options`` over one round of self-support."""
    model_config = dataclasses.replace(
        tiny_config.model, decoder="matching", dilated=False, projection="identity",
        decoder_skips=False, prototype_features="deep+mid", initial_logvar=-6.0,
        latent_dim=40 * (2 + options.get("background_parts", 0)),  # 40 pooled channels each
        **{"self_support": 1, **options})
    config = dataclasses.replace(tiny_config, model=model_config)
    torch.manual_seed(0)
    return save_checkpoint(tmp_path / "match.pt", VPIModel(model_config).eval(), config, step=0)
