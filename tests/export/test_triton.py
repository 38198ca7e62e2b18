"""The Triton model repository: configs that parse against Triton's schema and match their graphs,
an ensemble whose maps connect through the request validator, the runtime's answer for the same
noise, identical bytes on a second write, and bad input refused in one line with nothing overwritten.
(test_triton_server.py serves the repository with a real Triton server.)
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnxruntime as ort
import pytest
import torch
from google.protobuf import text_format
from PIL import Image
from runtime.helpers import blob_pair, run_cli, snapshot, tensorrt_missing
from tritonclient.grpc import model_config_pb2

from vpi.checkpoint import save_checkpoint
from vpi.config import get_preset
from vpi.errors import VpiError
from vpi.export import triton, write_triton_repository
from vpi.export.tensorrt import optimization_profiles
from vpi.export.triton_check import check_repository
from vpi.export.triton_graphs import triton_profiles, triton_signatures
from vpi.export.triton_validator import shape_problem
from vpi.graphs import GraphSpec
from vpi.model import VPIModel
from vpi.runtime import Segmenter, TorchRunner, find_support_pairs, load_support
from vpi.runtime.processing import load_image

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def repo(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_triton_repository(tiny_checkpoint, tmp_path_factory.mktemp("triton") / "model_repository")


def validator_axes(config: model_config_pb2.ModelConfig) -> dict:
    """The request validator's axes, read from its config as its model.py reads them."""
    return {name: json.loads(value.string_value) for name, value in config.parameters.items()}


def run_ensemble(repo: Path, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What Triton does with the ensemble: the validator's check (the request must pass it), then
    each graph's ONNX model, fed and read through the maps."""
    configs = check_repository(repo)
    ensemble = configs["vpi"]
    tensors = dict(inputs)
    for step in ensemble.ensemble_scheduling.step:
        feeds = {key: tensors[value] for key, value in step.input_map.items()}
        if step.model_name == triton.VALIDATOR:
            shapes = {name: array.shape for name, array in feeds.items()}
            assert shape_problem(shapes, validator_axes(configs[step.model_name])) is None
            results = feeds
        else:
            session = ort.InferenceSession(str(repo / step.model_name / "1" / "model.onnx"),
                                           providers=["CPUExecutionProvider"])
            outputs = [o.name for o in session.get_outputs()]
            results = dict(zip(outputs, session.run(None, feeds), strict=True))
        tensors.update({value: results[key] for key, value in step.output_map.items()})
    return {t.name: tensors[t.name] for t in ensemble.output}


def test_configs_parse_and_name_the_graphs_tensors(repo):
    configs = check_repository(repo)  # schema, tensors vs ONNX, ensemble maps
    assert sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*")) == [
        "prior_encoder", "prior_encoder/1", "prior_encoder/1/model.onnx", "prior_encoder/config.pbtxt",
        "request_validator", "request_validator/1", "request_validator/1/model.py",
        "request_validator/config.pbtxt",
        "segmentation_decoder", "segmentation_decoder/1", "segmentation_decoder/1/model.onnx",
        "segmentation_decoder/config.pbtxt", "vpi", "vpi/1", "vpi/config.pbtxt",
    ]
    for name in ("prior_encoder", "segmentation_decoder", "request_validator"):
        config = configs[name]
        assert config.max_batch_size == 16
        assert config.dynamic_batching.max_queue_delay_microseconds == triton.QUEUE_DELAY_US
        assert "dynamic_batching merges concurrent requests" in (repo / name / "config.pbtxt").read_text()
    for name in ("prior_encoder", "segmentation_decoder"):
        config = configs[name]
        assert config.platform == "onnxruntime_onnx"
        assert [(g.count, g.kind) for g in config.instance_group] == [
            (1, model_config_pb2.ModelInstanceGroup.KIND_AUTO)]
    # Triton's dims leave out the batch axis that every graph tensor leads with.
    assert {t.name: list(t.dims) for t in configs["segmentation_decoder"].input} == {
        "query_image": [3, 64, 64], "prior_mean": [16], "prior_variance": [16], "noise": [-1, 16]}
    assert {t.name: list(t.dims) for t in configs["segmentation_decoder"].output} == {
        "probability": [64, 64], "variance": [64, 64], "entropy": [64, 64],
        "mutual_information": [64, 64]}
    assert {t.name: list(t.dims) for t in configs["prior_encoder"].input} == {
        "support_images": [-1, 3, 64, 64], "support_masks": [-1, 1, 64, 64]}
    assert {t.name: list(t.dims) for t in configs["prior_encoder"].output} == {
        "prior_mean": [16], "prior_variance": [16]}
    validator = configs["request_validator"]
    assert validator.backend == "python"
    assert [(g.count, g.kind) for g in validator.instance_group] == [
        (1, model_config_pb2.ModelInstanceGroup.KIND_CPU)]
    source = triton.VALIDATOR_SOURCE.read_bytes()
    assert (repo / "request_validator" / "1" / "model.py").read_bytes() == source
    checked = {"support_images": [-1, 3, 64, 64], "support_masks": [-1, 1, 64, 64], "noise": [-1, 16]}
    assert {t.name: list(t.dims) for t in validator.input} == checked
    assert {t.name: list(t.dims) for t in validator.output} == checked
    assert validator_axes(validator) == {  # axis indices in the arrays, batch axis included
        "K": {"min": 1, "max": 10, "what": "support pairs",
              "tensors": {"support_images": 1, "support_masks": 1}},
        "L": {"min": 1, "max": 16, "what": "samples of z", "tensors": {"noise": 1}}}
    ensemble = configs["vpi"]
    assert ensemble.platform == "ensemble" and ensemble.max_batch_size == 16
    assert [t.name for t in ensemble.input] == ["support_images", "support_masks", "query_image", "noise"]
    assert [t.name for t in ensemble.output] == ["probability", "variance", "entropy",
                                                 "mutual_information"]
    steps = ensemble.ensemble_scheduling.step
    assert [s.model_name for s in steps] == ["request_validator", "prior_encoder", "segmentation_decoder"]
    assert dict(steps[0].output_map) == {name: f"checked_{name}" for name in checked}
    assert dict(steps[1].input_map) == {"support_images": "checked_support_images",
                                        "support_masks": "checked_support_masks"}
    assert dict(steps[2].input_map)["noise"] == "checked_noise"


