"""The matching decoder: z as a foreground and a background prototype, the untrained model is the
training-free matcher, the identity projection stays fixed, and the options are checked."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from vpi.config import apply_overrides, get_preset
from vpi.data import build_episodes, collate_episodes
from vpi.errors import ConfigError
from vpi.eval.matcher import PrototypeMatcher
from vpi.graphs import summarise_samples
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
    probability = model.predict(batch.support_images, batch.support_masks, batch.query_image,
                                samples=2, generator=torch.Generator().manual_seed(0)).probability
    matcher = PrototypeMatcher(model.encoder)
    expected = matcher.predict(batch.support_images, batch.support_masks, batch.query_image).probability
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


def test_dice_on_refined_scores_the_map_that_test_time_thresholds() -> None:
    model = _model(refine_passes=2).train()
    batch, noise = _batch(), torch.randn(4, 48)
    gradients, losses = [], []
    for on_refined in (False, True):
        model.zero_grad()
        losses.append(model(batch, noise, dice_weight=1.0, dice_on_refined=on_refined))
        losses[-1]["loss"].backward()
        gradients.append(model.decoder.scale.grad.clone())
    decoded, refined = losses
    torch.testing.assert_close(refined["ce"], decoded["ce"])  # the same decoder, the same maps
    assert not torch.allclose(refined["dice"], decoded["dice"])
    assert not torch.allclose(gradients[1], gradients[0])  # the refined Dice reaches the decoder


@pytest.mark.parametrize(
    ("model", "message"),
    [({"latent_dim": 47, "projection": "learned"}, "must be a multiple of 2"),
     ({"latent_dim": 40}, "latent_dim must be 48"),
     ({"decoder": "features", "decoder_skips": False}, "options of model.decoder 'matching'"),
     ({"projection": "frozen"}, "model.projection is 'frozen'"),
     ({"decoder": "features", "self_support": 1}, "options of model.decoder 'matching'"),
     ({"decoder": "features", "self_support_from": "matcher"}, "options of model.decoder"),
     ({"self_support_from": "support"}, "model.self_support_from is 'support'"),
     ({"self_support_from": "matcher"}, "needs model.self_support of at least 1"),
     ({"self_support": 4}, "model.self_support is 4"),
     ({"self_support": 1, "self_support_in_training": 2}, "self_support_in_training is 2"),
     ({"decoder": "features", "self_support_in_training": 0}, "options of model.decoder"),
     ({"decoder": "features", "blocks_per_sample": "none"}, "options of model.decoder"),
     ({"blocks_per_sample": "median"}, "model.blocks_per_sample is 'median'"),
     ({"decoder": "features", "projection": "learned", "decoder_skips": True,
       "similarity_map": True, "prototype_features": "deep+mid"}, "needs model.dilated true")],
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


def test_self_support_pulls_the_prototypes_towards_the_query() -> None:
    """The support's foreground prototype is off (a lighter red than the query's object); pooling
    the query's confident pixels moves it towards the query's own red, and the background too."""
    from vpi.model.nets import SELF_SUPPORT, _self_supported

    keys = torch.zeros(1, 2, 4, 4)
    keys[:, 0, :, :2] = 1.0  # left half: the object, along channel 0
    keys[:, 1, :, 2:] = 1.0  # right half: the background, along channel 1
    z = torch.tensor([[[1.0, 1.0, -0.2, 1.0]]])  # fg half-way between; bg tilted
    logits = torch.full((1, 1, 4, 4), -10.0)
    logits[..., :2] = 10.0  # confident: the object on the left
    moved = _self_supported(z, keys, logits)
    weight_fg, weight_bg = SELF_SUPPORT["foreground"][1], SELF_SUPPORT["background"][1]
    fg, bg = torch.nn.functional.normalize(z.view(2, 2), dim=-1)
    torch.testing.assert_close(moved[0, 0, :2], (1 - weight_fg) * fg + weight_fg * torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(moved[0, 0, 2:], (1 - weight_bg) * bg + weight_bg * torch.tensor([0.0, 1.0]))
    # Nothing confident: the prototypes stay as they were (unit length).
    unsure = _self_supported(z, keys, torch.zeros(1, 1, 4, 4))
    torch.testing.assert_close(unsure[0, 0], torch.cat([fg, bg]))


def test_self_support_round_changes_the_decision_but_not_the_shapes() -> None:
    plain, supported = _model(), _model(self_support=1)
    supported.load_state_dict(plain.state_dict())
    batch = _batch()
    args = (batch.support_images, batch.support_masks, batch.query_image)
    first = plain.predict(*args, samples=2, generator=torch.Generator().manual_seed(0))
    second = supported.predict(*args, samples=2, generator=torch.Generator().manual_seed(0))
    assert first.probability.shape == second.probability.shape == (4, 64, 64)
    assert float((first.probability - second.probability).abs().max()) > 1e-3


def test_self_support_from_the_matcher_runs_the_blocks_once() -> None:
    """The first decision of the self-support round from the matcher's rule alone: each sample
    goes through the decoder's blocks once, not twice, and the answer changes."""
    from_decoder = _model(self_support=1)
    from_matcher = _model(self_support=1, self_support_from="matcher")
    from_matcher.load_state_dict(from_decoder.state_dict())
    with torch.no_grad():  # a correction that is not zero, so the two first decisions differ
        from_decoder.decoder.head.bias.fill_(2.0)
        from_matcher.decoder.head.bias.fill_(2.0)
    batch = _batch()
    calls: list[int] = []
    from_matcher.decoder.block8.register_forward_hook(lambda *_: calls.append(1))
    args = (batch.support_images, batch.support_masks, batch.query_image)
    first = from_decoder.predict(*args, samples=2, generator=torch.Generator().manual_seed(0))
    second = from_matcher.predict(*args, samples=2, generator=torch.Generator().manual_seed(0))
    assert len(calls) == 1
    assert first.probability.shape == second.probability.shape
    assert float((first.probability - second.probability).abs().max()) > 1e-3


