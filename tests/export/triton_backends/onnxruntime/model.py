"""A Python-based stand-in for Triton's onnxruntime backend, for the server tests only.

No PyPI package ships ``libtriton_onnxruntime.so``, and Triton maps ``platform: "onnxruntime_onnx"``
to the backend ``onnxruntime``: a ``model.py`` in ``backends/onnxruntime/`` serves such models with
the Python backend. It runs ``<model>/<version>/model.onnx`` with ONNX Runtime on the CPU and
feeds and returns tensors by the names in config.pbtxt, so the server still checks the configs,
the ensemble's wiring and every request's shapes against them; the real backend's own checks
(the config against the graph) are not made here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import onnxruntime as ort
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        path = Path(args["model_repository"]) / args["model_version"] / "model.onnx"
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # the tests' CPUs are few and shared
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.inputs = [tensor["name"] for tensor in config["input"]]
        self.outputs = [tensor["name"] for tensor in config["output"]]

    def execute(self, requests: list[Any]) -> list[Any]:
        responses = []
        for request in requests:
            feeds = {name: pb_utils.get_input_tensor_by_name(request, name).as_numpy()
                     for name in self.inputs}
            results = self.session.run(self.outputs, feeds)
            responses.append(pb_utils.InferenceResponse(
                [pb_utils.Tensor(name, value) for name, value in zip(self.outputs, results, strict=True)]))
        return responses
