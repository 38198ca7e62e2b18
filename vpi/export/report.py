"""What `vpi export` prints (rich tables and markup lines), kept out of the CLI, which only prints
them: the export's graphs and checks, or the Triton repository's models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.table import Table

from vpi.export.triton import MODELS
from vpi.graphs import DECODER_OUTPUTS


class OneLine(str):
    """A line printed unwrapped, whatever the terminal's width (rich's ``soft_wrap``): one to copy
    or read whole."""


def export_report(manifest_path: Path, out: Path) -> list[Table | str]:
    """The export in ``out`` whose manifest is ``manifest_path``: its graphs, the parity of each
    backend with PyTorch, the engines' versions, the accuracy gate's verdicts and the manifest."""
    manifest = json.loads(manifest_path.read_text())
    return [graphs_table(manifest, out), *_parity_lines(manifest), *_engine_lines(manifest),
            *_gate_lines(manifest),
            f"manifest: {manifest_path} ({manifest['timing_s']['total']:.1f} s)"]


def graphs_table(manifest: dict[str, Any], out: Path) -> Table:
    """One row per graph: its file and its inputs' shapes."""
    table = Table(title=f"export of {manifest['checkpoint']['file']} in {out}")
    table.add_column("graph")
    table.add_column("file")
    table.add_column("inputs")
    for name, graph in manifest["graphs"].items():
        table.add_row(name, graph["file"], ", ".join(
            f"{k} {tuple(v)}" for k, v in graph["inputs"].items()))
    return table


def _parity_lines(manifest: dict[str, Any]) -> list[str]:
    lines = []
    for backend, report in manifest["parity"].items():
        worst = report["max_error"]
        maps = ", ".join(f"{name} {worst[name]:.1e}" for name in DECODER_OUTPUTS)
        lines.append(f"parity {backend} vs PyTorch: {maps} (tolerance {report['tolerance']:.0e})")
    return lines


def _engine_lines(manifest: dict[str, Any]) -> list[str]:
    lines = []
    if "tensorrt" in manifest:
        trt = manifest["tensorrt"]
        lines.append(f"TensorRT {trt['tensorrt_version']} engines ({trt['precision']}) for "
                     f"{trt['gpu']} (compute capability {trt['compute_capability']})")
    if "openvino" in manifest:
        ir = manifest["openvino"]
        lines.append(f"OpenVINO {ir['openvino_version']} IR; its runners default to {ir['precision']}")
    return lines


def _gate_lines(manifest: dict[str, Any]) -> list[str]:
    """Each precision the gate tried, with its verdict, then the one chosen and why."""
    if "gate" not in manifest:
        return []
    gate = manifest["gate"]
    lines: list[str] = [
        f"gate {tried['precision']}: class-IoU {100 * tried['class_iou']:.2f} vs PyTorch "
        f"fp32 {100 * gate['reference']['class_iou']:.2f} on {gate['episodes']} "
        f"{gate['episodes_from']['split']} episodes ({tried['points_lost']:+.2f} points lost, "
        f"{gate['margin_points']:g} allowed): {'passed' if tried['passed'] else 'failed'}"
        for tried in gate.get("candidates", [])
    ]
    lines.append(OneLine(f"precision {gate['chosen']}: {gate['why']}"))
    return lines


def triton_report(repo: Path) -> list[Table | str]:
    """The models of the Triton repository ``repo`` with their files, and the command to serve it."""
    table = Table(title=f"Triton model repository {repo}")
    table.add_column("model")
    table.add_column("files")
    for name in MODELS:
        files = sorted(p.relative_to(repo / name).as_posix() for p in (repo / name).rglob("*"))
        table.add_row(name, ", ".join(files))
    return [table, OneLine(f"serve it with: tritonserver --model-repository={repo.resolve()} "
                           "(docs/serving.md)")]
