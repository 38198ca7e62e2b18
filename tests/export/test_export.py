"""export_model: checked graphs, the manifest, parity as a gate, and folders it must not clobber."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import onnx
import pytest
import torch
from runtime.helpers import copy_export, matching_checkpoint, snapshot, tensorrt_missing

from vpi import __version__
from vpi.checkpoint import file_sha256, save_checkpoint
from vpi.config import config_to_dict
from vpi.errors import BackendError, ConfigError, VpiError
from vpi.export import export_model, pipeline
from vpi.export.engines import EXPORT_ENGINES
from vpi.export.onnx_export import check_graph, graph_signatures
from vpi.graphs import GraphSpec
from vpi.model import VPIModel
from vpi.runtime.registry import BACKENDS, ENGINES


def test_manifest_records_what_was_exported(exported, tiny_config):
    checkpoint, folder = exported
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["vpi_version"] == __version__
    assert manifest["torch_version"] == torch.__version__ and manifest["onnx_version"]
    assert manifest["input_size"] == [64, 64] and manifest["latent_dim"] == 16
    assert manifest["shots"] == [1, 10] and manifest["samples"] == [1, 16]
    assert manifest["batch"] == [1, 16] and manifest["format_version"] == 3
    assert isinstance(manifest["opset"], int) and manifest["opset"] >= 18
    assert manifest["checkpoint"]["sha256"] == file_sha256(checkpoint)
    assert manifest["config"] == json.loads(json.dumps(config_to_dict(tiny_config)))
    report = manifest["parity"]["onnxruntime"]
    assert report["tolerance"] == 1e-4 and max(report["max_error"].values()) <= 1e-4
    covered = {(c["graph"], c["inputs"], c["B"], c.get("K", c.get("L"))) for c in report["cases"]}
    assert covered == {
        ("prior_encoder", "random", 1, 1), ("prior_encoder", "random", 1, 10),
        ("prior_encoder", "real", 1, 1), ("prior_encoder", "real", 1, 3),
        ("prior_encoder", "batch", 2, 2),
        ("segmentation_decoder", "random", 1, 1), ("segmentation_decoder", "random", 1, 16),
        ("segmentation_decoder", "real", 1, 1), ("segmentation_decoder", "real", 1, 6),
        ("segmentation_decoder", "real", 1, 10), ("segmentation_decoder", "batch", 2, 6),
    }
    assert "tensorrt" not in manifest


def test_graphs_pass_the_checks_with_named_dynamic_axes(exported):
    folder = exported[1]
    signatures = graph_signatures(GraphSpec(64, 16))
    for name in ("prior_encoder", "segmentation_decoder"):
        check_graph(folder / f"{name}.onnx", signatures[name])
        model = onnx.load(folder / f"{name}.onnx")
        assert {p.key: p.value for p in model.metadata_props} == {
            "vpi_version": __version__, "vpi_graph": name}
    assert signatures["prior_encoder"]["inputs"]["support_images"] == ["B", "K", 3, 64, 64]
    assert signatures["prior_encoder"]["outputs"]["prior_mean"] == ["B", 16]
    assert signatures["segmentation_decoder"]["inputs"]["prototypes"] == ["B", "L", 16]
    assert signatures["segmentation_decoder"]["outputs"]["probability"] == ["B", 64, 64]
    with pytest.raises(VpiError, match="has inputs .* expected"):
        check_graph(folder / "prior_encoder.onnx", signatures["segmentation_decoder"])


@pytest.fixture
def other_checkpoint(tmp_path, tiny_config) -> Path:
    torch.manual_seed(1)
    return save_checkpoint(tmp_path / "other.pt", VPIModel(tiny_config.model), tiny_config, step=3)


@pytest.fixture
def reuse_graphs(exported, monkeypatch):
    """Skip the slow exporter: 'export' by copying the session's graphs of the seed-0 model."""
    def copy_graphs(model, spec, paths, *, opset=None):
        for name, path in paths.items():
            shutil.copy(exported[1] / f"{name}.onnx", path)
        return {name: 20 for name in paths}

    monkeypatch.setattr(pipeline, "export_graphs", copy_graphs)


