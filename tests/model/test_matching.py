"""The matching decoder: z as a foreground and a background prototype, the untrained model is the
training-free matcher, the identity projection stays fixed, and the options are checked."""

from __future__ import annotations

import pytest
import torch

from vpi.config import apply_overrides, get_preset
from vpi.data import build_episodes, collate_episodes
from vpi.errors import ConfigError
from vpi.eval.matcher import PrototypeMatcher
from vpi.model import VPIModel, build_backbone

MATCHING = {"decoder": "matching", "dilated": False, "latent_dim": 48, "projection": "identity",
            "decoder_skips": False, "initial_logvar": -20.0}


def _model(**model: object) -> VPIModel:
    config = apply_overrides(get_preset("tiny"), {"model": {**MATCHING, **model}})
    torch.manual_seed(0)
    return VPIModel(config.model).eval()


def _batch():
    data = get_preset("tiny").data
    return collate_episodes([build_episodes(data, "test", shots=1, episodes=4, seed=0)[i]
                             for i in range(4)])


def test_untrained_matching_model_decides_as_the_matcher() -> None:
    model = _model(probabilistic=False)  # z = the prior mean: the matcher's own prototypes
    batch = _batch()
    probability, _ = model.predict(batch.support_images, batch.support_masks, batch.query_image,
                                   samples=2, generator=torch.Generator().manual_seed(0))
    matcher = PrototypeMatcher(model.encoder)
    expected, _ = matcher.predict(batch.support_images, batch.support_masks, batch.query_image)
    # Same encoder, same prototypes, same rule; only the upsampling path differs (the model
    # upsamples its logits in two steps), which can flip a pixel where both are nearly equal.
    agree = ((probability > 0.5) == (expected > 0.5)).float().mean()
    assert agree > 0.99


def test_z_holds_a_foreground_and_a_background_prototype() -> None:
    model = _model()
    batch = _batch()
    mean, var = model.prior(batch.support_images, batch.support_masks)
    assert mean.shape == var.shape == (4, 48)
    features = model.encoder(batch.support_images[:, 0]).deep  # 24 channels: the identity keeps them
    masks = batch.support_masks[:, 0]
    from vpi.model.gaussian import masked_average_pool

    assert torch.allclose(mean[:, :24], masked_average_pool(features, masks), atol=1e-5)
    assert torch.allclose(mean[:, 24:], masked_average_pool(features, 1 - masks), atol=1e-5)


def test_identity_projection_does_not_train_and_a_learned_one_does() -> None:
    frozen = _model()
    trained = {id(p) for p in frozen.head_parameters()}
    assert id(frozen.prior_net.mean.weight) not in trained
    assert id(frozen.prior_net.logvar.weight) in trained
    learned = _model(projection="learned")
    assert id(learned.prior_net.mean.weight) in {id(p) for p in learned.head_parameters()}
    assert torch.equal(learned.prior_net.mean.weight, torch.eye(24))  # starts as the matcher


def test_loss_trains_the_correction_and_leaves_the_encoder_alone() -> None:
    model = _model().train()
    batch = _batch()
    model(batch, dice_weight=1.0, similarity_weight=1.0)["loss"].backward()
    assert model.decoder.head.weight.grad.abs().sum() > 0
    assert model.decoder.scale.grad is not None
    assert model.prior_net.mean.weight.grad is None


@pytest.mark.parametrize(
    ("model", "message"),
    [({"latent_dim": 47, "projection": "learned"}, "must be even"),
     ({"latent_dim": 40}, "latent_dim must be 48"),
     ({"decoder": "features", "decoder_skips": False}, "options of model.decoder 'matching'"),
     ({"projection": "frozen"}, "model.projection is 'frozen'")],
)
def test_bad_matching_options_are_one_clear_error(model: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _model(**model)


@pytest.mark.parametrize("skips", [True, False])
def test_matching_decoder_exports_shapes_with_and_without_skips(skips: bool) -> None:
    model = _model(decoder_skips=skips)
    batch = _batch()
    features = model.encoder(batch.query_image)
    z = torch.randn(4, 3, 48)
    assert model.decode(features, z, (64, 64)).shape == (4, 3, 64, 64)


def test_undilated_encoder_keeps_imagenet_strides() -> None:
    images = torch.rand(1, 3, 64, 64)
    assert build_backbone("tiny")(images).deep.shape[-1] == 8
    assert build_backbone("tiny", dilated=False)(images).deep.shape[-1] == 4
    assert build_backbone("resnet18", depth="mid", dilated=False).eval()(images).deep.shape[-1] == 4
