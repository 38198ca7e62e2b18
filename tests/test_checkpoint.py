import pytest
import torch

from vpi.checkpoint import FORMAT_VERSION, load_model, read_checkpoint, save_checkpoint
from vpi.errors import CheckpointError


def test_checkpoint_rebuilds_the_same_model(tiny_checkpoint, tiny_model, tiny_config):
    model, config, state = load_model(tiny_checkpoint)
    assert config == tiny_config and state["step"] == 0
    for (name, a), b in zip(tiny_model.state_dict().items(), model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_not_a_checkpoint(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="is not a vpi checkpoint"):
        read_checkpoint(junk)
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(1)}, plain)
    with pytest.raises(CheckpointError, match="is not a vpi checkpoint"):
        read_checkpoint(plain)
    with pytest.raises(CheckpointError, match="does not exist"):
        read_checkpoint(tmp_path / "missing.pt")


def test_checkpoint_from_an_incompatible_version_is_refused(tiny_checkpoint):
    state = torch.load(tiny_checkpoint, weights_only=False)
    state["format_version"] = FORMAT_VERSION + 1
    state["vpi_version"] = "9.0.0"
    torch.save(state, tiny_checkpoint)
    with pytest.raises(CheckpointError, match="written by vpi 9.0.0"):
        read_checkpoint(tiny_checkpoint)


def test_interrupted_save_keeps_the_previous_file(tiny_checkpoint, tiny_model, tiny_config,
                                                  monkeypatch):
    before = tiny_checkpoint.read_bytes()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tiny_checkpoint, tiny_model, tiny_config, step=5)
    assert tiny_checkpoint.read_bytes() == before
    assert [p.name for p in tiny_checkpoint.parent.iterdir()] == [tiny_checkpoint.name]


def test_checkpoint_missing_weights_names_them(tiny_checkpoint):
    state = torch.load(tiny_checkpoint, weights_only=False)
    del state["model"]["decoder.head.weight"]
    torch.save(state, tiny_checkpoint)
    with pytest.raises(CheckpointError, match="lacks weights for its model: decoder.head.weight"):
        load_model(tiny_checkpoint)