def test_parity_failure_writes_nothing(exported, other_checkpoint, reuse_graphs, tmp_path):
    # The graphs are the seed-0 model's, the checkpoint is another: parity must fail.
    folder = copy_export(exported[1], tmp_path / "export")
    before = snapshot(folder)
    with pytest.raises(BackendError, match="ONNX Runtime disagrees with eager PyTorch on "
                                           "prior_encoder at K=1, B=1 .* the export was not written"):
        export_model(other_checkpoint, folder, force=True)
    assert snapshot(folder) == before


def test_parity_checks_a_batch_against_its_items_one_by_one(exported):
    """A runner whose batched answer leaks between items fails the batch cases, and only them."""
    from vpi.export.parity import FP32_TOLERANCE, check_parity, parity_report
    from vpi.runtime import TorchRunner

    reference = TorchRunner.from_checkpoint(exported[0], device="cpu")

    class Leaky:
        """Every item gets its batch's average input: exact at B = 1, wrong at B > 1."""

        def run_prior(self, images, masks):
            return reference.run_prior(images.mean(0, keepdim=True).expand_as(images), masks)

        def run_decoder(self, query, prototypes):
            return reference.run_decoder(query.mean(0, keepdim=True).expand_as(query), prototypes)

    report = parity_report(reference, Leaky(), reference.spec, FP32_TOLERANCE)
    failing = {(c["graph"], c["inputs"]) for c in report["cases"]
               if max(c.get(k, 0.0) for k in ("prior_mean", "probability")) > FP32_TOLERANCE}
    assert failing == {("prior_encoder", "batch"), ("segmentation_decoder", "batch")}
    with pytest.raises(BackendError, match="Leaky disagrees with eager PyTorch on prior_encoder at "
                                           "K=2, B=2 \\(batch inputs\\)"):
        check_parity(report, "Leaky")


def test_reexporting_the_same_checkpoint_needs_no_force(exported, reuse_graphs, tmp_path):
    folder = copy_export(exported[1], tmp_path / "export")
    (folder / "notes.txt").write_text("mine")
    manifest = export_model(exported[0], folder)
    assert json.loads(manifest.read_text())["parity"]["onnxruntime"]["max_error"]["probability"] < 1e-4
    assert (folder / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in folder.iterdir()) == [
        "manifest.json", "notes.txt", "prior_encoder.onnx", "segmentation_decoder.onnx"]


def test_a_folder_of_another_model_or_of_other_files_is_refused(exported, other_checkpoint,
                                                                tmp_path):
    folder = copy_export(exported[1], tmp_path / "export")
    before = snapshot(folder)
    with pytest.raises(VpiError, match="holds the export of another checkpoint \\(tiny.pt\\): "
                                       "choose another --out or pass --force"):
        export_model(other_checkpoint, folder)
    assert snapshot(folder) == before
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"x")
    with pytest.raises(VpiError, match="is not empty and holds no vpi export"):
        export_model(other_checkpoint, tmp_path / "photos")


def test_bad_engine_and_precision(exported, tmp_path):
    with pytest.raises(ConfigError, match="engine is 'tensorrt'; choose one of: onnx, openvino, trt"):
        export_model(exported[0], tmp_path / "x", engine="tensorrt")
    with pytest.raises(ConfigError, match="ONNX graphs are exported in fp32; precision 'fp16' "
                                          "applies to --engine openvino or trt"):
        export_model(exported[0], tmp_path / "x", precision="fp16")
    assert not (tmp_path / "x").exists()


def test_the_export_engines_are_the_backend_tables_engines():
    assert tuple(EXPORT_ENGINES) == ENGINES


@pytest.mark.parametrize("engine", ENGINES)
def test_every_engine_of_the_registry_is_one_export_knows(engine):
    try:
        request = pipeline.check_engine_request(engine, "fp32")
    except BackendError as exc:  # its library (or TensorRT's GPU) is missing here: one line
        assert str(exc) in (BACKENDS[engine].missing,
                            "TensorRT needs an NVIDIA GPU, and no CUDA device is visible here")
        return
    assert request is None if engine == "onnx" else request is not None