def test_training_runs_its_own_rounds_and_scoring_the_model_s() -> None:
    """Trained with one round, deciding with two: the blocks run twice per sample in a training
    step and three times when the model predicts; a scoring-time change of the rounds reaches
    the decoder."""
    from vpi.config import replace

    model = _model(self_support=2, self_support_in_training=1)
    batch = _batch()
    calls: list[int] = []
    model.decoder.block8.register_forward_hook(lambda *_: calls.append(1))
    model.train()
    model(batch)
    assert len(calls) == 2
    calls.clear()
    model.eval()
    model.predict(batch.support_images, batch.support_masks, batch.query_image, samples=2)
    assert len(calls) == 3
    calls.clear()
    model.use_test_time(replace(model.config, self_support=1))
    model.predict(batch.support_images, batch.support_masks, batch.query_image, samples=2)
    assert len(calls) == 2


def _with_correction(model: VPIModel) -> VPIModel:
    """A correction that depends on the prototypes, so that computing it once on their mean
    differs from computing it on each: the untrained head is zero."""
    with torch.no_grad():
        torch.nn.init.normal_(model.decoder.head.weight, std=1.0)
    return model


def _block_inputs(model: VPIModel) -> list[int]:
    """The batch size of every pass through the decoder's blocks, as the model runs."""
    inputs: list[int] = []
    model.decoder.block8.register_forward_hook(lambda _m, args, _o: inputs.append(args[0].shape[0]))
    return inputs


@pytest.mark.parametrize("rounds", [0, 2])
@torch.no_grad()
def test_blocks_on_the_mean_decide_one_prototype_as_before(rounds: int) -> None:
    from vpi.config import replace

    model = _with_correction(_model(self_support=rounds, decoder_low_resolution=True))
    batch = _batch()
    features = model.encoder(batch.query_image)
    z = torch.randn(4, 1, 48)
    each = model.decode(features, z, (64, 64))
    model.use_test_time(replace(model.config, blocks_per_sample="none"))
    torch.testing.assert_close(model.decode(features, z, (64, 64)), each)


@pytest.mark.parametrize(("passes", "expected"), [("all", [20, 20, 20]), ("none", [4, 4, 4])])
@torch.no_grad()
def test_blocks_per_sample_sets_which_passes_see_every_sample(passes: str, expected: list[int]
                                                               ) -> None:
    """4 queries, L = 5, two self-support rounds: three passes through the blocks, each over
    B x L maps or over the B means."""
    model = _model(self_support=2, decoder_low_resolution=True, blocks_per_sample=passes)
    inputs = _block_inputs(model)
    features = model.encoder(_batch().query_image)
    model.decode(features, torch.randn(4, 5, 48), None)
    assert inputs == expected


