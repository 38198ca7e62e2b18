import math

import pytest
import torch

from vpi.model.gaussian import (
    aggregate_priors,
    kl_divergence,
    masked_average_pool,
    sample_prototypes,
)
from vpi.model.nets import LOGVAR_RANGE


def test_variance_weighted_aggregation_matches_eq6_by_hand():
    # Two shots, one latent dim: means 1 and 4, variances 1 and 3.
    mean = torch.tensor([[[1.0], [4.0]]])
    logvar = torch.tensor([[[1.0], [3.0]]]).log()
    agg_mean, agg_var = aggregate_priors(mean, logvar, "variance")
    # mu = (1/1 * 1 + 1/3 * 4) / (1/1 + 1/3) = (7/3) / (4/3) = 1.75; var = 2 / (4/3) = 1.5
    assert agg_mean.item() == pytest.approx(1.75)
    assert agg_var.item() == pytest.approx(1.5)


def test_plain_mean_aggregation_matches_eq10_by_hand():
    mean = torch.tensor([[[1.0, 0.0], [4.0, 2.0]]])
    logvar = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]]).log()
    agg_mean, agg_var = aggregate_priors(mean, logvar, "mean")
    torch.testing.assert_close(agg_mean, torch.tensor([[2.5, 1.0]]))
    torch.testing.assert_close(agg_var, torch.tensor([[2.0, 3.0]]))


def test_one_shot_aggregation_is_identity_for_both_rules():
    mean, logvar = torch.randn(3, 1, 5), torch.randn(3, 1, 5)
    for rule in ("variance", "mean"):
        m, v = aggregate_priors(mean, logvar, rule)
        torch.testing.assert_close(m, mean[:, 0])
        torch.testing.assert_close(v, logvar[:, 0].exp())


def _eq6_eq10_float64(mean: torch.Tensor, logvar: torch.Tensor) -> dict[str, tuple]:
    """The textbook formulas, 1 / var summed, in float64 where nothing overflows."""
    mean, var = mean.double(), logvar.double().exp()
    precision = 1.0 / var
    total = precision.sum(-2)
    return {"variance": ((precision * mean).sum(-2) / total, var.shape[-2] / total),
            "mean": (mean.mean(-2), var.mean(-2))}


LOW, HIGH = LOGVAR_RANGE


@pytest.mark.parametrize("case", ["all at -10", "all at +10", "both clamps", "uniform"])
@pytest.mark.parametrize("rule", ["variance", "mean"])
def test_ten_shots_at_the_logvar_clamps_stay_finite_and_exact_in_fp16(case, rule):
    # In fp16, ten precisions exp(10) sum to 2.2e5 > 65504 and ten variances exp(10) too.
    gen = torch.Generator().manual_seed(0)
    shape = (4, 10, 32)
    logvar = {
        "all at -10": torch.full(shape, LOW),
        "all at +10": torch.full(shape, HIGH),
        "both clamps": torch.where(torch.rand(shape, generator=gen) > 0.5, HIGH, LOW),
        "uniform": torch.empty(shape).uniform_(LOW, HIGH, generator=gen),
    }[case].half()
    mean = (3.0 * torch.randn(shape, generator=gen)).half()  # inputs exact in both dtypes
    ref_mean, ref_var = _eq6_eq10_float64(mean, logvar)[rule]
    scale = float(mean.abs().max())
    for dtype, rtol in ((torch.float32, 1e-6), (torch.float16, 2e-3)):
        got_mean, got_var = aggregate_priors(mean.to(dtype), logvar.to(dtype), rule)
        assert got_mean.dtype == got_var.dtype == dtype
        assert bool(torch.isfinite(got_mean).all() and torch.isfinite(got_var).all())
        # means at the scale of the inputs; variances, which span e^-10..e^10, relatively
        torch.testing.assert_close(got_mean.double(), ref_mean, rtol=0, atol=rtol * scale)
        torch.testing.assert_close(got_var.double(), ref_var, rtol=rtol, atol=0)
    if case == "all at -10":  # K / sum(1 / var) of equal variances is that variance
        assert float(ref_var.max()) == pytest.approx(math.exp(LOW), rel=1e-3)


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


def test_free_bits_floor_each_dimension_and_stop_its_gradient():
    mean_q = torch.tensor([0.1, 3.0], requires_grad=True)
    zeros = torch.zeros(2)
    per_dim = 0.5 * mean_q.detach() ** 2  # KL of N(m, 1) from N(0, 1), per dimension: 0.005, 4.5
    floored = kl_divergence(mean_q, zeros, zeros, zeros, free_bits=0.5)
    assert floored.item() == pytest.approx(0.5 + per_dim[1].item())
    floored.backward()
    assert mean_q.grad[0].item() == 0.0  # under the floor: the prior no longer pulls it
    assert mean_q.grad[1].item() == pytest.approx(3.0)
