"""One shared test, run over every runner this machine can run: shapes, sizes, parity, checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from runtime.helpers import blob_pair, openvino_missing, tensorrt_missing
from vpi.errors import ConfigError, DataError
from vpi.export import export_model
from vpi.runtime import OnnxRunner, OpenVinoRunner, Runner, Segmenter, TensorRTRunner, TorchRunner

RUNNERS = [
    pytest.param("torch-cpu"),
    pytest.param("onnx-cpu"),
    pytest.param("openvino-cpu"),
    pytest.param("torch-cuda", marks=pytest.mark.gpu),
    pytest.param("onnx-cuda", marks=pytest.mark.gpu),
    pytest.param("trt", marks=[pytest.mark.gpu, pytest.mark.trt]),
]
FP32 = 1e-4


@pytest.fixture(scope="module", params=RUNNERS)
def case(request, exported, tmp_path_factory) -> tuple[Runner, float]:
    """A runner and the probability tolerance it must meet against eager fp32 on the CPU."""
    checkpoint, export = exported
    kind = request.param
    if kind == "torch-cpu":
        return TorchRunner.from_checkpoint(checkpoint, device="cpu"), FP32
    if kind == "onnx-cpu":
        return OnnxRunner(export, device="cpu"), FP32
    if kind == "openvino-cpu":
        if openvino_missing():
            pytest.skip(openvino_missing())
        return OpenVinoRunner(export, precision="fp32"), FP32
    if kind == "trt":
        if tensorrt_missing():
            pytest.skip(tensorrt_missing())
        folder = tmp_path_factory.mktemp("trt")
        export_model(checkpoint, folder, engine="trt")
        return TensorRTRunner(folder), 3e-2
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    if kind == "torch-cuda":
        return TorchRunner.from_checkpoint(checkpoint, device="cuda"), 3e-2  # autocast
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        pytest.skip("needs onnxruntime-gpu")
    return OnnxRunner(export, device="cuda"), 1e-3  # cuDNN may use TF32


@pytest.fixture(scope="module")
def reference(exported) -> TorchRunner:
    return TorchRunner.from_checkpoint(exported[0], device="cpu", amp=False)


def _support(shots: int, side: int = 64, batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch`` support sets of ``shots`` pairs, each set with its own images and mask."""
    gen = torch.Generator().manual_seed(shots)
    masks = torch.zeros(batch, shots, 1, side, side)
    for i in range(batch):
        masks[i, :, :, 10 + 8 * i:40, 20:50 - 6 * i] = 1.0
    return torch.rand(batch, shots, 3, side, side, generator=gen), masks


