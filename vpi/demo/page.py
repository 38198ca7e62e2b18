"""The Gradio page of `vpi demo`, and ``serve_demo`` that runs it (the ``demo`` extra).

Nothing leaves the machine: Gradio's telemetry and version check are off (``analytics_enabled``
and ``GRADIO_ANALYTICS_ENABLED``), Hugging Face Hub stays offline, the default theme's fonts and
every script are served by the page's own server (the browser test checks each request), and no
share link is made. The server binds to 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import ipaddress
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from vpi.config import DEFAULT_SAMPLES, RUNS_DIR
from vpi.demo.examples import EXAMPLES_DIR
from vpi.demo.handlers import KEEP, DemoHandlers
from vpi.demo.inputs import MAX_SUPPORT
from vpi.demo.session import DemoSession
from vpi.errors import VpiError
from vpi.runtime.latest import find_latest_checkpoint

MAX_UPLOAD = "100mb"  # Gradio refuses larger files before they reach vpi
_BRUSH_COLOUR = "#ff2828"  # the overlay's red: a painted object looks as its mask will
_PRIVATE_ENV = {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1",
                "HF_HUB_DISABLE_TELEMETRY": "1"}


def import_gradio() -> Any:
    """Gradio with its telemetry off, or one line naming the extra that installs it."""
    os.environ.update(_PRIVATE_ENV)  # before the import: some of Gradio reads them at import
    try:
        import gradio
    except ImportError:
        raise VpiError("the demo page needs Gradio: pip install 'vpi[demo]'") from None
    return gradio


def build_page(handlers: DemoHandlers) -> Any:
    """The page: support editor and gallery, queries, L and backend, results, downloads."""
    gr = import_gradio()
    session = handlers.session

    def wired(handler: Callable[..., tuple[Any, ...]]) -> Callable[..., tuple[Any, ...]]:
        return lambda *args: tuple(gr.skip() if value is KEEP else value for value in handler(*args))

    with gr.Blocks(title="vpi demo", analytics_enabled=False, delete_cache=(3600, 3600)) as page:
        gr.Markdown(f"# vpi demo: segment your photos from a few painted examples\nModel: "
                    f"`{session.model}`. Nothing you upload leaves this machine.")
        support = gr.State([])
        with gr.Row():
            with gr.Column():
                editor, mask_file, add, clear, gallery, example_buttons = _support_column(
                    gr, handlers.examples)
            with gr.Column():
                gr.Markdown("### 2 · Query: one or more photos")
                queries = gr.File(label="query photos", file_count="multiple", type="filepath",
                                  height=150, elem_id="vpi-queries")
                with gr.Row():
                    samples = gr.Slider(1, session.max_samples, step=1, label="L: samples of z",
                                        value=min(DEFAULT_SAMPLES, session.max_samples),
                                        elem_id="vpi-samples")
                    backend = gr.Dropdown(list(session.backends), value=session.default_backend,
                                          label="backend", elem_id="vpi-backend")
                go = gr.Button("Segment", variant="primary", elem_id="vpi-segment")
                status = gr.Markdown("Add a support photo, or load an example.", elem_id="vpi-status")
        gr.Markdown("### 3 · Results: mask over the photo, foreground probability, uncertainty")
        summary = gr.Markdown(elem_id="vpi-summary")
        results = gr.Gallery(label="per query: mask over the photo, probability, uncertainty",
                             columns=3, fit_columns=False, height=480, object_fit="contain",
                             format="png", interactive=False, elem_id="vpi-results")
        downloads = gr.File(label="downloads: each mask PNG and results.json, as vpi segment writes them",
                            file_count="multiple", interactive=False, elem_id="vpi-downloads")

        # No progress on the editor: Gradio 6.31 leaves it spinning, its photo hidden, when the
        # event skips it (a refused photo stays in the editor, to be painted).
        add.click(wired(handlers.add), [editor, mask_file, support],
                  [support, gallery, editor, mask_file, status], show_progress="hidden")
        clear.click(handlers.clear, None, [support, gallery, status])
        for name, button in example_buttons.items():
            button.click(wired(lambda name=name: handlers.example(name)), None,
                         [support, gallery, queries, status])
        go.click(wired(handlers.segment), [support, queries, samples, backend],
                 [results, summary, downloads, status])
    return page


class _SupportColumn(NamedTuple):
    """The support column's components that the page's events read or update."""

    editor: Any
    mask_file: Any
    add: Any
    clear: Any
    gallery: Any
    examples: dict[str, Any]  # example name -> its button


def _support_column(gr: Any, examples: dict[str, str]) -> _SupportColumn:
    """The support column's components, made inside the caller's column: the editor to paint a
    photo in, the mask upload, the add and clear buttons, the gallery, a button per example."""
    gr.Markdown(f"### 1 · Support: 1 to {MAX_SUPPORT} photos, the object painted on each")
    editor = gr.ImageEditor(
        label="photo: drop it here, paint the object with the brush", type="numpy",
        image_mode="RGBA", format="png", sources=("upload", "clipboard"), layers=False,
        transforms=(), brush=gr.Brush(colors=[_BRUSH_COLOUR], color_mode="fixed"),
        height=360, elem_id="vpi-editor")
    mask_file = gr.File(label="or upload its mask as a PNG (non-zero pixels: the object)",
                        type="filepath", height=120, elem_id="vpi-mask")
    with gr.Row():
        add = gr.Button("Add to support", variant="secondary", elem_id="vpi-add")
        clear = gr.Button("Clear support", elem_id="vpi-clear")
    gallery = gr.Gallery(label="support", columns=MAX_SUPPORT, fit_columns=False, height=170,
                         object_fit="contain", format="png", interactive=False,
                         elem_id="vpi-support")
    example_buttons = {}
    if examples:
        with gr.Row():
            gr.Markdown("Examples, one click:")
            for name, label in examples.items():
                example_buttons[name] = gr.Button(label, size="sm", elem_id=f"vpi-example-{name}")
    return _SupportColumn(editor, mask_file, add, clear, gallery, example_buttons)


def serve_demo(
    checkpoint: str | Path | None = None,
    *,
    engine_dir: str | Path | None = None,
    backend: str = "auto",
    device: str = "auto",
    host: str = "127.0.0.1",
    port: int = 7860,
    runs_dir: str | Path = RUNS_DIR,
    announce: Callable[[str], None] = lambda line: None,
) -> None:
    """Serve the demo page until interrupted (Ctrl-C).

    With neither ``checkpoint`` nor ``engine_dir`` the newest `vpi train` run under ``runs_dir``
    is used, and announced. Sets the environment variables that keep Gradio and the Hub offline
    in this process.
    """
    import_gradio()  # a missing extra fails before the model loads
    if checkpoint is None and engine_dir is None:
        checkpoint = find_latest_checkpoint(runs_dir)
        announce(f"no checkpoint given: using the newest run's {checkpoint}")
    with tempfile.TemporaryDirectory(prefix="vpi-demo-") as work_dir:
        session = DemoSession(checkpoint=checkpoint, engine_dir=engine_dir, backend=backend,
                              device=device, work_dir=work_dir)
        announce(session.open(backend)[0].reason)
        page = build_page(DemoHandlers(session))
        try:
            try:
                page.launch(server_name=host, server_port=port, share=False, ssr_mode=False,
                            quiet=True, footer_links=[], max_file_size=MAX_UPLOAD, show_error=False,
                            allowed_paths=[work_dir, str(EXAMPLES_DIR)], prevent_thread_lock=True)
            except OSError:  # Gradio's message names its environment variables, not our flags
                raise VpiError(f"cannot serve on {host}:{port}: the port is taken, or the address "
                               "is not this machine's; pass another --port or --host") from None
            announce(f"serving on http://{host}:{port} " + (
                "(this machine only; --host 0.0.0.0 opens it to the network)" if _loopback(host)
                else "(reachable from other machines: anyone who reaches this port can use it)"))
            page.block_thread()  # until Ctrl-C
        finally:
            page.close()


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
