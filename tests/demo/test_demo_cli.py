"""`vpi demo` from the command line: what it says when it starts, where it binds, its errors."""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from demo_helpers import free_port
from runtime.helpers import run_cli

from vpi.demo.page import _PRIVATE_ENV


def test_it_serves_the_newest_run_on_loopback_and_says_so(demo_server):
    text = "".join(demo_server.lines)
    run = demo_server.checkpoint.parent.name
    assert f"no checkpoint given: using the newest run's runs/{run}/best.pt" in text
    assert "backend: torch" in text
    port = demo_server.url.rsplit(":", 1)[1]
    assert f"serving on http://127.0.0.1:{port} (this machine only; --host 0.0.0.0 opens it" in text
    with urllib.request.urlopen(demo_server.url, timeout=30) as response:
        assert response.status == 200
    listening = _listening_addresses(int(port))
    if listening is None:
        pytest.skip("no /proc/net/tcp here to read which address the server bound")
    assert listening == {"127.0.0.1"}


def _listening_addresses(port: int) -> set[str] | None:
    """The IPv4 addresses with a socket listening on ``port``, from the kernel's table."""
    table = Path("/proc/net/tcp")
    if not table.is_file():
        return None
    found = set()
    for line in table.read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
            found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


def test_without_gradio_one_line_names_the_extra(monkeypatch, capsys, tiny_checkpoint):
    for name in _PRIVATE_ENV:  # what import_gradio sets, restored after the test
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setitem(sys.modules, "gradio", None)  # `import gradio` now fails as if absent
    code, _, err = run_cli(monkeypatch, capsys, "demo", tiny_checkpoint)
    assert code == 2
    assert err.strip() == "error: the demo page needs Gradio: pip install 'vpi[demo]'"


def test_a_checkpoint_and_an_export_are_one_too_many(monkeypatch, capsys, tiny_checkpoint, tmp_path):
    code, _, err = run_cli(monkeypatch, capsys, "demo", tiny_checkpoint, "--engine-dir", tmp_path)
    assert code == 2 and err.strip() == "error: give a checkpoint or --engine-dir, not both"


def test_without_a_run_it_says_how_to_get_one(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr("vpi.demo.page.import_gradio", lambda: None)
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(monkeypatch, capsys, "demo")
    assert code == 2 and "no run of `vpi train` found under 'runs'" in err


def test_a_taken_port_is_one_line(tiny_checkpoint):
    pytest.importorskip("gradio", reason="the demo page needs the demo extra: pip install -e '.[demo]'")
    with socket.socket() as taken:
        port = free_port()
        taken.bind(("127.0.0.1", port))
        taken.listen()
        done = subprocess.run([sys.executable, "-m", "vpi", "demo", str(tiny_checkpoint), "--port",
                               str(port), "--device", "cpu"], capture_output=True, text=True,
                              timeout=300)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (f"error: cannot serve on 127.0.0.1:{port}: the port is taken, or "
                                   "the address is not this machine's; pass another --port or --host")
