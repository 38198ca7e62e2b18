"""Shared CNN encoders at output stride 8, BatchNorm frozen, with skip features for the decoder.

Each backbone returns ``Features``: the deep map (stride 8, dilated deep stages; or ImageNet's own
strides, undilated) that the prior, posterior and segmentation nets read, and three shallower maps
at strides 8, 4 and 2 for the decoder's skip connections. torchvision builds the networks; nothing
is downloaded here.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torchvision
from torch import nn
from torchvision.ops import misc

from vpi.config import ENCODER_DEPTHS
from vpi.errors import ConfigError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class FrozenBatchNorm2d(misc.FrozenBatchNorm2d):
    """torchvision's frozen BatchNorm (same buffers, so the same checkpoints) in one fused
    multiply-add instead of ``x * scale + bias``, two passes over every activation: in a profile of
    one demo training step on a CPU those two passes took about a fifth of the time."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        bias = self.bias - self.running_mean * scale
        return torch.addcmul(bias[:, None, None], x, scale[:, None, None])


class Features(NamedTuple):
    deep: torch.Tensor  # (N, C, H/8, W/8); coarser where the encoder is not dilated
    skip8: torch.Tensor  # (N, C8, H/8, W/8)
    skip4: torch.Tensor  # (N, C4, H/4, W/4)
    skip2: torch.Tensor  # (N, C2, H/2, W/2)


class Backbone(nn.Module):
    """Normalises [0, 1] RGB with ImageNet statistics, then runs the stages.

    ``stem``, ``stage2``, ``stage4``, ``stage8`` and ``deep_stage`` end at strides 2, 2, 4, 8, 8;
    ``channels`` gives the widths of (deep, skip8, skip4, skip2).
    """

    def __init__(
        self,
        stages: list[nn.Module],
        channels: tuple[int, int, int, int],
    ) -> None:
        super().__init__()
        self.stem, self.stage2, self.stage4, self.stage8, self.deep_stage = stages
        self.channels = channels
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> Features:
        x = (images - self.mean) / self.std
        x = self.stem(x)
        s2 = self.stage2(x)
        s4 = self.stage4(s2)
        s8 = self.stage8(s4)
        deep = self.deep_stage(s8)
        return Features(deep=deep, skip8=s8, skip4=s4, skip2=s2)


def build_backbone(
    name: str,
    state_dict: dict[str, torch.Tensor] | None = None,
    depth: str = "full",
    dilated: bool = True,
) -> Backbone:
    """The named encoder; ``state_dict`` (torchvision's keys) is loaded strictly when given.

    ``depth="mid"`` ends the encoder before its last stage (the one that runs at stride 32 in the
    undilated network): ResNet stops after layer3, MobileNetV2 after block 13, VGG16 after conv4_3.
    Those mid-level features carry over to unseen classes better than the last, most
    ImageNet-specific stage (PFENet builds its features from them too), and at stride 8 they cost
    about half as much (MobileNetV2 at 128x128).

    ``dilated=False`` keeps ImageNet's strides (the deep map at stride 16 for "mid", 32 for
    "full"): the pretrained filters then see what they were trained on. Matched as they are, with
    no training (``vpi.eval.matcher``), MobileNetV2's block-13 features segment real photographs
    about 6 class-IoU points better undilated than dilated (docs/reproduce.md).
    """
    builders = {
        "tiny": _tiny,
        "mobilenet_v2": _mobilenet_v2,
        "resnet18": _resnet,
        "resnet50": _resnet,
        "resnet101": _resnet,
        "vgg16": _vgg16,
    }
    if name not in builders:
        raise ConfigError(f"unknown backbone {name!r}; choose one of: {', '.join(builders)}")
    if depth not in ENCODER_DEPTHS:
        raise ConfigError(
            f"unknown encoder depth {depth!r}; choose one of: {', '.join(ENCODER_DEPTHS)}"
        )
    return builders[name](name, state_dict, depth == "mid", dilated)


def _load(model: nn.Module, name: str, state_dict: dict[str, torch.Tensor] | None) -> None:
    if state_dict is None:
        return
    missing, unexpected = model.load_state_dict(state_dict, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        detail = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise ConfigError(f"the weights do not fit backbone {name!r}: {detail}")


def _dilate(stage: nn.Module, dilation: int) -> None:
    """Keep a stage at its input stride: strides become 1, 3x3 kernels dilate (DeepLab style)."""
    for module in stage.modules():
        if isinstance(module, nn.Conv2d):
            module.stride = (1, 1)
            if module.kernel_size == (3, 3):
                module.dilation, module.padding = (dilation, dilation), (dilation, dilation)


def _resnet(
    name: str, state_dict: dict[str, torch.Tensor] | None, mid: bool, dilated: bool
) -> Backbone:
    model = getattr(torchvision.models, name)(weights=None, norm_layer=FrozenBatchNorm2d)
    _load(model, name, state_dict)
    if dilated:
        _dilate(model.layer3, 2)
        _dilate(model.layer4, 4)
    expansion = 4 if name != "resnet18" else 1
    stem = nn.Sequential(model.conv1, model.bn1, model.relu)
    deep = model.layer3 if mid else nn.Sequential(model.layer3, model.layer4)
    stages = [stem, nn.Identity(), nn.Sequential(model.maxpool, model.layer1), model.layer2, deep]
    deep_channels = (256 if mid else 512) * expansion
    return Backbone(stages, (deep_channels, 128 * expansion, 64 * expansion, 64))


def _mobilenet_v2(
    name: str, state_dict: dict[str, torch.Tensor] | None, mid: bool, dilated: bool
) -> Backbone:
    model = torchvision.models.mobilenet_v2(weights=None, norm_layer=FrozenBatchNorm2d)
    _load(model, name, state_dict)
    f = model.features
    if dilated:
        _dilate(f[7:14], 2)
        _dilate(f[14:18], 4)
    stages = [f[0], f[1], f[2:4], f[4:7], f[7:14] if mid else f[7:18]]
    return Backbone(stages, (96 if mid else 320, 32, 24, 16))


def _vgg16(
    name: str, state_dict: dict[str, torch.Tensor] | None, mid: bool, dilated: bool
) -> Backbone:
    model = torchvision.models.vgg16(weights=None)
    _load(model, name, state_dict)
    f = model.features
    # Indices of torchvision's vgg16.features: pools at 4, 9, 16, 23, 30.
    block5 = f[24:30] if dilated else f[23:30]  # undilated: pool4, then block 5 at stride 16
    if dilated:
        _dilate(block5, 2)
    stages = [f[0:5], f[5:9], f[9:16], nn.Sequential(f[16], f[17:23]),
              nn.Identity() if mid else block5]
    return Backbone(stages, (512, 512, 256, 128))


def _tiny(
    name: str, state_dict: dict[str, torch.Tensor] | None, mid: bool, dilated: bool
) -> Backbone:
    """A few-channel encoder for tests: same interface and strides as the real ones (undilated,
    its deep block runs at stride 16)."""

    def block(cin: int, cout: int, stride: int, dilation: int = 1) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False),
            FrozenBatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )

    deep = block(16, 24, 1, 2) if dilated else block(16, 24, 2)
    model = nn.Sequential(block(3, 8, 2), block(8, 12, 2), block(12, 16, 2), deep)
    _load(model, name, state_dict)
    deep = nn.Identity() if mid else model[3]
    return Backbone([model[0], nn.Identity(), model[1], model[2], deep], (16 if mid else 24, 16, 12, 8))