@pytest.mark.parametrize("rounds", [0, 1])
@torch.no_grad()
def test_blocks_on_the_mean_keep_each_sample_s_rule_and_its_own_confident_pixels(rounds: int
                                                                                 ) -> None:
    """Each decision of a sample is the mean's learned correction plus its own matcher rule, and
    a self-support round moves each sample towards the pixels that decision is confident of: the
    samples still differ, as when each ran the blocks."""
    from vpi.model.nets import _self_supported

    model = _with_correction(_model(decoder_low_resolution=True, blocks_per_sample="none",
                                    self_support=rounds))
    batch = _batch()
    features = model.encoder(batch.query_image)
    keys = model.prior_net.project(model.prototype_features(features))
    z = torch.randn(4, 5, 48)
    logits = model.decode(features, z, None)
    decoder, size = model.decoder, logits.shape[-2:]

    def rule(prototypes: torch.Tensor) -> torch.Tensor:
        return F.interpolate(decoder.match_logits(keys, prototypes), size=size, mode="bilinear",
                             align_corners=False)

    def decision(prototypes: torch.Tensor) -> torch.Tensor:
        mean = prototypes.mean(1, keepdim=True)
        return decoder._decide(features, mean, keys) - rule(mean) + rule(prototypes)

    expected = decision(z)
    for _ in range(rounds):
        confident = F.interpolate(expected.flatten(0, 1)[:, None], size=keys.shape[-2:],
                                  mode="bilinear", align_corners=False)
        z = _self_supported(z, keys, confident)
        expected = decision(z)
    torch.testing.assert_close(logits, expected)
    assert float(logits.std(1).min()) > 0


@torch.no_grad()
def test_blocks_on_the_mean_stay_close_to_each_sample_s_for_close_prototypes() -> None:
    """The samples of a trained prior lie close together: passes on their mean stand for theirs
    (what makes this a test-time setting of a trained model)."""
    from vpi.config import replace

    model = _with_correction(_model(self_support=2, decoder_low_resolution=True))
    batch = _batch()
    features = model.encoder(batch.query_image)
    z = torch.randn(4, 1, 48) + 0.01 * torch.randn(4, 6, 48)
    each = torch.sigmoid(model.decode(features, z, (64, 64)))
    model.use_test_time(replace(model.config, blocks_per_sample="none"))
    fewer = torch.sigmoid(model.decode(features, z, (64, 64)))
    assert float((fewer - each).abs().max()) < 0.02
    assert float((fewer - each).abs().max()) > 0


def test_training_runs_every_pass_on_each_sample() -> None:
    """A training step decodes the posterior's and the prior's samples side by side: their mean
    is not a prototype of either, so training never runs a pass on it."""
    model = _model(likelihood_z="both", blocks_per_sample="none").train()
    inputs = _block_inputs(model)
    model(_batch())
    assert inputs == [8]


@pytest.mark.parametrize("model", [{}, {"decoder_skips": True},
                                   {"decoder": "features", "projection": "learned",
                                    "decoder_skips": True}])
def test_low_resolution_decoder_runs_its_blocks_at_stride_8(model: dict) -> None:
    """Same weights, same output size; the blocks' inputs stay at the stride-8 map's size, the
    finer skips (the paper's decoder has them) pooled to it."""
    full, low = _model(**model), _model(decoder_low_resolution=True, **model)
    low.load_state_dict(full.state_dict())
    batch = _batch()
    sizes: list[tuple[int, ...]] = []
    low.decoder.block2[2].register_forward_hook(lambda _m, args, _o: sizes.append(args[0].shape[-2:]))
    features = low.encoder(batch.query_image)
    z = torch.randn(4, 3, 48)
    logits = low.decode(features, z, (64, 64))
    assert logits.shape == full.decode(features, z, (64, 64)).shape == (4, 3, 64, 64)
    assert sizes == [features.skip8.shape[-2:]]


def test_low_resolution_decoder_summarises_its_samples_before_upsampling() -> None:
    """predict's maps are the stride-8 summaries upsampled once: no sample is decoded at 64 px."""
    model = _model(decoder_low_resolution=True)
    batch = _batch()
    features = model.encoder(batch.query_image)
    z = torch.randn(4, 3, 48)
    native = model.decode(features, z, None)
    assert native.shape[-2:] == features.skip8.shape[-2:]
    maps = model.sample_maps(features, z, batch.query_image)
    expected = summarise_samples(torch.sigmoid(native), (64, 64))
    assert all(m.shape == (4, 64, 64) for m in maps)
    for got, want in zip(maps, expected, strict=True):
        torch.testing.assert_close(got, want)
    small = summarise_samples(torch.sigmoid(native))
    torch.testing.assert_close(maps.probability.mean((1, 2)), small.probability.mean((1, 2)),
                               atol=0.02, rtol=0)


def test_undilated_encoder_keeps_imagenet_strides() -> None:
    images = torch.rand(1, 3, 64, 64)
    assert build_backbone("tiny")(images).deep.shape[-1] == 8
    assert build_backbone("tiny", dilated=False)(images).deep.shape[-1] == 4
    assert build_backbone("resnet18", depth="mid", dilated=False).eval()(images).deep.shape[-1] == 4
