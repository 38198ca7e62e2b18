"""The interleaved rounds of measure_cells: every cell once per round, in a seeded order."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from vpi.bench import cell as cell_module

CELLS = [(1, "batched", 1), (1, "looped", 1), (6, "batched", 4), (6, "looped", 4)]


def _record_rounds(monkeypatch: pytest.MonkeyPatch, seed: int, rounds: int) -> list[list[Any]]:
    calls: list[tuple[str, int, str, int]] = []

    def fake_run(runner: Any, clock: Any, inputs: Any, samples: int, mode: str, batch: int
                 ) -> tuple[float, ...]:
        calls.append((runner, samples, mode, batch))
        return 1.0, 2.0, 3.0

    monkeypatch.setattr(cell_module, "time_run", fake_run)
    memory = SimpleNamespace(reset=lambda: None, peak_mb=lambda: 5.0)
    lanes = [SimpleNamespace(name=name, runner=name, clock=None, memory=memory, inputs=None)
             for name in ("torch", "onnx")]
    measured = cell_module.measure_cells(lanes, CELLS, warmup=1, repeats=rounds - 1, seed=seed)
    assert all(entry["end_to_end_ms"]["n"] == rounds - 1 for entry in measured.values())
    # B queries per 2 ms of decoder: queries/s grow with the batch size
    assert {key[3]: entry["throughput_qps"] for key, entry in measured.items()} == {1: 500.0, 4: 2000.0}
    per_round = len(lanes) * len(CELLS)
    return [calls[i:i + per_round] for i in range(0, len(calls), per_round)]


def test_each_round_runs_every_cell_once_with_a_backends_cells_together(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for round_ in _record_rounds(monkeypatch, seed=0, rounds=6):
        assert sorted(round_) == sorted((b, *c) for b in ("torch", "onnx") for c in CELLS)
        backends = [call[0] for call in round_]
        assert backends[:4] == [backends[0]] * 4 and backends[4:] == [backends[4]] * 4


def test_the_order_changes_between_rounds_and_is_fixed_by_the_seed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rounds = _record_rounds(monkeypatch, seed=3, rounds=8)
    assert len({tuple(r) for r in rounds}) > 1
    assert _record_rounds(monkeypatch, seed=3, rounds=8) == rounds
    assert _record_rounds(monkeypatch, seed=4, rounds=8) != rounds
