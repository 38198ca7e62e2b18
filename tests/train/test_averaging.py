"""train.average_decay: validation and best.pt take the weights' running average, and a resumed
run carries it on as the uninterrupted one would."""

import pytest
import torch
from torch import nn
from train.test_train import run_interrupted_and_resumed

from vpi.checkpoint import read_checkpoint
from vpi.config import apply_overrides
from vpi.errors import ConfigError
from vpi.train import train
from vpi.train.averaging import WeightAverage


def test_the_average_follows_the_weights_by_its_decay_and_is_applied_only_inside_its_block():
    layer = nn.Linear(1, 1, bias=False)
    frozen = nn.Linear(1, 1, bias=False).requires_grad_(False)
    model = nn.Sequential(layer, frozen)
    with torch.no_grad():
        layer.weight.fill_(0.0)
    average = WeightAverage(model, decay=0.75)
    for value in (4.0, 8.0):
        with torch.no_grad():
            layer.weight.fill_(value)
        average.update()
    expected = 0.75 * (0.75 * 0.0 + 0.25 * 4.0) + 0.25 * 8.0
    assert set(average.state_dict()) == {"0.weight"}  # only what trains is averaged
    with average.applied():
        assert layer.weight.item() == pytest.approx(expected)
    assert layer.weight.item() == 8.0


def _config(tiny_config, tmp_path, **train_fields):
    return apply_overrides(tiny_config, {"train": {"out_dir": str(tmp_path), **train_fields}})


def test_best_checkpoint_holds_the_average_and_last_the_trained_weights(tiny_config, tmp_path):
    result = train(_config(tiny_config, tmp_path, steps=4, checkpoint_every=4,
                           average_decay=0.5))
    best, last = read_checkpoint(result.best_checkpoint), read_checkpoint(result.last_checkpoint)
    average = last["average"]
    assert average
    for name, value in average.items():
        torch.testing.assert_close(best["model"][name], value, rtol=0, atol=0)
    assert any(not torch.equal(last["model"][n], v) for n, v in average.items())


def test_resume_carries_the_average_on(tiny_config, tmp_path, monkeypatch):
    config = _config(tiny_config, tmp_path, steps=6, checkpoint_every=3, average_decay=0.5)
    full, resumed = run_interrupted_and_resumed(config, tmp_path, monkeypatch, at_step=3)
    a, b = (read_checkpoint(r.best_checkpoint)["model"] for r in (full, resumed))
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)


@pytest.mark.parametrize("decay", [1.0, -0.1])
def test_a_decay_outside_zero_to_one_is_one_clear_error(tiny_config, decay):
    with pytest.raises(ConfigError, match="train.average_decay must lie in"):
        apply_overrides(tiny_config, {"train": {"average_decay": decay}})
