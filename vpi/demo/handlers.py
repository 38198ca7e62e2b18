"""The demo page's callbacks as plain functions: page values in, page values out, no Gradio.

Each takes what the page's components hold (the editor's dict of arrays, uploaded file paths,
the support list kept in the page's state) and returns what they should show next. Bad input
never raises: it comes back as a status line for the page (the error's own message, upload paths
shortened to file names) and the server serves the next request. ``KEEP`` leaves a component as
it is. The page (page.py) wires these to Gradio components; tests call them directly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vpi.demo.examples import available_examples, load_example
from vpi.demo.inputs import MAX_SUPPORT, SupportExample, add_support, read_queries, support_from_editor
from vpi.demo.session import DemoResult, DemoSession
from vpi.errors import ConfigError, VpiError
from vpi.runtime.outputs import overlay

KEEP = object()  # "leave this component as it is"
Gallery = list[tuple[np.ndarray, str]]
_log = logging.getLogger("vpi.demo")


class DemoHandlers:
    """What each button of the page does, over one DemoSession."""

    def __init__(self, session: DemoSession) -> None:
        self.session = session
        self.examples = available_examples()

    def add(self, editor: dict[str, Any] | None, mask_file: str | None,
            support: Sequence[SupportExample]) -> tuple[Any, ...]:
        """Editor + optional mask file -> one more support pair: (support, gallery, editor,
        mask file, status). The editor and the mask file are emptied for the next photo."""
        def run() -> tuple[Any, ...]:
            name = f"photo {len(support) + 1}"
            grown = add_support(support, support_from_editor(editor, mask_file, name))
            return grown, support_gallery(grown), None, None, _support_status(grown)
        return _guarded(run, "Cannot add this photo", (KEEP, KEEP, KEEP, KEEP), [mask_file])

    def clear(self) -> tuple[list[SupportExample], Gallery, str]:
        return [], [], "Support cleared: add 1 to 5 photos with the object painted on each."

    def example(self, name: str) -> tuple[Any, ...]:
        """One click: (support, gallery, query files, status) of a shipped example."""
        def run() -> tuple[Any, ...]:
            loaded = load_example(name, self.session.work_dir)
            return (loaded.support, support_gallery(loaded.support),
                    [str(path) for path in loaded.queries],
                    f"Loaded the {self.examples[name]} example: {_support_status(loaded.support)} "
                    f"{len(loaded.queries)} queries. Press **Segment**.")
        return _guarded(run, "Cannot load the example", (KEEP, KEEP, KEEP), [])

    def segment(self, support: Sequence[SupportExample], query_files: Sequence[str] | None,
                samples: float, backend: str) -> tuple[Any, ...]:
        """(results gallery, summary, download files, status) of one request."""
        def run() -> tuple[Any, ...]:
            started = time.perf_counter()
            queries = read_queries(query_files)
            read_ms = (time.perf_counter() - started) * 1000.0
            result = self.session.segment(support, queries, backend=backend,
                                          samples=_whole(samples, "L"), read_ms=read_ms)
            return (results_gallery(result), summary(result),
                    [str(o.mask_path) for o in result.outputs] + [str(result.results_path)],
                    _segment_status(result))
        return _guarded(run, "Cannot segment", ([], "", None), list(query_files or []))


def support_gallery(support: Sequence[SupportExample]) -> Gallery:
    """Each support photo with its mask tinted over it, captioned with its names."""
    return [(overlay(s.image, s.mask != 0), f"{s.name} · mask: {s.mask_name}") for s in support]


def results_gallery(result: DemoResult) -> Gallery:
    """Per query: the overlay, the probability and the two uncertainty maps."""
    items: Gallery = []
    for out in result.outputs:
        items += [(out.overlay, f"{out.name} · mask over the photo"),
                  (out.probability, f"{out.name} · foreground probability"),
                  (out.entropy, f"{out.name} · uncertainty (entropy of the mean probability)"),
                  (out.disagreement, f"{out.name} · the L samples' disagreement (mutual "
                                     "information)")]
    return items


def summary(result: DemoResult) -> str:
    """Markdown: the settings line, one row per query, and the request's timings."""
    r = result.results
    prior = "reused from the cache (same support)" if result.prior_reused else "encoded"
    lines = [f"**{len(r['support']['pairs'])}-shot · L = {r['samples_decoded']} · {r['backend']}** "
             f"({r['precision']}) · support prior {prior}", "",
             "| query | size | foreground | confidence | likely failed | decode ms |",
             "| --- | --- | --- | --- | --- | --- |"]
    failed = {True: "**yes**", False: "no", None: "– (no threshold recorded)"}
    for q in r["queries"]:
        lines.append(f"| {q['query']} | {q['size'][0]}×{q['size'][1]} | "
                     f"{100 * q['foreground_fraction']:.1f}% | {q['confidence']:.3f} | "
                     f"{failed[q['likely_failed']]} | {q['timing_ms']['decode']:.1f} |")
    t = r["timing_ms"]
    lines += ["", f"Timings (ms): read {t['read_inputs']:.1f} · open backend {t['open_backend']:.1f}"
                  f" · encode support {t['encode_support']:.1f} · segment {t['segment_queries']:.1f}"
                  f" · total {t['total']:.1f}"]
    return "\n".join(lines)


def _support_status(support: Sequence[SupportExample]) -> str:
    count = len(support)
    more = f" Add up to {MAX_SUPPORT - count} more, or" if count < MAX_SUPPORT else ""
    return (f"Support: {count} photo{'s' if count != 1 else ''} ({MAX_SUPPORT} at most).{more} drop "
            "query photos and press **Segment**.")


def _segment_status(result: DemoResult) -> str:
    queries, shots = len(result.outputs), len(result.results["support"]["pairs"])
    return (f"Segmented {queries} quer{'ies' if queries != 1 else 'y'} with {shots} support "
            f"photo{'s' if shots != 1 else ''} on {result.results['backend']} in "
            f"{result.results['timing_ms']['total']:.0f} ms.")


def _whole(value: float, name: str) -> int:
    if value is None or float(value) != int(value):
        raise ConfigError(f"{name} must be a whole number, got {value!r}")
    return int(value)


def _guarded(run: Callable[[], tuple[Any, ...]], failure: str, on_error: tuple[Any, ...],
             uploads: Sequence[str | None]) -> tuple[Any, ...]:
    """``run()``, or ``on_error`` and a status line saying why: a page shows no traceback.

    A VpiError is the user's to fix and its message says how. Anything else is a bug: its
    traceback goes to the server's log, its one-line summary to the page.
    """
    try:
        return run()
    except VpiError as exc:
        message = str(exc)
    except Exception as exc:  # noqa: BLE001 - the page must keep serving
        _log.exception("vpi demo: unexpected error")
        message = f"unexpected {type(exc).__name__}: {exc} (the server's log has the traceback)"
    for upload in uploads:  # uploads live in temporary folders: their names are what users know
        if upload:
            message = message.replace(str(upload), Path(upload).name)
    return (*on_error, f"**{failure}:** {message}")
