"""Where the decoder graph's time goes on OpenVINO, per operation type, at L = 1 and L = 10.

    vpi bench --preset demo --backend openvino -L 1,10 --mode batched    # writes the ONNX graphs
    python docs/reproduce/openvino_profile.py runs/bench-cache/exports/*/onnx/segmentation_decoder.onnx

OpenVINO's own per-node counters (PERF_COUNT), bf16 as it picks on this CPU, 30 timed calls after
5 warm-up ones; the prototypes' width is read from the graph's input.
"""

import collections
import sys
import time

import numpy as np
import openvino as ov


def profile(path: str) -> None:
    core = ov.Core()
    model = core.read_model(path)
    width = model.inputs[1].get_partial_shape()[2].get_length()
    for samples in (1, 10):
        compiled = core.compile_model(model, "CPU", {"PERF_COUNT": "YES",
                                                     "INFERENCE_PRECISION_HINT": "bf16"})
        request = compiled.create_infer_request()
        inputs = {0: np.random.rand(1, 3, 128, 128).astype(np.float32),
                  1: np.random.randn(1, samples, width).astype(np.float32)}
        for _ in range(5):
            request.infer(inputs)
        tic = time.perf_counter()
        for _ in range(30):
            request.infer(inputs)
        per_type: collections.Counter[str] = collections.Counter()
        for node in request.profiling_info:
            per_type[node.node_type] += node.real_time.total_seconds() * 1e3
        print(f"L = {samples}: {(time.perf_counter() - tic) / 30 * 1e3:.2f} ms a call; by type (ms):",
              ", ".join(f"{name} {ms:.2f}" for name, ms in per_type.most_common(6)))


if __name__ == "__main__":
    for graph in sys.argv[1:] or sys.exit(__doc__):
        profile(graph)
