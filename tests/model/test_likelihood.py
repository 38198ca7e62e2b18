"""The likelihood term's variants (model.likelihood_z, likelihood_samples, likelihood_rule)."""

from __future__ import annotations

import math

import pytest
import torch

from vpi.config import apply_overrides, get_preset
from vpi.data import build_episodes, collate_episodes
from vpi.errors import ConfigError
from vpi.model import VPIModel
from vpi.model.vpi import combine_sample_losses


def _model(**model: object) -> VPIModel:
    config = apply_overrides(get_preset("tiny"), {"model": model})
    torch.manual_seed(0)
    return VPIModel(config.model)


def _batch():
    data = get_preset("tiny").data
    return collate_episodes([build_episodes(data, "train", shots=1, episodes=2, seed=0)[i]
                             for i in range(2)])


def test_rules_combine_sample_losses_as_documented() -> None:
    losses = torch.tensor([[0.2, 0.4, 0.9]])
    pixels = torch.tensor([100.0])
    assert combine_sample_losses(losses, "mean", pixels).item() == pytest.approx(0.5)
    assert combine_sample_losses(losses, "best", pixels).item() == pytest.approx(0.2)
    mixture = combine_sample_losses(losses, "mixture", pixels).item()
    # Over many pixels the mixture's NLL is the best sample's, plus at most log S / N.
    assert 0.2 <= mixture <= 0.2 + math.log(3) / 100 + 1e-6
    few = combine_sample_losses(losses, "mixture", torch.tensor([1.0])).item()
    assert few == pytest.approx(-math.log((math.exp(-0.2) + math.exp(-0.4) + math.exp(-0.9)) / 3))


@pytest.mark.parametrize(("z", "samples", "rule"), [
    ("prior", 1, "mean"), ("posterior", 1, "mean"), ("both", 1, "mean"), ("prior", 4, "best"),
    ("prior", 4, "mixture"), ("both", 3, "mixture")])
def test_each_variant_trains_the_decoder_and_the_prior(z: str, samples: int, rule: str) -> None:
    model = _model(likelihood_z=z, likelihood_samples=samples, likelihood_rule=rule)
    noise = torch.randn(2, samples, model.config.latent_dim, generator=torch.Generator().manual_seed(0))
    losses = model(_batch(), noise)
    assert torch.isfinite(losses["loss"])
    losses["loss"].backward()
    for part in (model.decoder, model.prior_net):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in part.parameters())


def test_one_prior_sample_with_the_mean_rule_is_the_paper_objective() -> None:
    """S = 1 and "mean" is the objective before the variants existed: CE of one prior sample."""
    model = _model()
    noise = torch.randn(2, 1, model.config.latent_dim, generator=torch.Generator().manual_seed(0))
    batch = _batch()
    flat = model(batch, noise[:, 0])["loss"]
    torch.testing.assert_close(model(batch, noise)["loss"], flat)
    best_of_one = _model(likelihood_rule="best")
    torch.testing.assert_close(best_of_one(batch, noise)["loss"], flat)


def test_bad_likelihood_options_are_one_clear_error() -> None:
    with pytest.raises(ConfigError, match="model.likelihood_rule is 'max'"):
        _model(likelihood_rule="max")
    with pytest.raises(ConfigError, match="model.likelihood_samples"):
        _model(likelihood_samples=0)
