"""The sweep of `vpi bench`: backends x L x mode x B, each cell timed stage by stage, end to end.

Every backend is opened first (or skipped, with the reason); then all of them are swept over L,
mode and batch size B in interleaved rounds (``vpi.bench.cell``), so that load from elsewhere on a
shared machine falls on every backend alike. Pre- and post-processing (resizing images, thresholding) are not
timed: the runners get tensors at the network's size.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from vpi import __version__
from vpi.bench.accuracy import score_builtin
from vpi.bench.cell import InputStream, Lane, measure_cells
from vpi.bench.compare import check_targets, comparisons
from vpi.bench.machine import describe_machine
from vpi.bench.source import BenchModel, ensure_checkpoint, export_folder, torch_weights_are_real
from vpi.bench.timing import Clock, PeakMemory
from vpi.config import BENCH_CACHE, BENCH_SAMPLES, MAX_BATCH, MAX_SAMPLES, MAX_SHOTS
from vpi.device import resolve_device
from vpi.errors import BackendError, ConfigError, VpiError
from vpi.ranges import check_each, check_range
from vpi.runtime.base import Runner
from vpi.runtime.registry import AUTO_PRECISION, BACKENDS, CHECKPOINT, RunnerOptions, flag, taking

MODES = ("batched", "looped")
EVALS = ("builtin",)
FORMAT = "vpi-bench"
FORMAT_VERSION = 2  # 2: every result and ratio names its batch size B; over_B1
Announce = Callable[[str], None]


@dataclass(frozen=True)
class BenchSettings:
    """What to sweep and how to time it; values out of range fail here, with the option named."""

    samples: tuple[int, ...] = BENCH_SAMPLES
    backends: tuple[str, ...] | None = None  # None: every backend that is available here
    modes: tuple[str, ...] = MODES
    batches: tuple[int, ...] = (1,)  # B: users served by one call of each graph
    shots: int = 1
    warmup: int = 3
    repeats: int = 20
    device: str = "auto"
    seed: int = 0
    eval: str | None = None  # "builtin": class-IoU for each L on the built-in test episodes
    eval_episodes: int = 100
    threads: int | None = None  # CPU threads of torch, ONNX Runtime and OpenVINO; None: theirs
    precision: str | None = None  # None: the export's, or on random weights the library's pick
    performance_hint: str | None = None  # OpenVINO's latency or throughput hint

    def __post_init__(self) -> None:
        check_each("--samples", self.samples, "L", 1, MAX_SAMPLES)
        check_each("--batch", self.batches, "B", 1, MAX_BATCH)
        for name, values, allowed in (("--backend", self.backends or (), BACKENDS),
                                      ("--mode", self.modes, MODES)):
            unknown = [v for v in values if v not in allowed]
            if unknown:
                raise ConfigError(f"{name} {unknown[0]!r} is not one of: {', '.join(allowed)}")
        if not self.modes:
            raise ConfigError(f"--mode names no mode; choose from: {', '.join(MODES)}")
        check_range("--shots", self.shots, 1, MAX_SHOTS)
        if self.warmup < 0 or self.repeats < 1:
            raise ConfigError(
                f"--warmup is {self.warmup} and --repeats {self.repeats}; "
                "warm-up runs must be 0 or more and timed runs 1 or more"
            )
        if self.eval is not None and self.eval not in EVALS:
            raise ConfigError(f"--eval is {self.eval!r}; choose one of: {', '.join(EVALS)}")
        if self.eval_episodes < 1:
            raise ConfigError(f"--eval-episodes is {self.eval_episodes}; it must be 1 or more")
        options = RunnerOptions(self.device, self.threads, self.precision, self.performance_hint)
        chosen = self.backends or tuple(BACKENDS)
        for option in ("precision", "performance_hint"):
            if getattr(options, option) is not None and not set(taking(option)) & set(chosen):
                raise ConfigError(f"{flag(option)} applies to --backend {', '.join(taking(option))}, "
                                  f"and none of {', '.join(chosen)} takes it")
        allowed = {AUTO_PRECISION, *(p for b in chosen for p in BACKENDS[b].precisions)}
        if self.precision is not None and self.precision not in allowed:
            raise ConfigError(f"--precision is {self.precision!r}; choose one of: "
                              f"{', '.join(sorted(allowed))}")

    def runner_options(self, random_weights: bool) -> RunnerOptions:
        """What every backend is opened with; on random weights the precision defaults to the
        library's own pick, since no accuracy is at stake and that is what it runs untold."""
        precision = self.precision or (AUTO_PRECISION if random_weights else None)
        return RunnerOptions(self.device, self.threads, precision, self.performance_hint)