BROKEN = [
    ("segmentation_decoder", 'name: "noise"', 'name: "noize"',
     "does not declare input 'noise' of the ONNX graph"),
    ("segmentation_decoder", "dims: [ -1, 16 ]", "dims: [ 4, 16 ]",
     r"input 'noise' is TYPE_FP32 \[4, 16\], but the ONNX graph has TYPE_FP32 \[-1, 16\]"),
    ("segmentation_decoder", "max_batch_size: 16", "max_batch_size: 0",
     r"input 'query_image' is TYPE_FP32 \[3, 64, 64\], but the ONNX graph has TYPE_FP32 "
     r"\[-1, 3, 64, 64\]"),
    ("prior_encoder", "TYPE_FP32", "TYPE_FP16", "input 'support_images' is TYPE_FP16"),
    ("prior_encoder", "max_batch_size: 16", "max_batch_size: 16\nbatching: true",
     "is not a valid Triton model config"),
    ("request_validator", "max_batch_size: 16", "max_batch_size: 8",
     "has max_batch_size 16, but its step 'request_validator' only 8: Triton refuses that"),
    ("prior_encoder", 'name: "prior_encoder"', 'name: "prior"', "names the model 'prior'"),
    ("vpi", '      input_map { key: "noise" value: "checked_noise" }\n', "",
     "step 'segmentation_decoder' leaves the model's input 'noise' unmapped"),
    ("vpi", 'input_map { key: "noise" value: "checked_noise" }', 'input_map { key: "noise" value: "noise" }',
     "step 'segmentation_decoder' reads the request's 'noise' unchecked .* from the 'request_validator'"),
    ("vpi", 'key: "prior_mean" value: "prior_mean" }\n      input_map', 'key: "prior_mean" value: "mean" }\n'
     "      input_map", "reads 'prior_mean' from 'mean', which no ensemble input or earlier step"),
    ("vpi", 'key: "query_image" value: "query_image"', 'key: "query_image" value: "checked_support_images"',
     r"input 'query_image' is TYPE_FP32 \[-1, 3, 64, 64\], but model 'segmentation_decoder' has"),
    ("vpi", "max_batch_size: 16", "max_batch_size: 32",
     "has max_batch_size 32, but its step 'request_validator' only 16"),
    ("vpi", 'output_map { key: "probability" value: "probability" }',
     'output_map { key: "probability" value: "p" }', "ensemble output 'probability' is produced by no step"),
    ("vpi", 'platform: "ensemble"', 'platform: "pytorch_libtorch"',
     "has platform 'pytorch_libtorch'; the 'vpi' model is an ensemble"),
    ("vpi", "input [\n", 'input [\n  {\n    name: "extra"\n    data_type: TYPE_FP32\n    dims: [ 1 ]\n  },\n',
     "ensemble input 'extra' is consumed by no step"),
]


