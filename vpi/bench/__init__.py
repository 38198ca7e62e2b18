"""Benchmarks of the deployed pipeline: latency, throughput and memory over backends x L x mode x
batch size.

Example::

    from vpi.bench import BenchSettings, resolve_model, run_benchmark

    report = run_benchmark(resolve_model(preset="tiny"), BenchSettings(samples=(1, 6), repeats=5))
    report["comparisons"]["looped_over_batched"]  # p50 ratios per backend, L and B
"""

from vpi.bench.cell import decode_batched, decode_looped
from vpi.bench.plot import plot_bench
from vpi.bench.report import bench_table, summary_lines, write_json
from vpi.bench.source import BenchModel, resolve_model
from vpi.bench.suite import MODES, BenchSettings, run_benchmark

__all__ = [
    "BenchModel",
    "BenchSettings",
    "MODES",
    "bench_table",
    "decode_batched",
    "decode_looped",
    "plot_bench",
    "resolve_model",
    "run_benchmark",
    "summary_lines",
    "write_json",
]
