import dataclasses

import pytest
import torch

from vpi.checkpoint import load_model, read_checkpoint
from vpi.config import apply_overrides
from vpi.data import build_episodes, collate_episodes
from vpi.model import VPIModel
from vpi.train import train


def _config(tiny_config, tmp_path, **train_fields):
    return apply_overrides(tiny_config, {"train": {"out_dir": str(tmp_path), **train_fields}})


def _weights(path):
    return read_checkpoint(path)["model"]


def _held_out_ce(model, config):
    """Cross-entropy on fixed training-split episodes with fixed noise: comparable across models."""
    episodes = build_episodes(config.data, "train", shots=1, episodes=16, seed=123)
    batch = collate_episodes([episodes[i] for i in range(16)])
    noise = torch.zeros(16, config.model.latent_dim)
    with torch.no_grad():
        return model.train()(batch, noise)["ce"].item()


@pytest.mark.slow
def test_a_few_hundred_steps_lower_the_loss(tiny_config, tmp_path):
    config = _config(tiny_config, tmp_path, steps=200, log_every=50, checkpoint_every=1000)
    torch.manual_seed(config.train.seed)  # train() builds its initial model from this seed too
    before = _held_out_ce(VPIModel(config.model), config)
    result = train(config)
    after = _held_out_ce(load_model(result.last_checkpoint)[0], config)
    assert after < 0.6 * before, (before, after)


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tiny_config, tmp_path):
    full = train(_config(tiny_config, tmp_path / "full", steps=12, checkpoint_every=6),
                 run_dir=tmp_path / "full" / "run")
    # The same run killed after its step-6 checkpoint: train 6 steps, then resume to 12.
    half_config = _config(tiny_config, tmp_path / "half", steps=12, checkpoint_every=6)
    short = dataclasses.replace(half_config, train=dataclasses.replace(half_config.train, steps=6))
    first = train(short, run_dir=tmp_path / "half" / "run")
    state = torch.load(first.last_checkpoint, weights_only=False)
    state["config"]["train"]["steps"] = 12  # as if the run had been stopped at step 6 of 12
    torch.save(state, first.last_checkpoint)
    resumed = train(half_config, resume=first.run_dir)
    assert resumed.step == 12
    a, b = _weights(full.last_checkpoint), _weights(resumed.last_checkpoint)
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)


def test_run_writes_config_metrics_and_both_checkpoints(tiny_config, tmp_path):
    result = train(_config(tiny_config, tmp_path, steps=4, log_every=2, checkpoint_every=2))
    names = {p.name for p in result.run_dir.iterdir()}
    assert {"config.json", "metrics.jsonl", "last.pt", "best.pt"} <= names
    assert read_checkpoint(result.last_checkpoint)["step"] == 4
    assert not [n for n in names if n.endswith(".tmp")]
