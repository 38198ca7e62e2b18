import dataclasses
import math

import pytest
import torch

from vpi.data.episode import IGNORE_INDEX, EpisodeBatch
from vpi.errors import ConfigError, DataError
from vpi.model import VPIModel


def _batch(batch=2, shots=3, size=64):
    g = torch.Generator().manual_seed(0)
    masks = (torch.rand(batch, shots, 1, size, size, generator=g) > 0.5).float()
    query_mask = (torch.rand(batch, size, size, generator=g) > 0.5).long()
    query_mask[:, :4] = IGNORE_INDEX
    return EpisodeBatch(
        torch.rand(batch, shots, 3, size, size, generator=g), masks,
        torch.rand(batch, 3, size, size, generator=g), query_mask, torch.arange(batch),
    )


def test_predict_shapes_and_ranges(tiny_model):
    b = _batch()
    prob, var, entropy, information = tiny_model.predict(b.support_images, b.support_masks,
                                                         b.query_image, samples=5)
    assert prob.shape == var.shape == entropy.shape == information.shape == (2, 64, 64)
    assert 0 <= prob.min() and prob.max() <= 1
    assert var.min() >= 0 and var.max() > 0  # distinct samples disagree somewhere
    assert information.min() >= 0 and information.max() > 0
    # The mean's entropy bounds the samples' disagreement: I = H(mean) - mean H(sample) <= H(mean)
    assert (information <= entropy + 1e-6).all() and entropy.max() <= math.log(2) + 1e-6


def test_batched_decoding_equals_one_sample_at_a_time(tiny_model):
    b = _batch(batch=1)
    features = tiny_model.encoder(b.query_image)
    z = torch.randn(1, 6, tiny_model.config.latent_dim)
    batched = tiny_model.decode(features, z, (64, 64))
    looped = torch.cat([tiny_model.decode(features, z[:, i : i + 1], (64, 64)) for i in range(6)], 1)
    torch.testing.assert_close(batched, looped, atol=1e-5, rtol=1e-5)


def test_no_shots_or_no_samples_are_refused_rather_than_averaged_to_nan(tiny_model):
    b = _batch(batch=1)
    with pytest.raises(DataError, match="the support set has 0 image/mask pairs"):
        tiny_model.prior(b.support_images[:, :0], b.support_masks[:, :0])
    with pytest.raises(ConfigError, match="samples \\(L\\) is 0; this decoder takes 1 to 16"):
        tiny_model.predict(b.support_images, b.support_masks, b.query_image, samples=0)


def test_same_generator_seed_gives_same_prediction(tiny_model):
    b = _batch()
    args = (b.support_images, b.support_masks, b.query_image)
    a = tiny_model.predict(*args, samples=4, generator=torch.Generator().manual_seed(3))[0]
    c = tiny_model.predict(*args, samples=4, generator=torch.Generator().manual_seed(3))[0]
    assert torch.equal(a, c)


def test_training_loss_has_all_terms_and_backpropagates(tiny_model):
    tiny_model.train()
    losses = tiny_model(_batch())
    assert set(losses) == {"loss", "ce", "kl"}
    assert losses["kl"] >= 0
    losses["loss"].backward()
    assert tiny_model.posterior_net.mean.weight.grad is not None
    assert tiny_model.encoder.stem[0].weight.grad is not None


def test_cross_entropy_counts_only_valid_pixels(tiny_config):
    model = VPIModel(dataclasses.replace(tiny_config.model, probabilistic=False)).train()
    b = _batch()
    ce = model(b)["ce"]
    mean, _ = model.prior(b.support_images, b.support_masks)
    logits = model.decode(model.encoder(b.query_image), mean[:, None], (64, 64))[:, 0]
    valid = b.query_mask != IGNORE_INDEX
    per_episode = [
        torch.nn.functional.binary_cross_entropy_with_logits(
            logits[i][valid[i]], b.query_mask[i][valid[i]].float()
        )
        for i in range(2)
    ]
    torch.testing.assert_close(ce, torch.stack(per_episode).mean())


def test_deterministic_twin_has_no_kl_and_no_sampling(tiny_config):
    config = dataclasses.replace(tiny_config.model, probabilistic=False)
    model = VPIModel(config).eval()
    b = _batch()
    maps = model.predict(b.support_images, b.support_masks, b.query_image, samples=6)
    assert torch.count_nonzero(maps.variance) == 0 and maps.mutual_information.max() <= 1e-6
    assert maps.entropy.max() > 0  # a single pass still says where it is unsure
    model.train()
    assert model(b)["kl"].item() == 0.0


@pytest.mark.parametrize("rule", ["variance", "mean"])
def test_prior_aggregates_k_shots(tiny_config, rule):
    model = VPIModel(dataclasses.replace(tiny_config.model, aggregation=rule)).eval()
    b = _batch(shots=3)
    mean, var = model.prior(b.support_images, b.support_masks)
    assert mean.shape == var.shape == (2, tiny_config.model.latent_dim)
    assert (var > 0).all()


@pytest.mark.parametrize("rule", ["variance", "mean"])
def test_deterministic_twin_fuses_shots_by_the_plain_mean_of_their_means(tiny_config, rule):
    # Its log-variance head never trains, so precision weights would be random: Eq. 10 always.
    config = dataclasses.replace(tiny_config.model, probabilistic=False, aggregation=rule)
    model = VPIModel(config).eval()
    b = _batch(shots=3)
    with torch.no_grad():
        model.prior_net.logvar.weight.normal_(0.0, 5.0)  # very unequal per-shot variances
        shot_means, _ = model.shot_priors(b.support_images, b.support_masks)
        mean, _ = model.prior(b.support_images, b.support_masks)
    assert model.shot_rule == "mean"
    torch.testing.assert_close(mean, shot_means.mean(1))
