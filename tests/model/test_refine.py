"""Edge-aware refinement: a coarse map snaps to the query's own colour edges, linearly, and the
model applies it once per query to the mean probability only where configured."""

from __future__ import annotations

import pytest
import torch

from vpi.config import ModelConfig, apply_overrides, check_test_time_model, get_preset
from vpi.errors import ConfigError
from vpi.graphs import binary_entropy
from vpi.model import VPIModel
from vpi.model.refine import edge_aware_refinement


def _two_colour_image(edge: int, side: int = 64) -> torch.Tensor:
    """(1, 3, side, side): red left of column ``edge``, blue from it on."""
    image = torch.zeros(1, 3, side, side)
    image[0, 0, :, :edge] = 0.8
    image[0, 2, :, edge:] = 0.8
    return image


def _ramp(centre: float, width: float, side: int = 64) -> torch.Tensor:
    """(1, side, side): 1 left of ``centre``, 0 right of it, a linear ramp ``width`` wide."""
    columns = torch.arange(side, dtype=torch.float32) + 0.5
    row = ((centre + width / 2 - columns) / width).clamp(0, 1)
    return row.expand(1, side, side).clone()


def test_a_coarse_mask_snaps_to_the_colour_edge() -> None:
    """The object is red and ends at column 26; the decoder's blurred map crosses 0.5 at 32.
    Refined, the map follows the image: the misplaced columns go."""
    image, coarse = _two_colour_image(edge=26), _ramp(centre=32, width=16)
    truth = torch.zeros(1, 64, 64, dtype=torch.bool)
    truth[..., :26] = True
    refined = edge_aware_refinement(coarse, image, passes=2)
    wrong_before = ((coarse > 0.5) != truth).sum()
    wrong_after = ((refined > 0.5) != truth).sum()
    assert wrong_before == 6 * 64
    assert wrong_after == 0


def test_without_an_edge_nothing_sharpens() -> None:
    """On a plain image the filter only smooths: the ramp stays centred where it was."""
    image = torch.full((1, 3, 64, 64), 0.5)
    coarse = _ramp(centre=32, width=16)
    refined = edge_aware_refinement(coarse, image, passes=2)
    assert ((refined > 0.5) == (coarse > 0.5)).all()
    assert refined[0, 0, 28] > refined[0, 0, 36]


def test_it_is_linear_and_keeps_constants() -> None:
    """Refining the mean of L maps equals the mean of the refined maps (short of the final clamp
    into [0, 1]), so the decoder graph refines once per query; a constant map stays itself; 0
    passes is the identity."""
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, 48, 48, generator=generator)
    maps = torch.rand(2, 3, 48, 48, generator=generator)
    maps = 0.3 + 0.4 * maps  # away from 0 and 1, where the final clamp would bind
    refined_each = torch.stack([edge_aware_refinement(maps[:, i], image, 1) for i in range(3)], 1)
    torch.testing.assert_close(edge_aware_refinement(maps.mean(1), image, 1),
                               refined_each.mean(1), atol=1e-4, rtol=0)
    constant = torch.full((2, 48, 48), 0.3)
    torch.testing.assert_close(edge_aware_refinement(constant, image, 2), constant, atol=1e-4,
                               rtol=0)
    first = maps[:, 0]
    assert edge_aware_refinement(first, image, 0) is first


def test_the_model_refines_its_mean_and_the_entropy_of_it() -> None:
    config = apply_overrides(get_preset("tiny"), {"model": {"refine_passes": 3}}).model
    torch.manual_seed(0)
    refining = VPIModel(config).eval()
    plain = VPIModel(ModelConfig(**{**config.__dict__, "refine_passes": 0})).eval()
    plain.load_state_dict(refining.state_dict())
    query = torch.rand(2, 3, 64, 64)
    features, z = refining.encoder(query), torch.randn(2, 4, config.latent_dim)
    got, base = refining.sample_maps(features, z, query), plain.sample_maps(features, z, query)
    torch.testing.assert_close(got.probability, edge_aware_refinement(base.probability, query, 3))
    torch.testing.assert_close(got.entropy, binary_entropy(got.probability))
    torch.testing.assert_close(got.variance, base.variance)
    torch.testing.assert_close(got.mutual_information, base.mutual_information)


def test_refinement_and_rounds_are_the_model_fields_scoring_may_change() -> None:
    trained = get_preset("demo").model
    refined = ModelConfig(**{**trained.__dict__, "refine_passes": trained.refine_passes + 1})
    check_test_time_model(trained, refined, export=False)
    check_test_time_model(trained, ModelConfig(**{**trained.__dict__, "self_support": 3}),
                          export=False)
    with pytest.raises(ConfigError, match="an export's graph fixes the model"):
        check_test_time_model(trained, refined, export=True)
    wider = ModelConfig(**{**trained.__dict__, "latent_dim": 64})
    with pytest.raises(ConfigError, match="model.latent_dim: the checkpoint's weights fix"):
        check_test_time_model(trained, wider, export=False)
    with pytest.raises(ConfigError, match="model.refine_passes is 11"):
        apply_overrides(get_preset("tiny"), {"model": {"refine_passes": 11}})


def test_a_shift_of_every_colour_changes_nothing() -> None:
    """The fit absorbs a constant shift of the guide, and the guide is centred before the windows'
    covariances are taken: far from 0 the fp32 sums would otherwise cancel (backends then
    disagree), and here the map would be noise."""
    image, coarse = _two_colour_image(edge=26), _ramp(centre=32, width=16)
    torch.testing.assert_close(edge_aware_refinement(coarse, image + 100.0, 2),
                               edge_aware_refinement(coarse, image, 2), atol=1e-5, rtol=0)
