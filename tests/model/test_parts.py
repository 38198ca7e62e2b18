"""The background's parts: cluster centres of the support's background that keep its other
objects apart, a rule that a pixel nearer any of them is background, and a KL that leaves them
out."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from model.test_matching import _batch

from vpi.config import apply_overrides, get_preset
from vpi.errors import ConfigError
from vpi.model import VPIModel
from vpi.model.gaussian import masked_average_pool
from vpi.model.nets import MatchingDecoder, _self_supported
from vpi.model.parts import background_parts

MATCHING = {"decoder": "matching", "dilated": False, "projection": "identity",
            "decoder_skips": False, "initial_logvar": -6.0}


def _scene() -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """An 8 x 8 feature map: the object on rows 0-1; rows 3-7 (away from it) hold three other
    things side by side, the one on the right somewhat like the object, the middle one somewhat
    like the right one."""
    axes = torch.eye(4)
    looks = {"object": axes[0], "left": axes[1], "middle": F.normalize(axes[2] + 0.4 * axes[3], dim=0),
             "right": F.normalize(axes[3] + 0.5 * axes[0], dim=0)}
    features = torch.zeros(1, 4, 8, 8)
    features[0, :, :3] = looks["object"][:, None, None]  # row 2 touches the object: left out
    features[0, :, 3:, :3] = looks["left"][:, None, None]
    features[0, :, 3:, 3:6] = looks["middle"][:, None, None]
    features[0, :, 3:, 6:] = looks["right"][:, None, None]
    masks = torch.zeros(1, 1, 8, 8)
    masks[..., :2, :] = 1.0
    return features, masks, looks


def test_parts_find_the_other_things_in_the_background_hardest_first() -> None:
    features, masks, looks = _scene()
    parts = background_parts(features, masks, masked_average_pool(features, masks), 3)
    assert parts.shape == (1, 3, 4)
    found = F.normalize(parts[0], dim=-1)
    # The first part is the background most like the object; the others, the rest in turn.
    assert F.cosine_similarity(found[0], looks["right"], dim=0) > 0.99
    others = {name: max(F.cosine_similarity(f, looks[name], dim=0) for f in found[1:])
              for name in ("left", "middle")}
    assert min(others.values()) > 0.99, others
    # One background average mixes all three and resembles none of them.
    average = masked_average_pool(features, 1 - masks)[0]
    assert max(F.cosine_similarity(average, looks[n], dim=0) for n in ("left", "middle")) < 0.8


def test_a_support_with_no_background_away_from_its_object_gets_its_background_average() -> None:
    features, _, _ = _scene()
    masks = torch.ones(1, 1, 8, 8)
    masks[..., 0, 0] = 0.0  # one background pixel, beside the object
    parts = background_parts(features, masks, masked_average_pool(features, masks), 2)
    background = masked_average_pool(features, 1 - masks)
    torch.testing.assert_close(parts, background[:, None].expand(-1, 2, -1))


def test_parts_move_little_when_the_features_move_little() -> None:
    """Soft assignments: the rounding differences of another runtime cannot switch a pixel
    between parts, which would move a part by a whole pixel's share."""
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(2, 16, 12, 12, generator=generator)
    masks = (torch.rand(2, 1, 48, 48, generator=generator) > 0.7).float()
    nudged = features * (1 + 1e-6 * torch.randn(features.shape, generator=generator))
    parts = [background_parts(f, masks, masked_average_pool(f, masks), 3) for f in (features, nudged)]
    assert (parts[0] - parts[1]).abs().max() < 1e-4 * parts[0].abs().max()


def test_a_pixel_nearer_a_background_part_than_the_foreground_is_background() -> None:
    keys = torch.tensor([1.0, 0.3]).view(1, 2, 1, 1)  # near the foreground, nearer the part
    foreground, background, part = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), keys.flatten()
    without = MatchingDecoder((2, 2, 2, 2), (4, 4, 4), skips=False)
    with_part = MatchingDecoder((2, 2, 2, 2), (4, 4, 4), skips=False, parts=1)
    z = torch.cat([foreground, background])[None, None]
    assert without.match_logits(keys, z).item() > 0
    assert with_part.match_logits(keys, torch.cat([z, part[None, None]], -1)).item() < 0


def test_self_support_moves_the_prototypes_and_keeps_the_parts() -> None:
    keys = torch.zeros(1, 2, 4, 4)
    keys[:, 0, :, :2] = 1.0
    keys[:, 1, :, 2:] = 1.0
    z = torch.tensor([[[1.0, 1.0, -0.2, 1.0, 3.0, 4.0]]])
    logits = torch.full((1, 1, 4, 4), -10.0)
    logits[..., :2] = 10.0
    moved = _self_supported(z, keys, logits, prototypes=3)
    assert not torch.allclose(moved[..., :4], F.normalize(z[..., :4].view(2, 2), dim=-1).view(1, 1, 4))
    torch.testing.assert_close(moved[0, 0, 4:], torch.tensor([0.6, 0.8]))


def _model(parts: int) -> VPIModel:
    config = apply_overrides(get_preset("tiny"),
                             {"model": {**MATCHING, "latent_dim": 24 * (2 + parts),
                                        "background_parts": parts}})
    torch.manual_seed(0)
    return VPIModel(config.model)


def test_parts_are_prototypes_of_the_prior_with_no_variance_and_no_kl() -> None:
    plain, parted = _model(0), _model(2)
    parted.load_state_dict(plain.state_dict())  # the parts add no weights
    batch = _batch()
    mean, var = parted.prior(batch.support_images, batch.support_masks)
    assert mean.shape == (4, 96)
    plain_mean, plain_var = plain.prior(batch.support_images, batch.support_masks)
    torch.testing.assert_close(mean[:, :48], plain_mean)
    assert torch.all(var[:, 48:] < 1e-4)  # the smallest variance there is: not sampled
    noise = torch.randn(4, 96, generator=torch.Generator().manual_seed(0))
    kl = [model.train()(batch, n)["kl"] for model, n in ((plain, noise[:, :48]), (parted, noise))]
    torch.testing.assert_close(kl[1], kl[0])  # the KL is z's Gaussian's alone


@pytest.mark.parametrize(("model", "message"), [
    ({"background_parts": 1, "latent_dim": 50, "projection": "learned"}, "must be a multiple of 3"),
    ({"background_parts": 1, "latent_dim": 60}, "latent_dim must be 72"),
    ({"background_parts": 1, "latent_dim": 50}, "latent_dim must be 72"),  # one error, exact
    ({"background_parts": 9, "latent_dim": 264}, "model.background_parts is 9"),
    ({"decoder": "features", "background_parts": 1}, "options of model.decoder 'matching'"),
])
def test_bad_part_options_are_one_clear_error(model: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        VPIModel(apply_overrides(get_preset("tiny"), {"model": {**MATCHING, **model}}).model)
