"""``request_validator/1/model.py``: the ``vpi`` ensemble's first step, run by Triton's Python backend.

Triton checks every fixed dim of a request against the config, but a -1 axis takes any size, 0
included: the ONNX graphs then return NaN for K = 0 and run K or L beyond what was exported and
checked, and no one reports an error. This model refuses such a request with a message that names
the tensor, the size and the range, and otherwise passes its tensors through unchanged, so the
graphs' steps only ever see checked tensors. Dynamic batching hands it several requests at once;
each is checked and answered on its own, so one malformed request fails alone.

It is copied into the repository as it is, not imported by vpi: it may use only the standard
library and what Triton's Python backend provides (``triton_python_backend_utils``, numpy).
Each config parameter names an axis: ``{"min": 1, "max": 10, "what": "support pairs",
"tensors": {"support_images": 1, "support_masks": 1}}`` says that axis 1 of both tensors is K
(axis 0 is the batch axis, which Triton itself checks).
"""

from __future__ import annotations

import json
from typing import Any

Axes = dict[str, dict[str, Any]]  # axis name -> min, max, what, tensors {name: axis index}


def shape_problem(shapes: dict[str, tuple[int, ...]], axes: Axes) -> str | None:
    """What is wrong with a request's ``shapes`` (a tensor's name -> its shape), or None."""
    for name, axis in axes.items():
        seen: tuple[str, int] | None = None
        for tensor, index in axis["tensors"].items():
            size = shapes[tensor][index]
            what = f"{name} = {size} ({axis['what']}, axis {index})"
            if not axis["min"] <= size <= axis["max"]:
                return f"{tensor!r} has {what}, but {name} must be {axis['min']} to {axis['max']}"
            if seen is not None and size != seen[1]:
                return f"{tensor!r} has {what}, but {seen[0]!r} has {name} = {seen[1]}: they must agree"
            seen = (tensor, size)
    return None


class TritonPythonModel:
    """Refuses a request whose named axes are out of range or disagree; passes the rest through."""

    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        self.names = [tensor["name"] for tensor in config["input"]]
        self.axes = {name: json.loads(value["string_value"])
                     for name, value in config["parameters"].items()}

    def execute(self, requests: list[Any]) -> list[Any]:
        import triton_python_backend_utils as pb_utils  # only inside Triton's Python backend

        responses = []
        for request in requests:
            arrays = {name: pb_utils.get_input_tensor_by_name(request, name).as_numpy()
                      for name in self.names}
            problem = shape_problem({name: array.shape for name, array in arrays.items()}, self.axes)
            if problem is None:
                responses.append(pb_utils.InferenceResponse(
                    [pb_utils.Tensor(name, array) for name, array in arrays.items()]))
            else:
                error = pb_utils.TritonError(problem, pb_utils.TritonError.INVALID_ARG)
                responses.append(pb_utils.InferenceResponse(error=error))
        return responses
