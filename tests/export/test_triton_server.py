"""The repository served by a real Triton server: what `vpi export --triton` writes loads exactly
as written (--disable-auto-complete-config), examples/triton_client.py gets the Segmenter's answer
through it, concurrent requests are merged by dynamic batching and each still gets its own answer,
and a malformed request gets an error that says what is wrong, never NaN.

The server is the tritonserver of the nvidia-pytriton wheel (Python backend only) that
.ci/triton-server-setup prepares; the ONNX models run in a Python stand-in for the onnxruntime
backend (triton_backends/onnxruntime/model.py), so the configs, the ensemble's wiring, the request
validator and Triton's own shape checks are real, the onnxruntime backend's own checks are not.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from runtime.helpers import blob_pair

from vpi.cli import main
from vpi.export.triton import MODELS
from vpi.runtime import Segmenter, TorchRunner, find_support_pairs, load_support
from vpi.runtime.processing import load_image

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SETUP = ".ci/triton-server-setup"
STARTUP_S = 90.0  # four models, each a Python stub process, on two shared cores
REQUEST_S = 30.0  # every call to the server


@pytest.fixture(scope="module")
def launcher() -> Path:
    """DIR/tritonserver of the setup that VPI_TRITONSERVER names; the module skips without one."""
    root = os.environ.get("VPI_TRITONSERVER")
    if not root:
        pytest.skip(f"tritonserver not set up: run {SETUP} and export VPI_TRITONSERVER (docs/serving.md)")
    path = Path(root) / "tritonserver"
    if not os.access(path, os.X_OK):
        pytest.fail(f"VPI_TRITONSERVER is {root!r}, but it holds no tritonserver: run {SETUP} {root}")
    return path


@pytest.fixture(scope="module")
def served_repo(launcher: Path, tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository exactly as `vpi export CHECKPOINT --triton REPO` writes it."""
    repo = tmp_path_factory.mktemp("served") / "model_repository"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", ["vpi", "export", str(tiny_checkpoint), "--triton", str(repo)])
        with pytest.raises(SystemExit) as info:
            main()
    assert info.value.code == 0
    return repo


