"""A Python-based stand-in for Triton's onnxruntime backend, for the server tests only.

No PyPI package ships ``libtriton_onnxruntime.so``, and Triton maps ``platform: "onnxruntime_onnx"``
to the backend ``onnxruntime``: a ``model.py`` in ``backends/onnxruntime/`` serves such models with
the Python backend. It runs ``<model>/<version>/model.onnx`` with ONNX Runtime on the CPU and
feeds and returns tensors by the names in config.pbtxt, so the server still checks the configs,
the ensemble's wiring and every request's shapes against them; the real backend's own checks
(the config against the graph) are not made here. Like the real backend it runs the requests
that dynamic batching hands it in one session call, concatenated along the batch axis, and
splits the outputs again; requests whose other dims differ run apart.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
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
        arrays = [{name: pb_utils.get_input_tensor_by_name(request, name).as_numpy()
                   for name in self.inputs} for request in requests]
        groups: dict[tuple, list[int]] = {}  # the other dims of every input -> its requests
        for index, feeds in enumerate(arrays):
            groups.setdefault(tuple(a.shape[1:] for a in feeds.values()), []).append(index)
        responses: list[Any] = [None] * len(requests)
        for members in groups.values():
            feeds = {name: np.concatenate([arrays[i][name] for i in members]) for name in self.inputs}
            results = self.session.run(self.outputs, feeds)
            ends = np.cumsum([len(arrays[i][self.inputs[0]]) for i in members])
            for index, start, end in zip(members, [0, *ends[:-1]], ends, strict=True):
                responses[index] = pb_utils.InferenceResponse(
                    [pb_utils.Tensor(name, np.ascontiguousarray(value[start:end]))
                     for name, value in zip(self.outputs, results, strict=True)])
        return responses
