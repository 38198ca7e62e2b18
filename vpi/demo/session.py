"""DemoSession: the model behind the demo page, and what one "Segment" request computes and writes.

One Segmenter per backend, opened on first use and kept: its cache holds the support's prior, so
a support that does not change between requests is encoded once. Each request writes what `vpi
segment` writes (the three PNGs per query and results.json, by the same functions) into a fresh
folder under ``work_dir``; only the newest ``keep`` folders stay.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vpi.config import DEFAULT_SAMPLES, DEFAULT_THRESHOLD, SEGMENT_BATCH
from vpi.demo.inputs import Query, SupportExample, check_support
from vpi.errors import ConfigError
from vpi.io import ensure_writable_dir
from vpi.runtime.outputs import (
    HEAT_MAPS,
    heat_map,
    overlay,
    query_record,
    results_document,
    write_query_outputs,
    write_results,
)
from vpi.runtime.registry import BACKENDS, CHECKPOINT, EXPORT
from vpi.runtime.segmenter import Prior, Segmenter
from vpi.runtime.select import BackendChoice, open_backend

SEED = 0  # `vpi segment`'s default seed and threshold: the page's results.json is the one it writes


@dataclass
class QueryOutput:
    """What the page shows of one query: maps at its (H, W) and the mask PNG it offers."""

    name: str
    overlay: np.ndarray  # (H, W, 3) uint8, the mask tinted over the photo
    probability: np.ndarray  # (H, W) uint8, foreground probability × 255
    entropy: np.ndarray  # (H, W, 3) uint8, the entropy heat map `vpi segment` writes
    disagreement: np.ndarray  # (H, W, 3) uint8, its mutual-information heat map
    mask_path: Path


@dataclass
class DemoResult:
    results: dict[str, Any]  # what results.json holds
    results_path: Path
    outputs: list[QueryOutput]
    prior_reused: bool  # the support was the previous request's: its prior came from the cache


class DemoSession:
    """The page's model: a checkpoint (PyTorch) or an export folder, on the backends that run it."""

    def __init__(
        self,
        *,
        checkpoint: str | Path | None = None,
        engine_dir: str | Path | None = None,
        backend: str = "auto",
        device: str = "auto",
        work_dir: str | Path,
        keep: int = 8,
    ) -> None:
        if (checkpoint is None) == (engine_dir is None):
            raise ConfigError("give a checkpoint or an export folder (--engine-dir), one of them")
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.engine_dir = Path(engine_dir) if engine_dir is not None else None
        self.device = device
        runs = CHECKPOINT if checkpoint is not None else EXPORT
        self.backends = ("auto", *(b.name for b in BACKENDS.values() if b.runs == runs))
        self.default_backend = backend
        self.work_dir = ensure_writable_dir(work_dir)
        self.keep = keep
        self._opened: dict[str, tuple[BackendChoice, Segmenter]] = {}
        self._last_prior: dict[str, Prior] = {}
        self._requests = 0
        self._lock = threading.Lock()  # one request at a time: runners are not thread-safe
        self.open(backend)  # a model that cannot load fails here, before any page is served

    @property
    def model(self) -> Path:
        return self.checkpoint if self.checkpoint is not None else self.engine_dir  # type: ignore[return-value]

    @property
    def max_samples(self) -> int:
        return self.open(self.default_backend)[0].runner.spec.max_samples

    def open(self, backend: str) -> tuple[BackendChoice, Segmenter]:
        """The backend's runner and Segmenter, opened on first use (a BackendError says why not)."""
        if backend not in self.backends:
            kind = "a checkpoint" if self.checkpoint is not None else "an export folder"
            raise ConfigError(f"backend is {backend!r}; for {kind} choose one of: "
                              f"{', '.join(self.backends)}")
        if backend not in self._opened:
            choice = open_backend(backend, checkpoint=self.checkpoint, engine_dir=self.engine_dir,
                                  device=self.device)
            self._opened[backend] = (choice, Segmenter(choice.runner))
        return self._opened[backend]

    def segment(
        self,
        support: Sequence[SupportExample],
        queries: Sequence[Query],
        *,
        backend: str | None = None,
        samples: int = DEFAULT_SAMPLES,
        read_ms: float = 0.0,
    ) -> DemoResult:
        """Segment ``queries`` with ``support`` (already checked pairs), as `vpi segment` does."""
        with self._lock:
            return self._segment(support, queries, backend or self.default_backend, samples, read_ms)

    def _segment(self, support: Sequence[SupportExample], queries: Sequence[Query], backend: str,
                 samples: int, read_ms: float) -> DemoResult:
        check_support(support)
        started = time.perf_counter()
        choice, segmenter = self.open(backend)
        opened = time.perf_counter()
        prior = segmenter.encode_support([s.image for s in support], [s.mask for s in support],
                                         [s.name for s in support])
        reused = prior is self._last_prior.get(backend)
        self._last_prior[backend] = prior
        encoded = time.perf_counter()
        out = self._new_folder()
        batch_size = min(SEGMENT_BATCH, choice.runner.spec.max_batch)
        records, outputs = [], []
        for first in range(0, len(queries), batch_size):
            batch = queries[first:first + batch_size]
            results = segmenter.segment_batch([q.image for q in batch], prior, samples=samples,
                                              seed=SEED, threshold=DEFAULT_THRESHOLD)
            for query, result in zip(batch, results, strict=True):
                t0 = time.perf_counter()
                files = write_query_outputs(out, Path(query.name), query.image, result)
                records.append(query_record(query.name, query.image, result, files, {
                    "load": query.load_ms, **result.timings_ms, "write": _ms(t0, time.perf_counter())}))
                outputs.append(QueryOutput(
                    query.name, overlay(query.image, result.mask),
                    np.rint(np.clip(result.probability, 0.0, 1.0) * 255).astype(np.uint8),
                    *(heat_map(getattr(result, HEAT_MAPS[kind][0]), *HEAT_MAPS[kind][1:])
                      for kind in ("entropy", "mutual_information")),
                    out / files["mask"]))
        document = results_document(
            choice, checkpoint=self.checkpoint, engine_dir=self.engine_dir,
            support={"folder": None, "prior": "reused from the cache" if reused else "encoded",
                     "pairs": [{"image": s.name, "mask": s.mask_name} for s in support]},
            samples=samples, seed=SEED, threshold=DEFAULT_THRESHOLD, batch_size=batch_size, queries=records,
            timing_ms={"read_inputs": round(read_ms, 3), "open_backend": _ms(started, opened),
                       "encode_support": _ms(opened, encoded),
                       "segment_queries": _ms(encoded, time.perf_counter())},
        )
        document["timing_ms"]["total"] = round(read_ms + _ms(started, time.perf_counter()), 3)
        return DemoResult(document, write_results(out, document), outputs, reused)

    def _new_folder(self) -> Path:
        """A fresh folder for this request's files; the oldest beyond ``keep`` are removed."""
        self._requests += 1
        folder = self.work_dir / f"request-{self._requests:05d}"
        folder.mkdir()
        for old in sorted(self.work_dir.glob("request-*"))[:-self.keep]:
            shutil.rmtree(old, ignore_errors=True)
        return folder


def _ms(start: float, end: float) -> float:
    return round((end - start) * 1000.0, 3)