def test_trt_without_tensorrt_fails_before_writing(exported, tmp_path):
    reason = tensorrt_missing()
    if reason is None:
        pytest.skip("TensorRT is installed here")
    with pytest.raises(BackendError) as info:
        export_model(exported[0], tmp_path / "engines", engine="trt")
    assert str(info.value) == reason and "\n" not in reason
    assert not (tmp_path / "engines").exists()


@pytest.mark.slow
@pytest.mark.parametrize("options", [{}, {"decoder_low_resolution": True, "refine_passes": 2}])
def test_the_similarity_map_extension_exports_with_parity(tiny_config, tmp_path, options):
    """The features decoder with the similarity map and deep+mid prototypes, and with its blocks
    at stride 8 (skips pooled) and the mean refined, goes through ONNX unchanged."""
    import dataclasses

    model_config = dataclasses.replace(tiny_config.model, similarity_map=True,
                                       prototype_features="deep+mid", initial_logvar=-6.0,
                                       **options)
    config = dataclasses.replace(tiny_config, model=model_config)
    torch.manual_seed(0)
    checkpoint = save_checkpoint(tmp_path / "sim.pt", VPIModel(model_config).eval(), config, step=0)
    manifest = json.loads(export_model(checkpoint, tmp_path / "export").read_text())
    report = manifest["parity"]["onnxruntime"]
    assert max(report["max_error"].values()) <= report["tolerance"]


@pytest.mark.slow
@pytest.mark.parametrize("options", [
    {}, {"decoder_low_resolution": True},
    {"decoder_low_resolution": True, "self_support_from": "matcher"},
    {"decoder_low_resolution": True, "refine_passes": 3, "self_support": 2,
     "self_support_in_training": 1},
    {"decoder_low_resolution": True, "self_support": 2, "blocks_per_sample": "none"},
    {"decoder_low_resolution": True, "self_support": 2, "blocks_per_sample": "none",
     "refine_passes": 2, "background_parts": 3},
])
def test_the_matching_decoder_exports_with_parity(tiny_config, tmp_path, options):
    """The demo's decoder (fg and bg prototypes in z, an undilated encoder, a fixed identity
    projection, no skips, a round of self-support, its samples summarised at stride 8, the
    round's first decision from the matcher, the mean refined along the query's edges, passes
    on the samples' mean, the background's parts) goes through ONNX unchanged: the graphs'
    contract does not move."""
    checkpoint = matching_checkpoint(tiny_config, tmp_path, **options)
    manifest = json.loads(export_model(checkpoint, tmp_path / "export").read_text())
    report = manifest["parity"]["onnxruntime"]
    assert {"probability", "variance", "entropy", "mutual_information"} <= set(report["max_error"])
    assert max(report["max_error"].values()) <= report["tolerance"]


@pytest.mark.slow
def test_an_export_fixes_the_test_time_fields_it_is_given(tiny_config, tmp_path):
    """`vpi export --set model.blocks_per_sample=none`: the graphs are built, and checked,
    with the field changed, and the manifest says so; the checkpoint is unchanged."""
    checkpoint = matching_checkpoint(tiny_config, tmp_path, self_support=2,
                                     decoder_low_resolution=True)
    before = file_sha256(checkpoint)
    manifest = json.loads(export_model(checkpoint, tmp_path / "export",
                                       test_time={"blocks_per_sample": "none"}).read_text())
    assert manifest["config"]["model"]["blocks_per_sample"] == "none"
    report = manifest["parity"]["onnxruntime"]
    assert max(report["max_error"].values()) <= report["tolerance"]
    assert file_sha256(checkpoint) == before


def test_an_export_refuses_a_field_the_weights_fix(tiny_config, tmp_path, monkeypatch, capsys):
    from runtime.helpers import run_cli

    checkpoint = matching_checkpoint(tiny_config, tmp_path)
    code, _, err = run_cli(monkeypatch, capsys, "export", checkpoint, "--out", tmp_path / "out",
                           "--set", "model.latent_dim=8", "--set", "train.steps=3")
    assert code != 0
    assert "model.latent_dim, train.steps" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
    with pytest.raises(ConfigError, match="model.latent_dim: the checkpoint's weights fix"):
        export_model(checkpoint, tmp_path / "out", test_time={"latent_dim": 8})
