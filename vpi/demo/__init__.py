"""`vpi demo`: a local web page to segment your own photos from a few painted examples.

The page (page.py, Gradio from the ``demo`` extra) only wires components to plain callbacks
(handlers.py); what they compute lives in inputs.py (page values -> checked arrays), session.py
(one Segmenter per backend, and what a request writes: the files of `vpi segment`) and
examples.py (the examples the page loads with one click). Only page.py imports Gradio.
"""

from vpi.demo.page import serve_demo

__all__ = ["serve_demo"]