def run_benchmark(
    bench: BenchModel,
    settings: BenchSettings | None = None,
    *,
    cache_dir: str | Path = BENCH_CACHE,
    announce: Announce | None = None,
) -> dict[str, Any]:
    """Measure ``bench`` on every backend of ``settings``; returns the report (see docs/benchmarks.md).

    A backend that cannot run here (library missing, no GPU, no engines) is recorded as skipped
    with its reason; only when none can run is that an error.
    """
    settings = settings or BenchSettings()
    announce = announce or (lambda _line: None)
    with _torch_threads(settings.threads):
        return _run(bench, settings, Path(cache_dir), announce)


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """torch's intra-op threads set for the run and restored after (they are process-wide)."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _run(bench: BenchModel, settings: BenchSettings, cache_dir: Path, announce: Announce
         ) -> dict[str, Any]:
    device = resolve_device(settings.device)
    if bench.checkpoint is None and bench.preset is not None:
        bench = ensure_checkpoint(bench, cache_dir)  # PyTorch and the exports share its weights
    announce(f"model: {bench.origin}")
    machine = describe_machine(device)
    names = settings.backends or tuple(BACKENDS)
    backends: list[dict[str, Any]] = []
    lanes: list[Lane] = []
    for name in names:
        lane, entry = _open_lane(name, bench, settings, cache_dir, announce)
        backends.append(entry)
        if lane is not None:
            lanes.append(lane)
    if not lanes:
        reasons = "; ".join(f"{b['backend']}: {b['reason']}" for b in backends)
        raise BackendError(f"no backend could run here ({reasons})")
    cells = [(samples, mode, batch) for samples in settings.samples for mode in settings.modes
             for batch in settings.batches]
    rounds = settings.warmup + settings.repeats

    def progress(round_: int) -> None:
        kind = "warm-up" if round_ < settings.warmup else "timed"
        announce(f"round {round_ + 1}/{rounds} ({kind}): {len(cells)} cells on "
                 f"{', '.join(lane.name for lane in lanes)}")

    measured = measure_cells(lanes, cells, warmup=settings.warmup, repeats=settings.repeats,
                             seed=settings.seed, progress=progress)
    results = [{"backend": backend, "L": samples, "mode": mode, "B": batch, **cell}
               for (backend, samples, mode, batch), cell in measured.items()]
    accuracy = _score(bench, settings, lanes, announce) if settings.eval is not None else None
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "vpi_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {**machine, "load_average_end": _load_average()},
        "model": bench.describe(),
        "settings": {**asdict(settings), "backends": list(names), "device": str(device)},
        "backends": backends,
        "results": results,
        "comparisons": comparisons(results),
        "targets": check_targets(results),
        "accuracy": accuracy,
    }


def _open_lane(
    name: str, bench: BenchModel, settings: BenchSettings, cache_dir: Path, announce: Announce
) -> tuple[Lane | None, dict[str, Any]]:
    """The backend ready to measure and its report entry, or None and why it is skipped.

    ``host_footprint_mb`` is what opening it added to the process's resident set (weights,
    sessions, libraries loaded for it). All backends stay open during the interleaved sweep, so a
    run's peak RSS holds the others' footprints too.
    """
    started = time.perf_counter()
    host = PeakMemory(torch.device("cpu"))
    before = host.current_mb()
    try:
        runner = open_runner(name, bench, settings, cache_dir, announce)
    except VpiError as exc:
        announce(f"skipped {name}: {exc}")
        return None, {"backend": name, "status": "skipped", "reason": str(exc)}
    device = runner.device
    memory = PeakMemory(device, torch_allocated=BACKENDS[name].runs == CHECKPOINT)
    if BACKENDS[name].runs == CHECKPOINT and not torch_weights_are_real(bench):
        runner.warnings.append("random weights of the export's config: no --checkpoint given")
    for line in runner.warnings:
        announce(f"warning: {line}")
    clock = Clock(device)
    entry = {
        "backend": name, "status": "measured", "runner": runner.name, "device": str(device),
        "precision": runner.precision,
        "timer": clock.method, "memory": memory.kind, "memory_scope": memory.scope,
        "setup_s": round(time.perf_counter() - started, 3),
        "host_footprint_mb": round(host.current_mb() - before, 1),
        "warnings": runner.warnings,
    }
    inputs = InputStream(runner.spec, settings.shots, settings.seed)
    return Lane(name, runner, clock, memory, inputs), entry


def _score(
    bench: BenchModel, settings: BenchSettings, lanes: list[Lane], announce: Announce
) -> dict[str, Any] | None:
    """Class-IoU for each L through the first backend that runs the model's own weights."""
    real = [lane for lane in lanes
            if torch_weights_are_real(bench) or BACKENDS[lane.name].runs != CHECKPOINT]
    if not real:
        return None
    lane = real[0]
    announce(f"{lane.runner.name}: class-IoU on {settings.eval_episodes} built-in test episodes")
    return {
        "dataset": settings.eval, "backend": lane.name, "episodes": settings.eval_episodes,
        "shots": settings.shots, "random_weights": bench.random_weights,
        "per_L": score_builtin(lane.runner, bench.config, settings.samples, shots=settings.shots,
                               episodes=settings.eval_episodes, seed=settings.seed),
    }


def _load_average() -> list[float] | None:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def open_runner(
    name: str, bench: BenchModel, settings: BenchSettings, cache_dir: str | Path, announce: Announce
) -> Runner:
    """A runner of backend ``name`` for ``bench``, or a VpiError that says why it cannot run.

    A backend that runs exports gets the ONNX export where it reads one, else its engine's; a
    missing library is reported before any export is made.
    """
    entry = BACKENDS[name]
    entry.require()
    if entry.runs == CHECKPOINT:
        source = ensure_checkpoint(bench, cache_dir).checkpoint
    else:
        source = export_folder(bench, cache_dir, "onnx" if entry.reads_onnx else entry.engine,
                               announce)
    runner = entry.open(source, settings.runner_options(bench.random_weights))
    spec = runner.spec
    largest, batch = max(settings.samples), max(settings.batches)
    if largest > spec.max_samples or settings.shots > spec.max_shots or batch > spec.max_batch:
        raise BackendError(
            f"{runner.name} takes L up to {spec.max_samples}, K up to {spec.max_shots} and B up "
            f"to {spec.max_batch}; asked for L = {largest}, K = {settings.shots}, B = {batch}"
        )
    return runner