@pytest.mark.parametrize(("model", "old", "new", "message"), BROKEN)
def test_checks_catch_a_broken_repository(repo, tmp_path, model, old, new, message):
    broken = shutil.copytree(repo, tmp_path / "broken")
    path = broken / model / "config.pbtxt"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(VpiError, match=message):
        check_repository(broken)


SHAPES = {"support_images": (2, 3, 3, 64, 64), "support_masks": (2, 3, 1, 64, 64), "noise": (2, 6, 16)}
REFUSED_SHAPES = [
    ({"support_images": (2, 0, 3, 64, 64), "support_masks": (2, 0, 1, 64, 64)},
     "'support_images' has K = 0 (support pairs, axis 1), but K must be 1 to 10"),
    ({"support_images": (2, 11, 3, 64, 64), "support_masks": (2, 11, 1, 64, 64)}, "has K = 11 "),
    ({"support_masks": (2, 2, 1, 64, 64)},
     "'support_masks' has K = 2 (support pairs, axis 1), but 'support_images' has K = 3: they must agree"),
    ({"noise": (2, 0, 16)}, "'noise' has L = 0 (samples of z, axis 1), but L must be 1 to 16"),
    ({"noise": (2, 17, 16)}, "'noise' has L = 17 "),
]


@pytest.mark.parametrize(("changes", "message"), REFUSED_SHAPES)
def test_validator_refuses_a_k_or_l_the_graphs_do_not_take(repo, changes, message):
    axes = validator_axes(check_repository(repo)["request_validator"])
    assert message in shape_problem({**SHAPES, **changes}, axes)


def test_validator_passes_the_ends_of_each_range(repo):
    axes = validator_axes(check_repository(repo)["request_validator"])
    for k, samples in ((1, 1), (10, 16)):
        shapes = {"support_images": (1, k, 3, 64, 64), "support_masks": (1, k, 1, 64, 64),
                  "noise": (1, samples, 16)}
        assert shape_problem(shapes, axes) is None


def test_ensemble_gives_the_runtime_answer_for_the_same_noise(tiny_checkpoint, repo, client):
    segmenter = Segmenter(TorchRunner.from_checkpoint(tiny_checkpoint, device="cpu"))
    images, masks = zip(*(blob_pair(seed) for seed in range(3)), strict=True)
    query = blob_pair(7, 50, 70)[0]
    prior = segmenter.encode_support(images, masks)
    for samples, seed in ((6, 3), (1, 0)):
        expected = segmenter.segment(query, prior, samples=samples, seed=seed)
        arrays = client.request_arrays(images, masks, query, input_size=64, latent_dim=16,
                                       samples=samples, seed=seed)
        noise = torch.from_numpy(arrays["noise"][0])  # the client's draw is the runtime's
        assert torch.equal(prior.mean + noise * prior.variance.sqrt(),
                           segmenter.prototypes(prior, samples, seed))
        out = run_ensemble(repo, arrays)
        probability, uncertainty = client.maps_at(query.shape[:2], out["probability"], out["variance"])
        entropy = client.maps_at(query.shape[:2], out["entropy"], out["mutual_information"])
        assert np.abs(entropy[0] - expected.entropy).max() < 1e-4
        assert np.abs(entropy[1] - expected.mutual_information).max() < 1e-4
        assert probability.shape == (50, 70)
        error = np.abs(probability - expected.probability).max()
        assert error < 1e-4 and np.abs(uncertainty - expected.uncertainty).max() < 1e-4
        if samples == 1:
            assert not uncertainty.any() and not expected.uncertainty.any()
            continue
        # The random tiny decoder barely reacts to z, so 1e-4 alone would not tell seeds apart:
        # the answer must also be far closer to this seed's than another seed's is.
        other = segmenter.segment(query, prior, samples=samples, seed=seed + 1).probability
        assert error < np.abs(other - expected.probability).max() / 20
        assert np.abs(uncertainty - expected.uncertainty).max() < 1e-3 * expected.uncertainty.max()


