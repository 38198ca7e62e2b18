import dataclasses
from pathlib import Path

import torch

from vpi.checkpoint import save_checkpoint
from vpi.config import Config
from vpi.eval.spread import sample_spread
from vpi.model import VPIModel


def test_spread_of_a_probabilistic_model_is_measured_and_reproducible(tiny_checkpoint: Path) -> None:
    spread = sample_spread(tiny_checkpoint, episodes=6, samples=4, batch_size=4)
    assert (spread.episodes, spread.samples) == (6, 4)
    assert spread.prior_std > 0 and spread.prior_mean_spread > 0
    assert 0 < spread.pixel_std <= spread.pixel_std_max <= 0.5  # std of values in [0, 1]
    assert 0 <= spread.label_flips <= 1
    assert sample_spread(tiny_checkpoint, episodes=6, samples=4, batch_size=4) == spread


def test_one_sample_or_the_deterministic_twin_has_no_spread(
    tmp_path: Path, tiny_checkpoint: Path, tiny_config: Config
) -> None:
    single = sample_spread(tiny_checkpoint, episodes=3, samples=1)
    assert single.pixel_std == 0 and single.label_flips == 0

    model_config = dataclasses.replace(tiny_config.model, probabilistic=False)
    config = dataclasses.replace(tiny_config, model=model_config)
    torch.manual_seed(0)
    twin = save_checkpoint(tmp_path / "twin.pt", VPIModel(model_config), config, step=0)
    deterministic = sample_spread(twin, episodes=3, samples=5)
    assert deterministic.pixel_std == 0 and deterministic.label_flips == 0
