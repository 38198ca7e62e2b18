"""Percentiles, ratios and targets: exact values where arithmetic gives them."""

from __future__ import annotations

import pytest

from vpi.bench.compare import check_targets, comparisons
from vpi.bench.machine import cpu_model
from vpi.bench.timing import percentile, summarize


def test_percentiles_interpolate_like_numpy():
    values = [float(v) for v in range(1, 11)]
    assert percentile(values, 50) == 5.5
    assert percentile(values, 90) == pytest.approx(9.1)
    assert percentile(values, 99) == pytest.approx(9.91)
    assert percentile([7.0], 99) == 7.0
    stats = summarize([4.0, 1.0, 3.0, 2.0])
    assert stats == {"p50": 2.5, "p90": 3.7, "p99": 3.97, "mean": 2.5, "min": 1.0, "max": 4.0,
                     "n": 4}


def _cell(backend, mode, samples, decoder, end_to_end, batch=1):
    return {"backend": backend, "mode": mode, "L": samples, "B": batch, "decoder_ms": {"p50": decoder},
            "end_to_end_ms": {"p50": end_to_end}}


def test_ratios_and_targets():
    results = [
        _cell("torch", "batched", 1, 10.0, 100.0), _cell("torch", "batched", 6, 30.0, 130.0),
        _cell("torch", "batched", 10, 50.0, 160.0), _cell("torch", "looped", 10, 400.0, 500.0),
        _cell("onnx", "batched", 6, 20.0, 100.0),
    ]
    found = comparisons(results)
    assert found["looped_over_batched"] == [
        {"backend": "torch", "L": 10, "B": 1, "decoder": 8.0, "end_to_end": 3.125}]
    assert {"backend": "torch", "mode": "batched", "L": 10, "B": 1, "decoder": 5.0,
            "end_to_end": 1.6} in found["over_L1"]
    assert found["torch_over_backend"] == [
        {"backend": "onnx", "mode": "batched", "L": 6, "B": 1, "decoder": 1.5, "end_to_end": 1.3}]
    assert found["over_B1"] == []
    # A batch of 4 at L = 10 whose decoder takes twice B = 1's: twice the queries/s. Its own
    # L = 10 / L = 1 ratio (1.1) would meet the first target, but targets are read at B = 1.
    batched = [*results, _cell("torch", "batched", 10, 100.0, 220.0, batch=4),
               _cell("torch", "batched", 1, 90.0, 200.0, batch=4)]
    found = comparisons(batched)
    assert found["over_B1"] == [
        {"backend": "torch", "mode": "batched", "L": 10, "B": 4, "decoder": 2.0,
         "end_to_end": 2.909},
        {"backend": "torch", "mode": "batched", "L": 1, "B": 4, "decoder": 0.444,
         "end_to_end": 2.0}]
    assert {"backend": "torch", "mode": "batched", "L": 10, "B": 4, "decoder": 1.111,
            "end_to_end": 1.1} in found["over_L1"]
    assert check_targets(batched) == check_targets(results)
    targets = {t["target"]: t for t in check_targets(results)}
    assert targets["end_to_end_L10_over_L1"]["value"] == 1.6
    assert targets["end_to_end_L10_over_L1"]["met"] is False
    assert targets["looped_over_batched_L10"]["met"] is True
    assert targets["torch_over_onnx_L6"]["value"] == 1.3 and targets["torch_over_onnx_L6"]["met"]


def test_cpu_model_from_cpuinfo():
    text = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13 64-Core Processor\n"
    assert cpu_model(text) == "AMD EPYC 7B13 64-Core Processor"
    assert cpu_model("processor : 0\nHardware : BCM2835\n") == "BCM2835"