def test_requests_merged_into_one_batch_each_get_their_own_answer(tiny_checkpoint, repo, client):
    """What dynamic batching does: three requests of different supports, queries and seeds,
    concatenated along the batch axis and run as one; each item is its own request's answer."""
    segmenter = Segmenter(TorchRunner.from_checkpoint(tiny_checkpoint, device="cpu"))
    requests, expected = [], []
    for item in range(3):
        images, masks = zip(*(blob_pair(10 * item + seed) for seed in range(2)), strict=True)
        query = blob_pair(50 + item, 64, 64)[0]
        requests.append(client.request_arrays(images, masks, query, input_size=64, latent_dim=16,
                                              samples=5, seed=item))
        prior = segmenter.encode_support(images, masks)
        expected.append(segmenter.segment(query, prior, samples=5, seed=item).probability)
    merged = run_ensemble(repo, {name: np.concatenate([r[name] for r in requests])
                                 for name in requests[0]})
    assert merged["probability"].shape == (3, 64, 64)
    for item in range(3):
        assert np.abs(merged["probability"][item] - expected[item]).max() < 1e-4
    assert np.abs(expected[0] - expected[1]).max() > 1e-3  # the requests' answers differ


def test_cli_writes_the_same_bytes_and_force_keeps_other_models(
        tiny_checkpoint, repo, tmp_path, monkeypatch, capsys):
    target = tmp_path / "served"
    (target / "other_model" / "1").mkdir(parents=True)
    (target / "other_model" / "config.pbtxt").write_text('name: "other_model"\n')
    (target / "vpi").mkdir()
    (target / "vpi" / "stale.txt").write_text("from an earlier version")
    before = tree(target)
    code, _, err = run_cli(monkeypatch, capsys, "export", tiny_checkpoint, "--triton", target)
    assert code == 2 and err.count("\n") == 1, err
    assert "exists and is not empty" in err and "--force" in err
    assert tree(target) == before
    code, out, err = run_cli(monkeypatch, capsys, "export", tiny_checkpoint, "--triton", target, "--force")
    assert code == 0, err
    assert "tritonserver --model-repository=" in out
    after = snapshot(target)
    assert after.pop("other_model/config.pbtxt") == b'name: "other_model"\n'
    assert after == snapshot(repo)  # a second, independent write: byte for byte the same
    assert (target / "vpi" / "1").is_dir() and (target / "other_model" / "1").is_dir()
    assert not list(tmp_path.glob(".*staging*"))


def _deterministic(path: Path) -> Path:
    config = get_preset("tiny")
    config = dataclasses.replace(config, model=dataclasses.replace(config.model, probabilistic=False))
    return save_checkpoint(path, VPIModel(config.model), config, step=0)


def _without_prior_net(checkpoint: Path, path: Path) -> Path:
    state = torch.load(checkpoint, weights_only=False)
    state["model"] = {k: v for k, v in state["model"].items() if not k.startswith("prior_net.")}
    torch.save(state, path)
    return path