@pytest.fixture(scope="module")
def server(launcher: Path, served_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A tritonserver serving ``served_repo`` on a free 127.0.0.1 port; its gRPC address.

    It is stopped by its PID when the module ends, whatever happened.
    """
    port = _free_port()
    log = tmp_path_factory.mktemp("tritonserver") / "server.log"
    command = [str(launcher), f"--model-repository={served_repo}", "--disable-auto-complete-config",
               "--allow-http=false", f"--grpc-port={port}", "--exit-timeout-secs=5"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"127.0.0.1:{port}"
        _wait_until_ready(process, url, log)
        yield url
    finally:
        _stop(process)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_ready(process: subprocess.Popen, url: str, log: Path) -> None:
    """Ready means every model loaded (Triton's strict readiness); fail with the log's end if not."""
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    client = grpcclient.InferenceServerClient(url)
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"tritonserver exited with {process.returncode}:\n{_tail(log)}")
        try:
            if client.is_server_ready(client_timeout=2.0):
                return
        except InferenceServerException:
            pass
        time.sleep(0.2)
    pytest.fail(f"tritonserver was not ready after {STARTUP_S:.0f} s:\n{_tail(log)}")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM lets Triton unload its models and end their stubs; SIGKILL its group if it hangs."""
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # its own session: the server and its stubs only
        process.wait()


def _tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def _infer(url: str, arrays: dict[str, np.ndarray], client) -> dict[str, np.ndarray]:
    """One raw request to the ensemble, bounded by REQUEST_S."""
    import tritonclient.grpc as grpcclient

    result = grpcclient.InferenceServerClient(url).infer(
        "vpi", client.infer_inputs(arrays), client_timeout=REQUEST_S,
        outputs=[grpcclient.InferRequestedOutput(name) for name in client.OUTPUTS])
    return {name: result.as_numpy(name) for name in client.OUTPUTS}


def test_every_model_loads_as_written(server):
    import tritonclient.grpc as grpcclient

    index = grpcclient.InferenceServerClient(server).get_model_repository_index(
        as_json=True, client_timeout=REQUEST_S)
    assert sorted((m["name"], m["state"]) for m in index["models"]) == sorted(
        (name, "READY") for name in MODELS)


def test_client_gets_the_segmenter_answer(server, tiny_checkpoint, client):
    segmenter = Segmenter(TorchRunner.from_checkpoint(tiny_checkpoint, device="cpu"))
    support, query_path = EXAMPLES / "support-star5", EXAMPLES / "queries" / "query1.png"
    prior = segmenter.encode_support(*load_support(find_support_pairs(support)))
    query = load_image(query_path)
    for samples, seed in ((6, 3), (1, 0), (16, 5)):
        expected = segmenter.segment(query, prior, samples=samples, seed=seed)
        probability, uncertainty = client.segment(server, "vpi", support, query_path, samples, seed,
                                                  timeout=REQUEST_S)
        assert probability.shape == uncertainty.shape == query.shape[:2]
        error = np.abs(probability - expected.probability).max()
        assert error < 1e-4 and np.abs(uncertainty - expected.uncertainty).max() < 1e-4
        if samples == 1:
            assert not uncertainty.any()
            continue
        # The random tiny decoder barely reacts to z: the answer must also be far closer to this
        # seed's than another seed's is, or 1e-4 would not tell the noise apart.
        other = segmenter.segment(query, prior, samples=samples, seed=seed + 1).probability
        assert error < np.abs(other - expected.probability).max() / 20


def test_the_ends_of_each_range_are_served(server, tiny_checkpoint, client):
    segmenter = Segmenter(TorchRunner.from_checkpoint(tiny_checkpoint, device="cpu"))
    query = blob_pair(7, 64, 64)[0]
    for shots, samples in ((1, 1), (10, 16)):
        images, masks = zip(*(blob_pair(seed) for seed in range(shots)), strict=True)
        arrays = client.request_arrays(images, masks, query, input_size=64, latent_dim=16,
                                       samples=samples, seed=1)
        out = _infer(server, arrays, client)
        expected = segmenter.segment(query, segmenter.encode_support(images, masks), samples=samples, seed=1)
        assert np.abs(out["probability"][0] - expected.probability).max() < 1e-4


def _valid(client) -> dict[str, np.ndarray]:
    images, masks = zip(*(blob_pair(seed) for seed in range(3)), strict=True)
    return client.request_arrays(images, masks, blob_pair(5)[0], input_size=64, latent_dim=16,
                                 samples=6, seed=0)


def test_concurrent_requests_are_batched_and_each_gets_its_own_answer(server, tiny_checkpoint, client):
    """Eight users at once, each with their own support, query and seed: Triton merges their
    requests into batches, and every answer is still the Segmenter's for that user alone."""
    import tritonclient.grpc as grpcclient

    segmenter = Segmenter(TorchRunner.from_checkpoint(tiny_checkpoint, device="cpu"))
    requests, expected = [], []
    for user in range(8):
        images, masks = zip(*(blob_pair(100 + 3 * user + seed) for seed in range(2)), strict=True)
        query = blob_pair(200 + user, 64, 64)[0]
        requests.append(client.request_arrays(images, masks, query, input_size=64, latent_dim=16,
                                              samples=4, seed=user))
        expected.append(segmenter.segment(query, segmenter.encode_support(images, masks),
                                          samples=4, seed=user).probability)
    stats = grpcclient.InferenceServerClient(server)
    before = _counts(stats)
    with ThreadPoolExecutor(len(requests)) as pool:
        answers = list(pool.map(lambda arrays: _infer(server, arrays, client), requests))
    for answer, probability in zip(answers, expected, strict=True):
        assert answer["probability"].shape == (1, 64, 64)
        assert np.abs(answer["probability"][0] - probability).max() < 1e-4
    assert np.abs(expected[0] - expected[1]).max() > 1e-3  # the users' answers differ
    deadline = time.monotonic() + REQUEST_S
    while True:  # Triton counts a request a moment after it has answered it
        after = _counts(stats)
        ran = {model: (after[model][0] - before[model][0], after[model][1] - before[model][1])
               for model in after}  # (requests, executions) of this test
        if all(inferences == len(requests) for inferences, _ in ran.values()):
            break
        assert time.monotonic() < deadline, f"the statistics never counted every request: {ran}"
        time.sleep(0.1)
    assert any(executions < len(requests) for _, executions in ran.values()), (
        f"no graph merged requests into a batch: {ran}")


def _counts(client) -> dict[str, tuple[int, int]]:
    """Per graph, the requests it answered and the executions (batches) it took for them."""
    stats = client.get_inference_statistics(as_json=True, client_timeout=REQUEST_S)["model_stats"]
    return {m["name"]: (int(m.get("inference_count", 0)), int(m.get("execution_count", 0)))
            for m in stats if m["name"] in ("prior_encoder", "segmentation_decoder")}


MALFORMED = [
    ("K = 0", {"support_images": (1, 0, 3, 64, 64), "support_masks": (1, 0, 1, 64, 64)},
     "'support_images' has K = 0 (support pairs, axis 1), but K must be 1 to 10"),
    ("K = 11", {"support_images": (1, 11, 3, 64, 64), "support_masks": (1, 11, 1, 64, 64)},
     "'support_images' has K = 11 (support pairs, axis 1), but K must be 1 to 10"),
    ("K differs", {"support_masks": (1, 2, 1, 64, 64)},
     "'support_masks' has K = 2 (support pairs, axis 1), but 'support_images' has K = 3: they must agree"),
    ("L = 0", {"noise": (1, 0, 16)}, "'noise' has L = 0 (samples of z, axis 1), but L must be 1 to 16"),
    ("L = 17", {"noise": (1, 17, 16)},
     "'noise' has L = 17 (samples of z, axis 1), but L must be 1 to 16"),
    ("query size", {"query_image": (1, 3, 32, 32)},
     "unexpected shape for input 'query_image' for model 'vpi'. Expected [-1,3,64,64], got [1,3,32,32]"),
    ("support size", {"support_images": (1, 3, 3, 48, 64)},
     "unexpected shape for input 'support_images' for model 'vpi'. Expected [-1,-1,3,64,64], "
     "got [1,3,3,48,64]"),
    ("latent size", {"noise": (1, 6, 8)},
     "unexpected shape for input 'noise' for model 'vpi'. Expected [-1,-1,16], got [1,6,8]"),
    ("no batch axis", {"query_image": (3, 64, 64)},
     "input 'query_image' batch size does not match other inputs for 'vpi'"),
    ("batch over 16", {name: (17, *shape[1:]) for name, shape in (
        ("support_images", (1, 3, 3, 64, 64)), ("support_masks", (1, 3, 1, 64, 64)),
        ("query_image", (1, 3, 64, 64)), ("noise", (1, 6, 16)))},
     "inference request batch-size must be <= 16 for 'vpi'"),
]


@pytest.mark.parametrize(("case", "shapes", "message"), MALFORMED, ids=[c[0] for c in MALFORMED])
def test_a_malformed_request_is_refused_with_what_is_wrong(server, client, case, shapes, message):
    from tritonclient.utils import InferenceServerException

    arrays = {**_valid(client), **{name: np.full(shape, 0.5, np.float32) for name, shape in shapes.items()}}
    with pytest.raises(InferenceServerException) as info:
        _infer(server, arrays, client)
    assert message in info.value.message()
    assert info.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert np.isfinite(_infer(server, _valid(client), client)["probability"]).all()  # still serving
