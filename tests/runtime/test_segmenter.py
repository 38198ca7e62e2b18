"""Segmenter: the prior cache, seeded sampling, Eq. 5 end to end, and the deterministic twin."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from runtime.helpers import blob_pair
from vpi.config import get_preset
from vpi.errors import ConfigError, DataError
from vpi.graphs import GraphSpec
from vpi.model import VPIModel
from vpi.runtime import Segmenter, TorchRunner


def _segmenter(probabilistic: bool = True) -> tuple[Segmenter, VPIModel]:
    config = get_preset("tiny")
    config = dataclasses.replace(
        config, model=dataclasses.replace(config.model, probabilistic=probabilistic))
    torch.manual_seed(0)
    model = VPIModel(config.model).eval()
    return Segmenter(TorchRunner(model, GraphSpec.from_config(config), device="cpu")), model


def _support(count: int = 2, side: int = 64) -> tuple[list[np.ndarray], list[np.ndarray]]:
    pairs = [blob_pair(seed, side, side) for seed in range(count)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def test_the_prior_is_cached_by_content():
    segmenter, _ = _segmenter()
    calls = []
    run_prior = segmenter.runner.run_prior
    segmenter.runner.run_prior = lambda *args: calls.append(1) or run_prior(*args)
    images, masks = _support()
    first = segmenter.encode_support(images, masks)
    again = segmenter.encode_support([i.copy() for i in images], [m.copy() for m in masks])
    assert again is first and len(calls) == 1
    masks[1][:4] = 1  # other content, other prior
    other = segmenter.encode_support(images, masks)
    assert other.key != first.key and len(calls) == 2 and other.shots == 2


def test_prototypes_are_mean_plus_seeded_noise_times_std():
    segmenter, _ = _segmenter()
    prior = segmenter.encode_support(*_support())
    z = segmenter.prototypes(prior, 6, seed=3)
    noise = torch.randn(6, 16, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(z, prior.mean + noise * prior.variance.sqrt(), rtol=0, atol=0)
    assert not torch.equal(z, segmenter.prototypes(prior, 6, seed=4))


def test_segment_is_eq5_of_the_model_and_reproducible():
    segmenter, model = _segmenter()
    images, masks = _support()
    query = blob_pair(9, 64, 64)[0]
    prior = segmenter.encode_support(images, masks)
    result = segmenter.segment(query, prior, samples=6, seed=5, threshold=0.5)
    again = segmenter.segment(query, prior, samples=6, seed=5, threshold=0.5)
    np.testing.assert_array_equal(result.probability, again.probability)

    def tensor(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(array).permute(2, 0, 1).float() / 255.0

    mean, var, entropy, information = model.predict(
        torch.stack([tensor(i) for i in images])[None],
        torch.stack([torch.from_numpy(m).float()[None] for m in masks])[None],
        tensor(query)[None], samples=6, generator=torch.Generator().manual_seed(5))
    np.testing.assert_allclose(result.probability, mean[0].numpy(), atol=1e-6, rtol=0)
    np.testing.assert_allclose(result.uncertainty, var[0].numpy(), atol=1e-7, rtol=0)
    np.testing.assert_allclose(result.entropy, entropy[0].numpy(), atol=1e-6, rtol=0)
    np.testing.assert_allclose(result.mutual_information, information[0].numpy(), atol=1e-6, rtol=0)
    np.testing.assert_array_equal(result.mask, result.probability > 0.5)
    assert set(result.timings_ms) == {"preprocess", "decode", "postprocess"}


def test_a_batch_of_queries_gets_what_each_gets_alone():
    segmenter, _ = _segmenter()
    prior = segmenter.encode_support(*_support())
    queries = [blob_pair(9, 64, 64)[0], blob_pair(10, 37, 53)[0], blob_pair(11, 80, 48)[0]]
    calls = []
    run_decoder = segmenter.runner.run_decoder
    segmenter.runner.run_decoder = lambda *args: calls.append(args[0].shape[0]) or run_decoder(*args)
    batch = segmenter.segment_batch(queries, prior, samples=4, seed=2, threshold=0.5)
    assert calls == [3]  # one decoder call for the three
    for query, result in zip(queries, batch, strict=True):
        alone = segmenter.segment(query, prior, samples=4, seed=2, threshold=0.5)
        assert result.probability.shape == query.shape[:2] and result.samples == 4
        np.testing.assert_allclose(result.probability, alone.probability, atol=1e-6, rtol=0)
        np.testing.assert_allclose(result.uncertainty, alone.uncertainty, atol=1e-7, rtol=0)
        assert set(result.timings_ms) == {"preprocess", "decode", "postprocess"}
    assert np.abs(batch[0].probability[:37, :48] - batch[1].probability[:37, :48]).max() > 1e-3
    with pytest.raises(ConfigError, match="batch size \\(B\\) is 17; these graphs take 1 to 16"):
        segmenter.segment_batch(queries * 5 + queries[:2], prior)
    with pytest.raises(ConfigError, match="batch size \\(B\\) is 0"):
        segmenter.segment_batch([], prior)
    with pytest.raises(DataError, match="query #2 must be \\(H, W, 3\\) uint8, got float32"):
        segmenter.segment_batch([queries[0], queries[1].astype(np.float32)], prior)


def test_deterministic_twin_decodes_the_mean_once():
    segmenter, _ = _segmenter(probabilistic=False)
    prior = segmenter.encode_support(*_support())
    result = segmenter.segment(blob_pair(9)[0], prior, samples=6, seed=0)
    assert result.samples == 1
    assert float(np.abs(result.uncertainty).max()) == 0.0


def test_bad_arguments_are_named():
    segmenter, _ = _segmenter()
    images, masks = _support()
    with pytest.raises(DataError, match="support mask 'mask of #2' has no foreground"):
        segmenter.encode_support(images, [masks[0], np.zeros_like(masks[1])])
    with pytest.raises(DataError, match="'mask of #1' is 32×64 but its image '#1' is 64×64"):
        segmenter.encode_support(images[:1], [masks[0][:, :32]])
    with pytest.raises(DataError, match="the support set has 0 image/mask pairs; this prior "
                                       "encoder takes 1 to 10"):
        segmenter.encode_support([], [])
    prior = segmenter.encode_support(images, masks)
    query = blob_pair(9)[0]
    with pytest.raises(ConfigError, match="threshold is 1.0"):
        segmenter.segment(query, prior, threshold=1.0)
    for samples in (0, 17):
        with pytest.raises(ConfigError, match=f"samples \\(L\\) is {samples}; this decoder "
                                              "takes 1 to 16"):
            segmenter.segment(query, prior, samples=samples)
    with pytest.raises(DataError, match="query must be \\(H, W, 3\\) uint8, got float32"):
        segmenter.segment(query.astype(np.float32), prior)
    calls = []
    segmenter.runner.run_prior = lambda *args: calls.append(1)
    with pytest.raises(DataError, match="the support set has 11 image/mask pairs"):
        segmenter.encode_support(*_support(11))
    assert not calls  # refused before any preprocessing or encoding