REFUSED = [
    ("not empty", [], "exists and is not empty: choose a new path, or pass --force"),
    ("a file", [], "exists and is not a folder"),
    ("deterministic twin", [], "is the deterministic twin .* no learned variance"),
    ("no prior net", [], "partial.pt' lacks weights for its model: prior_net.mean.weight"),
    ("not a checkpoint", [], "is not a vpi checkpoint"),
    ("both outputs", ["--out", "export"], "--out and --triton write different things"),
    ("unknown engine", ["--engine", "tflite"], "engine is 'tflite'; choose one of: onnx, trt"),
    ("onnx precision", ["--precision", "fp16"], "precision 'fp16' applies to --engine trt"),
    ("trt without TensorRT", ["--engine", "trt"], "TensorRT is not installed: pip install"),
]


@pytest.mark.parametrize(("case", "extra", "message"), REFUSED)
def test_bad_input_is_one_line_and_writes_nothing(
        tiny_checkpoint, tmp_path, monkeypatch, capsys, case, extra, message):
    if "TensorRT" in case and tensorrt_missing() is None:
        pytest.skip("TensorRT is installed here")
    source, target = tiny_checkpoint, tmp_path / "repo"
    if case == "not empty":
        target.mkdir()
        (target / "notes.txt").write_text("mine")
    elif case == "a file":
        target.write_text("a file")
    elif case == "deterministic twin":
        source = _deterministic(tmp_path / "twin.pt")
    elif case == "no prior net":
        source = _without_prior_net(tiny_checkpoint, tmp_path / "partial.pt")
    elif case == "not a checkpoint":
        source = tmp_path / "junk.pt"
        source.write_text("no")
    before = tree(tmp_path)
    code, _, err = run_cli(monkeypatch, capsys, "export", source, "--triton", target, *extra)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert re.search(message, err), err
    assert tree(tmp_path) == before


