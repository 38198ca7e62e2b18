"""The graph modules that every backend runs: equal to the model's own Eq. 5/6/10 code."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from runtime.helpers import matching_checkpoint

from vpi.checkpoint import load_model
from vpi.graphs import draw_noise, noise_generator
from vpi.model import VPIModel
from vpi.model.graphs import PriorEncoderGraph, SegmentationDecoderGraph, typed_model


def _support(shots: int = 3, batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch`` support sets of ``shots`` pairs: (B, K, 3, 64, 64) and (B, K, 1, 64, 64)."""
    gen = torch.Generator().manual_seed(0)
    masks = torch.zeros(batch, shots, 1, 64, 64)
    masks[..., 8:40, 16:48] = 1.0
    masks[1:, :, :, 40:] = 1.0  # later sets differ in their masks too
    return torch.rand(batch, shots, 3, 64, 64, generator=gen), masks


@pytest.mark.parametrize("aggregation", ["variance", "mean"])
def test_prior_graph_is_the_models_aggregated_prior(tiny_config, aggregation):
    config = dataclasses.replace(tiny_config.model, aggregation=aggregation)
    torch.manual_seed(0)
    model = VPIModel(config).eval()
    images, masks = _support()
    with torch.no_grad():
        mean, var = PriorEncoderGraph(model)(images, masks)
        ref_mean, ref_var = model.prior(images, masks)
    torch.testing.assert_close(mean, ref_mean)
    torch.testing.assert_close(var, ref_var)
    assert mean.shape == (1, 16)


def test_decoder_graph_is_eq5_of_predict(tiny_model):
    images, masks = _support()
    query = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        mean, var = tiny_model.prior(images, masks)
        z = tiny_model.prototypes(mean, var, 6, torch.Generator().manual_seed(2))
        maps = SegmentationDecoderGraph(tiny_model)(query, z)
        reference = tiny_model.predict(images, masks, query, samples=6,
                                       generator=torch.Generator().manual_seed(2))
    assert len(maps) == len(reference) == 4
    for got, expected in zip(maps, reference, strict=True):
        assert got.shape == (1, 64, 64)
        torch.testing.assert_close(got, expected)


def test_each_item_of_a_batch_gets_its_own_answer(tiny_model):
    """B = 3 support sets and queries at once equal each one alone: nothing mixes across B."""
    images, masks = _support(shots=2, batch=3)
    query = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    prior, decoder = PriorEncoderGraph(tiny_model), SegmentationDecoderGraph(tiny_model)
    with torch.no_grad():
        mean, var = prior(images, masks)
        z = mean[:, None] + torch.randn(3, 5, 16) * var[:, None].sqrt()
        prob, unc, *_ = decoder(query, z)
        for i in range(3):
            alone = prior(images[i:i + 1], masks[i:i + 1])
            torch.testing.assert_close(mean[i:i + 1], alone[0], atol=1e-6, rtol=0)
            torch.testing.assert_close(var[i:i + 1], alone[1], atol=1e-6, rtol=1e-5)
            single = decoder(query[i:i + 1], z[i:i + 1])
            torch.testing.assert_close(prob[i:i + 1], single[0], atol=1e-6, rtol=0)
            torch.testing.assert_close(unc[i:i + 1], single[1], atol=1e-7, rtol=0)
    assert mean.shape == (3, 16) and prob.shape == unc.shape == (3, 64, 64)
    assert float((mean[0] - mean[1]).abs().max()) > 1e-3  # the sets do differ
    assert float((prob[0] - prob[1]).abs().max()) > 1e-3


def test_batched_decoder_equals_the_average_of_single_passes(tiny_model):
    graph = SegmentationDecoderGraph(tiny_model)
    query = torch.rand(1, 3, 64, 64)
    z = torch.randn(1, 10, 16) * 3
    with torch.no_grad():
        prob, unc, *_ = graph(query, z)
        singles = torch.cat([graph(query, z[:, i: i + 1])[0] for i in range(10)])
    torch.testing.assert_close(prob[0], singles.mean(0), atol=1e-6, rtol=0)
    torch.testing.assert_close(unc[0], singles.var(0, unbiased=False), atol=1e-7, rtol=0)
    assert float(unc.max()) > 0.0


def test_typed_copy_keeps_fp32_io_and_stays_close(tiny_model):
    assert typed_model(tiny_model, torch.float32) is tiny_model
    half = typed_model(tiny_model, torch.float16)
    assert half.encoder.inner.stem[0].weight.dtype == torch.float16
    assert half.prior_net.mean.weight.dtype == torch.float32  # the prior heads stay fp32
    assert tiny_model.encoder.stem[0].weight.dtype == torch.float32  # the original is untouched
    images, masks = _support()
    query, z = torch.rand(1, 3, 64, 64), torch.randn(1, 6, 16)
    with torch.no_grad():
        for graph, args in ((PriorEncoderGraph, (images, masks)),
                            (SegmentationDecoderGraph, (query, z))):
            typed, full = graph(half)(*args), graph(tiny_model)(*args)
            for got, ref in zip(typed, full, strict=True):
                assert got.dtype == torch.float32
                scale = max(1.0, float(ref.abs().max()))
                assert float((got - ref).abs().max()) / scale < 3e-2


def test_the_demos_decoder_typed_in_fp16_stays_finite(tiny_config, tmp_path):
    """The matching decoder with the background's parts and the refinement, as a TensorRT fp16
    engine runs it: its cosine similarities divide by norms, and a zero feature vector (the tiny
    encoder's ReLU gives them) was 0 / 0 under fp16 until ``unit`` kept a normal eps."""
    model, _, _ = load_model(matching_checkpoint(
        tiny_config, tmp_path, decoder_low_resolution=True, self_support=2,
        blocks_per_sample="none", refine_passes=2, background_parts=3))
    half = typed_model(model, torch.float16)
    images, masks = _support()
    query = torch.full((1, 3, 64, 64), 0.4)  # flat colours, an edge between them
    query[..., 32:] = 0.7
    with torch.no_grad():
        z = PriorEncoderGraph(model)(images, masks)[0][:, None].repeat(1, 4, 1)
        typed, full = SegmentationDecoderGraph(half)(query, z), SegmentationDecoderGraph(model)(query, z)
    for got, ref in zip(typed, full, strict=True):
        assert torch.isfinite(got).all()
        assert float((got - ref).abs().max()) < 3e-2


def test_noise_is_a_function_of_seed_and_index():
    first = draw_noise((4, 8), noise_generator(2, index=5))
    assert torch.equal(first, draw_noise((4, 8), noise_generator(2, index=5)))
    assert not torch.equal(first, draw_noise((4, 8), noise_generator(2, index=6)))
    assert not torch.equal(first, draw_noise((4, 8), noise_generator(3, index=5)))
    assert torch.equal(draw_noise((4, 8), noise_generator(11)),
                       torch.randn(4, 8, generator=torch.Generator().manual_seed(11)))


def test_the_deterministic_twin_draws_zeros_and_leaves_the_generator_alone():
    generator = torch.Generator().manual_seed(0)
    assert torch.equal(draw_noise((2, 3, 8), generator, probabilistic=False), torch.zeros(2, 3, 8))
    assert torch.equal(draw_noise((2, 3, 8), generator),
                       torch.randn(2, 3, 8, generator=torch.Generator().manual_seed(0)))
