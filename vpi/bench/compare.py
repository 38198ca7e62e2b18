"""Ratios between cells of a sweep, and the targets of issue 4 checked against them.

All ratios use the p50 latencies: the median is what a single-stream user waits, and it is the
figure least moved by a neighbour's job on a shared machine.
"""

from __future__ import annotations

from typing import Any

Results = list[dict[str, Any]]

# (name, what it compares, the L it is read at, the comparison, the threshold)
TARGETS = (
    ("end_to_end_L10_over_L1", "end to end at L = 10 over L = 1 (batched)", 10, "<=", 1.5),
    ("looped_over_batched_L10", "looped over batched end to end at L = 10", 10, ">=", 3.0),
    ("torch_over_onnx_L6", "eager PyTorch over ONNX Runtime end to end at L = 6 (batched)", 6,
     ">=", 1.3),
)


def _p50(results: Results) -> dict[tuple[str, str, int], dict[str, float]]:
    return {
        (r["backend"], r["mode"], r["L"]): {
            "decoder": r["decoder_ms"]["p50"], "end_to_end": r["end_to_end_ms"]["p50"]
        }
        for r in results
    }


def _ratio(top: dict[str, float], bottom: dict[str, float]) -> dict[str, float]:
    return {part: round(top[part] / bottom[part], 3) for part in ("decoder", "end_to_end")}


def comparisons(results: Results) -> dict[str, list[dict[str, Any]]]:
    """Three families of p50 ratios, decoder and end to end:

    - ``looped_over_batched``: per backend and L, how much the one-pass decoder saves;
    - ``over_L1``: per backend and mode, the cost of L samples relative to one;
    - ``torch_over_backend``: per backend, mode and L, the speed-up over eager PyTorch.
    """
    p50 = _p50(results)
    looped, over_one, over_torch = [], [], []
    for (backend, mode, samples), cell in p50.items():
        if mode == "batched" and (backend, "looped", samples) in p50:
            looped.append({"backend": backend, "L": samples,
                           **_ratio(p50[(backend, "looped", samples)], cell)})
        if (backend, mode, 1) in p50:
            over_one.append({"backend": backend, "mode": mode, "L": samples,
                             **_ratio(cell, p50[(backend, mode, 1)])})
        if backend != "torch" and ("torch", mode, samples) in p50:
            over_torch.append({"backend": backend, "mode": mode, "L": samples,
                               **_ratio(p50[("torch", mode, samples)], cell)})
    return {"looped_over_batched": looped, "over_L1": over_one, "torch_over_backend": over_torch}


def check_targets(results: Results) -> list[dict[str, Any]]:
    """Each target that the sweep measured, per backend, with its value and whether it is met."""
    found = comparisons(results)
    rows = []
    for name, what, samples, op, threshold in TARGETS:
        if name == "end_to_end_L10_over_L1":
            values = [(c["backend"], c["end_to_end"]) for c in found["over_L1"]
                      if c["mode"] == "batched" and c["L"] == samples]
        elif name == "looped_over_batched_L10":
            values = [(c["backend"], c["end_to_end"]) for c in found["looped_over_batched"]
                      if c["L"] == samples]
        else:
            values = [(c["backend"], c["end_to_end"]) for c in found["torch_over_backend"]
                      if c["backend"] == "onnx" and c["mode"] == "batched" and c["L"] == samples]
        for backend, value in values:
            met = value <= threshold if op == "<=" else value >= threshold
            rows.append({"target": name, "description": what, "backend": backend, "value": value,
                         "threshold": f"{op} {threshold}", "met": met})
    return rows
