"""``segment_folder``: what `vpi segment` does, callable from Python.

Every input is checked before anything is written — the support folder's pairs, every query file,
the number of samples and the batch size, the backend — so bad input leaves an earlier output
folder untouched. The support set is encoded once; the queries are decoded in batches.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vpi.config import (
    DEFAULT_SAMPLES,
    DEFAULT_THRESHOLD,
    RUNS_DIR,
    SEGMENT_BATCH,
    SEGMENT_DIR,
)
from vpi.io import ensure_writable_dir
from vpi.runtime.latest import find_latest_checkpoint
from vpi.runtime.outputs import query_record, results_document, write_query_outputs, write_results
from vpi.runtime.processing import check_image_file, load_image
from vpi.runtime.registry import RunnerOptions
from vpi.runtime.segmenter import Prior, Segmenter
from vpi.runtime.select import BackendChoice, open_backend
from vpi.runtime.support import SupportPair, find_queries, find_support_pairs, load_support


def segment_folder(
    support_dir: str | Path,
    queries: Sequence[str | Path],
    *,
    checkpoint: str | Path | None = None,
    engine_dir: str | Path | None = None,
    backend: str = "auto",
    samples: int = DEFAULT_SAMPLES,
    seed: int = 0,
    threshold: float = DEFAULT_THRESHOLD,
    batch_size: int = SEGMENT_BATCH,
    out_dir: str | Path = SEGMENT_DIR,
    options: RunnerOptions | None = None,
    runs_dir: str | Path = RUNS_DIR,
    announce: Callable[[str], None] = lambda line: None,
) -> dict[str, Any]:
    """Segment each query with the support folder's pairs; write PNGs and results.json.

    With neither ``checkpoint`` nor ``engine_dir`` the newest run under ``runs_dir`` is used (and
    announced). ``options`` (device, precision, threads, performance hint; default: each one's
    default) go to the backend as in ``open_backend``. The queries go to the decoder
    ``batch_size`` at a time, each with the same prototypes as alone, so the results do not
    depend on it. Per query, ``out_dir`` gets ``<stem>_mask.png`` (0/255), ``<stem>_overlay.png``
    and ``<stem>_uncertainty.png``; ``results.json`` holds the figures and timings (a query's
    share of its batch's). Returns the dict written to results.json.
    """
    started = time.perf_counter()
    pairs, support_images, support_masks, query_paths = _read_inputs(support_dir, queries)
    if checkpoint is None and engine_dir is None:
        checkpoint = find_latest_checkpoint(runs_dir)
        announce(f"no --checkpoint given: using the newest run's {checkpoint}")
    loaded = time.perf_counter()
    choice = _open_backend(backend, checkpoint, engine_dir, options or RunnerOptions(), announce)
    segmenter = Segmenter(choice.runner)
    segmenter.check_request(samples=samples, batch=batch_size, threshold=threshold)
    opened = time.perf_counter()
    prior = segmenter.encode_support(
        support_images, support_masks, [pair.image.name for pair in pairs]
    )
    encoded = time.perf_counter()

    out = ensure_writable_dir(out_dir)
    records = _segment_queries(segmenter, prior, query_paths, out, samples=samples, seed=seed,
                               threshold=threshold, batch_size=batch_size)
    results = results_document(
        choice, checkpoint=checkpoint, engine_dir=engine_dir,
        support={
            "folder": str(support_dir),
            "pairs": [{"image": p.image.name, "mask": p.mask.name} for p in pairs],
        },
        samples=samples, seed=seed, threshold=threshold, batch_size=batch_size, queries=records,
        timing_ms=_phase_timings(started, loaded, opened, encoded),
    )
    results["timing_ms"]["total"] = _ms(started, time.perf_counter())
    write_results(out, results)
    return results


def _read_inputs(
    support_dir: str | Path, queries: Sequence[str | Path]
) -> tuple[list[SupportPair], list[np.ndarray], list[np.ndarray], list[Path]]:
    """The support folder's pairs, their images and masks, and the query paths, every query file
    checked: bad input fails before a backend opens or anything is written."""
    pairs = find_support_pairs(support_dir)
    support_images, support_masks = load_support(pairs)
    query_paths = find_queries(queries)
    for query in query_paths:
        check_image_file(query, "query")
    return pairs, support_images, support_masks, query_paths


def _open_backend(backend: str, checkpoint: str | Path | None, engine_dir: str | Path | None,
                  options: RunnerOptions, announce: Callable[[str], None]) -> BackendChoice:
    """The chosen backend's runner, with why it was chosen and its warnings announced."""
    choice = open_backend(backend, checkpoint=checkpoint, engine_dir=engine_dir,
                          device=options.device, precision=options.precision,
                          threads=options.threads, performance_hint=options.performance_hint)
    announce(choice.reason)
    for warning in choice.runner.warnings:
        announce(f"warning: {warning}")
    return choice


def _segment_queries(segmenter: Segmenter, prior: Prior, query_paths: Sequence[Path], out: Path, *,
                     samples: int, seed: int, threshold: float, batch_size: int
                     ) -> list[dict[str, Any]]:
    """Decode the queries ``batch_size`` at a time and write each one's PNGs into ``out``; their
    results.json records, with timings (a query's share of its batch's load time)."""
    records = []
    for first in range(0, len(query_paths), batch_size):
        batch = query_paths[first:first + batch_size]
        t0 = time.perf_counter()
        images = [load_image(query, "query") for query in batch]
        t1 = time.perf_counter()
        segmentations = segmenter.segment_batch(images, prior, samples=samples, seed=seed,
                                                threshold=threshold)
        for query, image, result in zip(batch, images, segmentations, strict=True):
            t2 = time.perf_counter()
            files = write_query_outputs(out, query, image, result)
            records.append(query_record(
                str(query), image, result, files,
                {"load": _ms(t0, t1, len(batch)), **result.timings_ms,
                 "write": _ms(t2, time.perf_counter())},
            ))
    return records


def _phase_timings(started: float, loaded: float, opened: float, encoded: float) -> dict[str, float]:
    """results.json's time of each phase, from the instants between them; the last ends now."""
    return {
        "read_inputs": _ms(started, loaded),
        "open_backend": _ms(loaded, opened),
        "encode_support": _ms(opened, encoded),
        "segment_queries": _ms(encoded, time.perf_counter()),
    }


def _ms(start: float, end: float, share: int = 1) -> float:
    return round((end - start) * 1000.0 / share, 3)