def tree(folder: Path) -> tuple[list[str], dict[str, bytes]]:
    """Every path under ``folder`` (empty folders too) and every file's bytes."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")), snapshot(folder)


def test_a_failed_write_leaves_the_earlier_repository(tiny_checkpoint, repo, tmp_path, monkeypatch):
    target = shutil.copytree(repo, tmp_path / "served")
    before = tree(target)

    def fail(model, spec, paths, *, opset=None):
        paths["prior_encoder"].parent.mkdir(parents=True)
        paths["prior_encoder"].write_bytes(b"half")
        raise VpiError("the exporter failed")

    monkeypatch.setattr(triton, "export_triton_graphs", fail)
    with pytest.raises(VpiError, match="the exporter failed"):
        write_triton_repository(tiny_checkpoint, target, force=True)
    assert tree(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["served"]  # no staging folder left


def test_tensorrt_configs_and_profiles():
    spec = GraphSpec(64, 16)
    signatures = triton_signatures(spec)
    text = triton.model_config_text("segmentation_decoder", "tensorrt_plan",
                                    signatures["segmentation_decoder"], spec.max_batch, gpu=True)
    config = text_format.Parse(text, model_config_pb2.ModelConfig())
    assert config.platform == "tensorrt_plan" and config.max_batch_size == 16
    assert [(g.count, g.kind) for g in config.instance_group] == [
        (1, model_config_pb2.ModelInstanceGroup.KIND_GPU)]
    profiles = triton_profiles(spec)
    export = optimization_profiles(spec)
    assert profiles["prior_encoder"] == export["prior_encoder"]
    decoder = profiles["segmentation_decoder"]
    assert decoder["noise"] == export["segmentation_decoder"]["prototypes"] == [
        [1, 1, 16], [4, 6, 16], [16, 16, 16]]
    assert decoder["prior_mean"] == decoder["prior_variance"] == [[1, 16], [4, 16], [16, 16]]
    assert decoder["query_image"] == export["segmentation_decoder"]["query_image"]
    assert set(decoder) == set(signatures["segmentation_decoder"]["inputs"])


def test_client_builds_the_ensemble_request(repo, client):
    images, masks = zip(*(blob_pair(seed) for seed in range(2)), strict=True)
    arrays = client.request_arrays(images, masks, blob_pair(5)[0], input_size=64, latent_dim=16,
                                   samples=4, seed=1)
    inputs = client.infer_inputs(arrays)
    assert [(i.name(), i.shape(), i.datatype()) for i in inputs] == [
        ("support_images", [1, 2, 3, 64, 64], "FP32"), ("support_masks", [1, 2, 1, 64, 64], "FP32"),
        ("query_image", [1, 3, 64, 64], "FP32"), ("noise", [1, 4, 16], "FP32")]
    ensemble = check_repository(repo)["vpi"]
    for declared in ensemble.input:  # a batch of one, then what the ensemble declares
        batch, *shape = arrays[declared.name].shape
        assert batch == 1 and len(shape) == len(declared.dims)
        assert all(d in (-1, n) for d, n in zip(declared.dims, shape, strict=True))
    metadata = {"inputs": [{"name": t.name, "datatype": "FP32", "shape": ["-1", *map(str, t.dims)]}
                           for t in ensemble.input]}  # as the gRPC client's as_json gives it
    assert client.model_sizes(metadata) == (64, 16)
    with pytest.raises(VpiError, match="samples \\(L\\) is 17"):
        client.request_arrays(images, masks, images[0], input_size=64, latent_dim=16, samples=17)
    with pytest.raises(VpiError, match="the support set has 11 pairs"):
        client.request_arrays((images[0],) * 11, (masks[0],) * 11, images[0], input_size=64,
                              latent_dim=16)


def test_client_end_to_end_with_a_stand_in_server(tiny_checkpoint, repo, client, monkeypatch, tmp_path,
                                                 capsys):
    """main() as a user runs it, with Triton replaced by the ensemble run in ONNX Runtime."""
    import tritonclient.grpc

    ensemble = check_repository(repo)["vpi"]

    class StandIn:
        def __init__(self, url: str) -> None:
            assert url == "localhost:8001"

        def get_model_metadata(self, model: str, as_json: bool, client_timeout: float) -> dict:
            assert model == "vpi" and as_json and client_timeout == 60.0
            return {"inputs": [{"name": t.name, "datatype": "FP32", "shape": ["-1", *map(str, t.dims)]}
                               for t in ensemble.input]}

        def infer(self, model: str, inputs: list, outputs: list, client_timeout: float) -> SimpleNamespace:
            assert [o.name() for o in outputs] == ["probability", "variance"] and client_timeout == 60.0
            arrays = {i.name(): np.frombuffer(i._get_content(), np.float32).reshape(i.shape())
                      for i in inputs}  # what the server would decode
            return SimpleNamespace(as_numpy=run_ensemble(repo, arrays).__getitem__)

    monkeypatch.setattr(tritonclient.grpc, "InferenceServerClient", StandIn)
    segmenter = Segmenter(TorchRunner.from_checkpoint(tiny_checkpoint, device="cpu"))
    prior = segmenter.encode_support(*load_support(find_support_pairs(EXAMPLES / "support-star5")))
    query = load_image(EXAMPLES / "queries" / "query1.png")
    expected = segmenter.segment(query, prior, samples=4, seed=3).probability
    values = np.unique(expected)  # a threshold in a gap, so 1e-7 cannot flip a pixel
    middle = values[len(values) // 10: 9 * len(values) // 10]
    gap = int(np.diff(middle).argmax())
    assert middle[gap + 1] - middle[gap] > 2e-6
    threshold = float((middle[gap] + middle[gap + 1]) / 2)
    out = tmp_path / "mask.png"
    code = client.main([str(EXAMPLES / "support-star5"), str(EXAMPLES / "queries" / "query1.png"),
                        "-L", "4", "--seed", "3", "--threshold", str(threshold), "--out", str(out)])
    assert code == 0 and f"{out}: foreground" in capsys.readouterr().out
    mask = np.asarray(Image.open(out)) > 0
    assert 0 < mask.mean() < 1 and np.array_equal(mask, expected > threshold)
    (tmp_path / "empty").mkdir()
    assert client.main([str(tmp_path / "empty"), str(EXAMPLES / "queries" / "query1.png")]) == 2
    assert capsys.readouterr().err.startswith("error: support folder")


def test_client_help(client, capsys):
    with pytest.raises(SystemExit) as info:
        client.main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "usage" in out and "--seed" in out and "--url" in out