def _decoder_inputs(
    reference: TorchRunner, samples: int, batch: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch`` queries (B, 3, 64, 64), each with prototypes (B, L, D) from its own prior."""
    mean, var = reference.run_prior(*_support(3, batch=batch))
    noise = torch.randn(batch, samples, mean.shape[1], generator=torch.Generator().manual_seed(samples))
    query = torch.rand(batch, 3, 64, 64, generator=torch.Generator().manual_seed(7))
    return query, mean[:, None] + noise * var[:, None].sqrt()


class TestRunner:
    @pytest.mark.parametrize("shots", [1, 3])
    def test_prior_matches_eager(self, case, reference, shots):
        runner, tolerance = case
        mean, var = runner.run_prior(*_support(shots))
        ref_mean, ref_var = reference.run_prior(*_support(shots))
        assert mean.shape == var.shape == (1, 16) and mean.dtype == torch.float32
        assert bool((var > 0).all())
        scale = max(1.0, float(ref_var.abs().max()))
        assert float((mean - ref_mean).abs().max()) <= tolerance
        assert float((var - ref_var).abs().max()) / scale <= tolerance

    @pytest.mark.parametrize("samples", [1, 6, 10])
    def test_decoder_matches_eager(self, case, reference, samples):
        runner, tolerance = case
        query, z = _decoder_inputs(reference, samples)
        maps = runner.run_decoder(query, z)
        reference_maps = reference.run_decoder(query, z)
        assert maps._fields == ("probability", "variance", "entropy", "mutual_information")
        for name, got, expected in zip(maps._fields, maps, reference_maps, strict=True):
            assert got.shape == (1, 64, 64), name
            assert float((got - expected).abs().max()) <= tolerance, name
        upper = {"probability": 1.0, "variance": 0.25, "entropy": math.log(2),
                 "mutual_information": math.log(2)}
        for name, got in maps._asdict().items():
            assert 0.0 <= float(got.min()) and float(got.max()) <= upper[name] + 1e-6, name
        assert float(maps.entropy.max()) > 0.01  # a tiny untrained model is unsure somewhere
        if samples == 1:  # one sample cannot disagree with itself
            assert float(maps.variance.abs().max()) == 0.0
            assert float(maps.mutual_information.max()) <= 1e-5

    def test_a_batch_equals_its_items_one_by_one(self, case, reference):
        """B = 3 support sets and queries in one call each: every item gets the answer eager
        PyTorch gives it alone, and the items do differ."""
        runner, tolerance = case
        images, masks = _support(2, batch=3)
        mean, var = runner.run_prior(images, masks)
        assert mean.shape == var.shape == (3, 16)
        query, z = _decoder_inputs(reference, 4, batch=3)
        prob, unc, entropy, information = runner.run_decoder(query, z)
        assert prob.shape == unc.shape == entropy.shape == information.shape == (3, 64, 64)
        for i in range(3):
            ref_mean, ref_var = reference.run_prior(images[i:i + 1], masks[i:i + 1])
            scale = max(1.0, float(ref_var.abs().max()))
            assert float((mean[i] - ref_mean[0]).abs().max()) <= tolerance
            assert float((var[i] - ref_var[0]).abs().max()) / scale <= tolerance
            ref_prob, ref_unc, ref_entropy, ref_information = reference.run_decoder(
                query[i:i + 1], z[i:i + 1])
            assert float((prob[i] - ref_prob[0]).abs().max()) <= tolerance
            assert float((unc[i] - ref_unc[0]).abs().max()) <= tolerance
            assert float((entropy[i] - ref_entropy[0]).abs().max()) <= tolerance
            assert float((information[i] - ref_information[0]).abs().max()) <= tolerance
        assert float((mean[0] - mean[1]).abs().max()) > 1e-3
        assert float((prob[0] - prob[1]).abs().max()) > 1e-3

    def test_batched_equals_looped(self, case, reference):
        runner, tolerance = case
        query, z = _decoder_inputs(reference, 6)
        maps = runner.run_decoder(query, z)
        singles = torch.cat([runner.run_decoder(query, z[:, i: i + 1]).probability
                             for i in range(6)])
        atol = max(tolerance, 1e-6)
        torch.testing.assert_close(maps.probability[0], singles.mean(0), atol=atol, rtol=0)
        torch.testing.assert_close(maps.variance[0], singles.var(0, unbiased=False), atol=atol, rtol=0)
        mean = singles.mean(0).clamp(1e-6, 1 - 1e-6)
        entropy = -(mean * mean.log() + (1 - mean) * (1 - mean).log())
        clamped = singles.clamp(1e-6, 1 - 1e-6)
        expected_entropy = -(clamped * clamped.log() + (1 - clamped) * (1 - clamped).log()).mean(0)
        torch.testing.assert_close(maps.entropy[0], entropy, atol=10 * atol, rtol=0)
        torch.testing.assert_close(maps.mutual_information[0],
                                   (entropy - expected_entropy).clamp(min=0), atol=10 * atol, rtol=0)

    def test_odd_sizes_come_back_at_the_query_size(self, case):
        runner, _ = case
        segmenter = Segmenter(runner)
        pairs = [blob_pair(1, 37, 53), blob_pair(2, 61, 29)]
        prior = segmenter.encode_support([p[0] for p in pairs], [p[1] for p in pairs])
        query = blob_pair(3, 45, 71)[0]
        result = segmenter.segment(query, prior, samples=3, seed=0)
        for array in (result.probability, result.mask, result.uncertainty, result.entropy,
                      result.mutual_information):
            assert array.shape == (45, 71)
        assert result.mask.dtype == bool and result.samples == 3

    def test_rejects_bad_inputs_with_received_and_expected(self, case):
        runner, _ = case
        images, masks = _support(3)
        for shots in (0, 11):
            with pytest.raises(DataError, match=f"has {shots} image/mask pairs; this prior "
                                                "encoder takes 1 to 10"):
                runner.run_prior(torch.rand(1, shots, 3, 64, 64), torch.ones(1, shots, 1, 64, 64))
        for batch in (0, runner.spec.max_batch + 1):
            with pytest.raises(ConfigError, match=f"batch size \\(B\\) is {batch}; these graphs "
                                                  f"take 1 to {runner.spec.max_batch}"):
                runner.run_prior(torch.rand(batch, 1, 3, 64, 64), torch.ones(batch, 1, 1, 64, 64))
        with pytest.raises(DataError, match=r"support images has shape \(1, 3, 3, 32, 32\), expected "
                                            r"\(B, K, 3, 64, 64\)"):
            runner.run_prior(torch.rand(1, 3, 3, 32, 32), masks)
        with pytest.raises(DataError, match=r"support images has shape \(3, 3, 64, 64\), expected "
                                            r"\(B, K, 3, 64, 64\)"):
            runner.run_prior(images[0], masks)  # a set without its batch axis
        with pytest.raises(DataError, match="got 1 sets of 3 support images but 1 sets of 2 support "
                                            "masks"):
            runner.run_prior(images, masks[:, :2])
        with pytest.raises(TypeError, match="float array in \\[0, 1\\], got dtype uint8"):
            runner.run_prior(np.zeros((1, 1, 3, 64, 64), np.uint8), masks[:, :1])
        query = torch.rand(1, 3, 64, 64)
        for samples in (0, runner.spec.max_samples + 1):
            with pytest.raises(ConfigError, match=f"samples \\(L\\) is {samples}; this decoder "
                                                  f"takes 1 to {runner.spec.max_samples}"):
                runner.run_decoder(query, torch.zeros(1, samples, 16))
        with pytest.raises(DataError, match=r"prototypes has shape \(1, 2, 8\), expected "
                                            r"\(B, L, 16\)"):
            runner.run_decoder(query, torch.zeros(1, 2, 8))
        with pytest.raises(DataError, match="got 1 query images but prototypes for 2"):
            runner.run_decoder(query, torch.zeros(2, 3, 16))
