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


def _p50(results: Results) -> dict[tuple[str, str, int, int], dict[str, float]]:
    return {
        (r["backend"], r["mode"], r["L"], r["B"]): {
            "decoder": r["decoder_ms"]["p50"], "end_to_end": r["end_to_end_ms"]["p50"]
        }
        for r in results
    }


def _ratio(top: dict[str, float], bottom: dict[str, float], scale: float = 1.0) -> dict[str, float]:
    return {part: round(scale * top[part] / bottom[part], 3) for part in ("decoder", "end_to_end")}


def comparisons(results: Results) -> dict[str, list[dict[str, Any]]]:
    """Four families of p50 ratios, decoder and end to end, each within one batch size B but the
    last:

    - ``looped_over_batched``: per backend, L and B, how much the one-pass decoder saves;
    - ``over_L1``: per backend, mode and B, the cost of L samples relative to one;
    - ``torch_over_backend``: per backend, mode, L and B, the speed-up over eager PyTorch;
    - ``over_B1``: per backend, mode, L and B > 1, the queries/s at B over those at B = 1 (B
      users' latency at B = 1, over one batch's latency at B).
    """
    p50 = _p50(results)
    looped, over_one, over_torch, over_batch = [], [], [], []
    for (backend, mode, samples, batch), cell in p50.items():
        cells = {"backend": backend, "mode": mode, "L": samples, "B": batch}
        if mode == "batched" and (backend, "looped", samples, batch) in p50:
            looped.append({"backend": backend, "L": samples, "B": batch,
                           **_ratio(p50[(backend, "looped", samples, batch)], cell)})
        if (backend, mode, 1, batch) in p50:
            over_one.append({**cells, **_ratio(cell, p50[(backend, mode, 1, batch)])})
        if backend != "torch" and ("torch", mode, samples, batch) in p50:
            over_torch.append({**cells, **_ratio(p50[("torch", mode, samples, batch)], cell)})
        if batch != 1 and (backend, mode, samples, 1) in p50:
            over_batch.append({**cells, **_ratio(p50[(backend, mode, samples, 1)], cell, batch)})
    return {"looped_over_batched": looped, "over_L1": over_one, "torch_over_backend": over_torch,
            "over_B1": over_batch}


def check_targets(results: Results) -> list[dict[str, Any]]:
    """Each target that the sweep measured at B = 1 (the targets are single-user latencies), per
    backend, with its value and whether it is met."""
    found = {family: [c for c in cells if c["B"] == 1]
             for family, cells in comparisons(results).items()}
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
