"""Which model `vpi bench` measures, and the files each backend needs for it.

A checkpoint runs on PyTorch, an export folder on the other backends. Given one, the other
is made or stood in for: a checkpoint is exported once into a cache folder (keyed by its sha256
and by vpi's own source, so that a change of the code that makes the graphs is measured),
and an export folder without a checkpoint gives PyTorch a model of the same config with random
weights. Latency does not depend on the weights, so a preset with random weights is a fair stand-in
when no trained model exists; every report says which case it measured.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from vpi.checkpoint import file_sha256, read_checkpoint, save_checkpoint
from vpi.config import (
    DEFAULT_PRESET,
    RUNS_DIR,
    Config,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    get_preset,
)
from vpi.errors import CheckpointError, ConfigError, VpiError
from vpi.manifest import MANIFEST, read_manifest
from vpi.model import VPIModel
from vpi.runtime.registry import BACKENDS

Announce = Callable[[str], None]


@dataclass(frozen=True)
class BenchModel:
    """The model under test: its config, where it came from, and its files (where they exist).

    ``checkpoint`` is None only when an export folder was given alone (PyTorch then runs the
    export's config with random weights); ``engine_dir`` is the user's export folder, if any.
    ``random_weights`` is True for a preset, whose every backend runs the same random weights.
    """

    config: Config
    origin: str  # one line for the user and the report
    random_weights: bool
    checkpoint: Path | None = None
    engine_dir: Path | None = None
    preset: str | None = None
    seed: int = 0

    def describe(self) -> dict[str, Any]:
        m, d = self.config.model, self.config.data
        return {
            "origin": self.origin,
            "preset": self.preset,
            "checkpoint": str(self.checkpoint) if self.checkpoint else None,
            "engine_dir": str(self.engine_dir) if self.engine_dir else None,
            "random_weights": self.random_weights,
            "backbone": m.backbone,
            "image_size": d.image_size,
            "latent_dim": m.latent_dim,
            "decoder_channels": list(m.decoder_channels),
            "probabilistic": m.probabilistic,
            "aggregation": m.aggregation,
        }


def resolve_model(
    *,
    checkpoint: str | Path | None = None,
    engine_dir: str | Path | None = None,
    preset: str | None = None,
    overrides: dict[str, Any] | None = None,
    runs_dir: str | Path = RUNS_DIR,
    seed: int = 0,
) -> BenchModel:
    """The model to measure: the checkpoint and/or export given; else the preset given; else the
    newest `vpi train` run under ``runs_dir``; else the demo preset with random weights.

    ``overrides`` (a nested dict, e.g. ``{"data": {"image_size": 384}}``) apply to a preset only:
    a trained model's shapes are fixed by its checkpoint.
    """
    given = checkpoint is not None or engine_dir is not None
    if given and preset is not None:
        raise ConfigError("give --preset, or a model (--checkpoint / --engine-dir), not both")
    if given and overrides:
        raise ConfigError(
            "--set and --image-size change a preset; a checkpoint or export keeps its own config"
        )
    if not given and preset is None:
        from vpi.runtime.latest import find_latest_checkpoint

        try:
            checkpoint = find_latest_checkpoint(runs_dir)
        except VpiError:
            preset = DEFAULT_PRESET
        else:
            return _from_files(Path(checkpoint), None, "the newest `vpi train` run")
    if preset is not None:
        config = apply_overrides(get_preset(preset), overrides or {})
        config = replace(config, model=replace(config.model, weights=None))
        size = config.data.image_size
        origin = (f"preset {preset} ({config.model.backbone}, {size}x{size}) with random weights: "
                  "latency does not depend on the weights")
        return BenchModel(config, origin, random_weights=True, preset=preset, seed=seed)
    return _from_files(
        Path(checkpoint) if checkpoint is not None else None,
        Path(engine_dir) if engine_dir is not None else None,
        "given",
    )


def _from_files(checkpoint: Path | None, engine_dir: Path | None, how: str) -> BenchModel:
    if checkpoint is not None:
        state = read_checkpoint(checkpoint)
        try:
            config = config_from_dict(state["config"])
        except VpiError as exc:
            raise CheckpointError(f"checkpoint {str(checkpoint)!r} holds an unusable config: {exc}") from None
        origin = f"checkpoint {checkpoint} ({how}, step {state.get('step')})"
    else:
        manifest = read_manifest(engine_dir)
        config = config_from_dict(manifest["config"])
        origin = (f"export {engine_dir} (PyTorch runs its config with random weights: latency "
                  "does not depend on the weights)")
    if checkpoint is not None and engine_dir is not None:
        exported = read_manifest(engine_dir).get("checkpoint", {}).get("sha256")
        if exported != file_sha256(checkpoint):
            raise ConfigError(
                f"export {str(engine_dir)!r} was not made from checkpoint {str(checkpoint)!r}: "
                f"give one of them, or an export of that checkpoint"
            )
        origin += f" and its export {engine_dir}"
    return BenchModel(config, origin, random_weights=False, checkpoint=checkpoint,
                      engine_dir=engine_dir)


def torch_weights_are_real(bench: BenchModel) -> bool:
    """Whether PyTorch runs the model's own weights (not a stand-in for an export given alone)."""
    return bench.checkpoint is not None or bench.random_weights


def ensure_checkpoint(bench: BenchModel, cache_dir: str | Path) -> BenchModel:
    """``bench`` with a checkpoint file: seeded random weights (a preset's, or PyTorch's stand-in
    for an export given alone) are saved once into the cache, keyed by their config and seed, so
    later runs open, export and measure the very same weights."""
    if bench.checkpoint is not None:
        return bench
    key = hashlib.sha256(
        json.dumps([config_to_dict(bench.config), bench.seed], sort_keys=True).encode()
    ).hexdigest()[:12]
    path = Path(cache_dir) / f"{bench.config.name}-{key}" / "model.pt"
    if not path.is_file():
        torch.manual_seed(bench.seed)
        save_checkpoint(path, VPIModel(bench.config.model).eval(), bench.config, step=0)
    return replace(bench, checkpoint=path)


def export_folder(
    bench: BenchModel, cache_dir: str | Path, engine: str = "onnx", announce: Announce | None = None
) -> Path:
    """The export folder to run: the ONNX graphs, plus the files of ``engine`` when it is not onnx.

    An export folder given by the user is used as it is; otherwise the checkpoint is exported
    into ``cache_dir/exports/<sha256>-<code>/<engine>`` once and reused while neither the
    checkpoint nor vpi's source changes.
    """
    if bench.engine_dir is not None:
        return bench.engine_dir
    from vpi.export import export_model

    bench = ensure_checkpoint(bench, cache_dir)
    digest = file_sha256(bench.checkpoint)
    folder = Path(cache_dir) / "exports" / f"{digest[:16]}-{code_digest()}" / engine
    if not _cached(folder, digest, engine):
        if announce:
            announce(f"exporting {bench.checkpoint} to {folder} ({engine}; once, then cached)")
        export_model(bench.checkpoint, folder, engine=engine, force=True)
    return folder


@functools.cache
def code_digest() -> str:
    """A digest of vpi's Python source: the same checkpoint exported by other code may make other
    graphs (a test-time option's new meaning), and a stale cached export would be measured."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:8]


def _cached(folder: Path, digest: str, engine: str) -> bool:
    if not (folder / MANIFEST).is_file():
        return False
    try:
        manifest = read_manifest(folder)
    except VpiError:
        return False
    same = manifest.get("checkpoint", {}).get("sha256") == digest
    if engine == "onnx":  # every export holds the ONNX graphs
        return same
    section = next(b.key for b in BACKENDS.values() if b.engine == engine)
    return same and bool(manifest.get(section))
