from pathlib import Path

from vpi.eval.plots import iou_axis_limits, plot_iou_against_samples


def test_a_flat_curve_gets_an_axis_that_shows_it_flat() -> None:
    low, high = iou_axis_limits([57.1, 57.6, 57.3])
    assert high - low >= 4.0
    assert low < 57.1 and high > 57.6


def test_a_steep_curve_fits_its_axis_and_stays_within_0_and_100() -> None:
    low, high = iou_axis_limits([1.0, 40.0, 99.0])
    assert (low, high) == (0.0, 100.0)
    low, high = iou_axis_limits([30.0, 50.0])
    assert (low, high) == (10.0, 70.0)


def _run(samples: int | None, iou: float) -> dict:
    return {"label": "model" if samples else "all-foreground", "shots": 1, "samples": samples,
            "aggregation": "variance" if samples else None, "episodes": 12,
            "class_iou": {"mean": iou}}


def test_fig3_plot_is_written_from_an_eval_report(tmp_path: Path) -> None:
    runs = [_run(L, 0.5 + 0.01 * L) for L in (1, 2, 3)] + [_run(None, 0.1)]
    report = {"settings": {"dataset": "builtin", "seeds": [0]}, "runs": runs, "summary": runs}
    out = plot_iou_against_samples(report, tmp_path / "fig3.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["fig3.png"]
