"""The doors between layers open one way: runtime loads nothing of export, and the CLI's help,
which reads the backend and dataset tables, loads no torch."""

from __future__ import annotations

import subprocess
import sys


def _loaded_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code``."""
    script = f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            check=True, timeout=300)
    return set(result.stdout.split())


def test_runtime_imports_no_export_train_or_bench():
    loaded = _loaded_after(
        "import importlib, pkgutil, vpi.runtime\n"
        "for info in pkgutil.walk_packages(vpi.runtime.__path__, 'vpi.runtime.'):\n"
        "    importlib.import_module(info.name)"
    )
    assert {"vpi.runtime.select", "vpi.runtime.registry", "vpi.runtime.tensorrt_runner"} <= loaded
    assert "torch" in loaded  # the runners did load
    wrong = sorted(m for m in loaded if m.split(".")[:2] in (["vpi", "export"], ["vpi", "train"],
                                                               ["vpi", "bench"]))
    assert wrong == []


def test_the_cli_loads_no_backend_library():
    loaded = _loaded_after("import vpi.cli")
    assert {"vpi.runtime.registry", "vpi.data.registry"} <= loaded
    assert not {"torch", "onnxruntime", "openvino", "tensorrt"} & loaded
