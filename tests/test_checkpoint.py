import shutil
from pathlib import Path

import pytest
import torch

from vpi.checkpoint import FORMAT_VERSION, load_model, read_checkpoint, save_checkpoint
from vpi.errors import CheckpointError


def _copy(checkpoint: Path, folder: Path) -> Path:
    """A copy of the session's checkpoint that a test may change."""
    return Path(shutil.copy(checkpoint, folder / checkpoint.name))


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


def test_checkpoint_from_an_incompatible_version_is_refused(tiny_checkpoint, tmp_path):
    checkpoint = _copy(tiny_checkpoint, tmp_path)
    state = torch.load(checkpoint, weights_only=False)
    state["format_version"] = FORMAT_VERSION + 1
    state["vpi_version"] = "9.0.0"
    torch.save(state, checkpoint)
    with pytest.raises(CheckpointError, match="written by vpi 9.0.0"):
        read_checkpoint(checkpoint)


def test_interrupted_save_keeps_the_previous_file(tiny_checkpoint, tiny_model, tiny_config,
                                                  monkeypatch, tmp_path):
    checkpoint = _copy(tiny_checkpoint, tmp_path)
    before = checkpoint.read_bytes()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(checkpoint, tiny_model, tiny_config, step=5)
    assert checkpoint.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [checkpoint.name]


def test_checkpoint_missing_weights_names_them(tiny_checkpoint, tmp_path):
    checkpoint = _copy(tiny_checkpoint, tmp_path)
    state = torch.load(checkpoint, weights_only=False)
    del state["model"]["decoder.head.weight"]
    torch.save(state, checkpoint)
    with pytest.raises(CheckpointError, match="lacks weights for its model: decoder.head.weight"):
        load_model(checkpoint)
