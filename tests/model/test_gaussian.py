
import pytest
import torch

from vpi.model.gaussian import (
    aggregate_priors,
    kl_divergence,
    masked_average_pool,
    sample_prototypes,
)


def test_variance_weighted_aggregation_matches_eq6_by_hand():
    # Two shots, one latent dim: means 1 and 4, variances 1 and 3.
    mean = torch.tensor([[[1.0], [4.0]]])
    var = torch.tensor([[[1.0], [3.0]]])
    agg_mean, agg_var = aggregate_priors(mean, var, "variance")
    # mu = (1/1 * 1 + 1/3 * 4) / (1/1 + 1/3) = (7/3) / (4/3) = 1.75; var = 2 / (4/3) = 1.5
    assert agg_mean.item() == pytest.approx(1.75)
    assert agg_var.item() == pytest.approx(1.5)


def test_plain_mean_aggregation_matches_eq10_by_hand():
    mean = torch.tensor([[[1.0, 0.0], [4.0, 2.0]]])
    var = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    agg_mean, agg_var = aggregate_priors(mean, var, "mean")
    assert agg_mean.tolist() == [[2.5, 1.0]]
    assert agg_var.tolist() == [[2.0, 3.0]]


def test_one_shot_aggregation_is_identity_for_both_rules():
    mean, var = torch.randn(3, 1, 5), torch.rand(3, 1, 5) + 0.1
    for rule in ("variance", "mean"):
        m, v = aggregate_priors(mean, var, rule)
        torch.testing.assert_close(m, mean[:, 0])
        torch.testing.assert_close(v, var[:, 0])


def test_unknown_aggregation_is_rejected():
    with pytest.raises(ValueError, match="aggregation"):
        aggregate_priors(torch.zeros(1, 2, 3), torch.ones(1, 2, 3), "median")


def test_closed_form_kl_matches_monte_carlo_estimate():
    torch.manual_seed(0)
    mean_q, logvar_q = torch.tensor([0.3, -1.0]), torch.tensor([-0.5, 0.4])
    mean_p, logvar_p = torch.tensor([0.0, 0.5]), torch.tensor([0.2, -0.3])
    q = torch.distributions.Normal(mean_q, (0.5 * logvar_q).exp())
    p = torch.distributions.Normal(mean_p, (0.5 * logvar_p).exp())
    z = q.sample((400_000,))
    monte_carlo = (q.log_prob(z) - p.log_prob(z)).sum(-1).mean()
    closed = kl_divergence(mean_q, logvar_q, mean_p, logvar_p)
    assert closed.item() == pytest.approx(monte_carlo.item(), abs=0.01)
    assert kl_divergence(mean_p, logvar_p, mean_p, logvar_p).item() == pytest.approx(0.0, abs=1e-6)


def test_masked_average_pool_empty_and_full_masks():
    features = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).view(2, 3, 4, 4)
    full = masked_average_pool(features, torch.ones(2, 1, 16, 16))
    torch.testing.assert_close(full, features.mean((2, 3)), rtol=1e-5, atol=1e-4)
    empty = masked_average_pool(features, torch.zeros(2, 1, 16, 16))
    assert torch.equal(empty, torch.zeros(2, 3))


def test_masked_average_pool_averages_only_the_foreground():
    features = torch.zeros(1, 1, 4, 4)
    features[..., :2, :] = 2.0  # top half is 2, bottom half 0
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :2, :] = 1.0
    assert masked_average_pool(features, mask).item() == pytest.approx(2.0, rel=1e-5)


def test_sample_prototypes_reparameterises():
    mean, var = torch.tensor([[1.0, -2.0]]), torch.tensor([[4.0, 0.25]])
    noise = torch.tensor([[[1.0, 1.0], [-1.0, 2.0]]])
    z = sample_prototypes(mean, var, noise)
    assert z.tolist() == [[[3.0, -1.5], [-1.0, -1.0]]]
