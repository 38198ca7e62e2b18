"""Opening a backend by name, or choosing one: the registry's backends, fastest first.

An export folder (``--engine-dir``) runs on TensorRT, OpenVINO or ONNX Runtime; a checkpoint runs on
PyTorch. ``auto`` takes the fastest backend that works here and says which one it took and why
it skipped the others — a silent downgrade to a slower backend is the bug this guards against.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vpi.errors import BackendError, ConfigError
from vpi.manifest import read_manifest
from vpi.runtime.base import Runner
from vpi.runtime.registry import BACKENDS, CHECKPOINT, EXPORT, Backend, RunnerOptions, flag, taking


@dataclass
class BackendChoice:
    runner: Runner
    skipped: dict[str, str] = field(default_factory=dict)  # backend -> why it was not used

    @property
    def reason(self) -> str:
        """One line for the user: what runs, and why faster backends were passed over."""
        line = f"backend: {self.runner.name}"
        if self.skipped:
            line += "; skipped " + "; ".join(f"{k} ({v})" for k, v in self.skipped.items())
        return line


def open_backend(
    backend: str = "auto",
    *,
    checkpoint: str | Path | None = None,
    engine_dir: str | Path | None = None,
    device: str = "auto",
    precision: str | None = None,
    threads: int | None = None,
    performance_hint: str | None = None,
) -> BackendChoice:
    """A runner for exactly one of ``checkpoint`` (PyTorch) or ``engine_dir`` (an export).

    ``precision``, ``threads`` and ``performance_hint`` go to the backends that take them (see
    ``vpi.runtime.registry``); naming a backend that does not take one given is an error, and
    ``auto`` then chooses among those that do.
    """
    names = ("auto", *BACKENDS)
    if backend not in names:
        raise ConfigError(f"backend is {backend!r}; choose one of: {', '.join(names)}")
    if checkpoint is not None and engine_dir is not None:
        raise ConfigError("give a checkpoint or an export folder (--engine-dir), not both")
    if checkpoint is None and engine_dir is None:
        raise ConfigError("give a checkpoint or an export folder (--engine-dir) to run")
    options = RunnerOptions(device, threads, precision, performance_hint)
    runs = CHECKPOINT if checkpoint is not None else EXPORT
    source = Path(checkpoint if checkpoint is not None else engine_dir)  # type: ignore[arg-type]
    if backend != "auto":
        entry = BACKENDS[backend]
        _check_source(entry, runs)
        for option in options.given():
            if option not in entry.takes:
                raise ConfigError(f"{flag(option)} applies to --backend {', '.join(taking(option))}, "
                                  f"not {backend}")
        return BackendChoice(entry.open(source, options))
    return _auto(runs, source, options)


def _check_source(entry: Backend, runs: str) -> None:
    """A checkpoint for a backend that runs exports (or the reverse) says what to give instead."""
    if entry.runs == runs:
        return
    if entry.runs == EXPORT:
        engine = "" if entry.reads_onnx else f" --engine {entry.engine}"
        raise ConfigError(f"--backend {entry.name} runs an export folder: run `vpi export CHECKPOINT "
                          f"--out DIR`{engine}, then pass --engine-dir DIR")
    raise ConfigError(f"--backend {entry.name} runs a checkpoint: pass --checkpoint, not --engine-dir")


def _auto(runs: str, source: Path, options: RunnerOptions) -> BackendChoice:
    """The first backend, fastest first, that runs ``source`` with ``options`` here."""
    if runs == EXPORT:
        read_manifest(source)  # a folder from another vpi fails here, for every backend
    order = list(reversed(BACKENDS.values()))
    others = [b.name for b in order if b.runs != runs]
    skipped = {"/".join(others): "they run an export (--engine-dir)"} if runs == CHECKPOINT else {}
    for entry in (b for b in order if b.runs == runs):
        missing = [flag(o) for o in options.given() if o not in entry.takes]
        reason = f"it takes no {', '.join(missing)}" if missing else entry.auto_skip(options.device)
        if reason is None:
            try:
                return BackendChoice(entry.open(source, options), skipped)
            except BackendError as exc:
                reason = str(exc)
        skipped[entry.name] = reason
    tried = "; ".join(f"{name}: {why}" for name, why in skipped.items())
    raise BackendError(f"no backend can run {str(source)!r} here ({tried})")
