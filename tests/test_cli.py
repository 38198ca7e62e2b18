"""The command line's contract for bad input: one clear line on stderr, exit code 2, no traceback."""

import subprocess
import sys

import pytest
import torch


def vpi(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "vpi", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def assert_one_line_error(done: subprocess.CompletedProcess, *fragments: str) -> None:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["train", "--preset", "nope"], ["unknown preset 'nope'"]),
        (["train", "--set", "model.backbone=alexnet"], ["model.backbone is 'alexnet'"]),
        (["train", "--weights", "/nonexistent/r50.pth"], ["weights file", "does not exist"]),
        (["train", "--devices", "3"], ["--devices 3 asks for more GPUs"]),
        (["train", "--preset", "tiny", "--out", "/proc/version"], ["exists and is not a folder"]),
        (["train", "--preset", "tiny", "--out", ""], ["output folder path is empty"]),
    ],
)
def test_train_bad_input(args, fragments, tmp_path):
    assert_one_line_error(vpi(*args, cwd=tmp_path), *fragments)
    assert not (tmp_path / "runs").exists()  # nothing written for a run that could not start


def test_weights_that_do_not_fit_the_backbone(tmp_path):
    path = tmp_path / "wrong.pth"
    torch.save({"conv.weight": torch.zeros(1)}, path)
    done = vpi("train", "--preset", "tiny", "--set", "model.backbone=resnet18", "--weights", str(path),
               "--out", str(tmp_path / "runs"))
    assert_one_line_error(done, "do not fit backbone 'resnet18'")


def test_eval_bad_input(tiny_checkpoint, tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_text("no")
    assert_one_line_error(vpi("eval", str(junk)), "is not a vpi checkpoint")
    assert_one_line_error(vpi("eval", str(tiny_checkpoint), "--shots", "11"), "--shots 11")
    assert_one_line_error(vpi("eval", str(tiny_checkpoint), "--samples", "0..3"), "--samples 0")
    assert_one_line_error(vpi("eval", str(tiny_checkpoint), "--samples", "5..2"), "is empty")
    assert_one_line_error(vpi("eval", str(tiny_checkpoint), "--aggregation", "median"), "'median'")


def test_eval_report_is_reproducible_and_scores_the_baselines(tiny_checkpoint, tmp_path):
    import json

    reports = []
    for name in ("a.json", "b.json"):
        done = vpi("eval", str(tiny_checkpoint), "--episodes", "8", "--samples", "2",
                   "--json", str(tmp_path / name))
        assert done.returncode == 0, done.stderr
        reports.append(json.loads((tmp_path / name).read_text()))
    assert reports[0]["summary"] == reports[1]["summary"]
    labels = [entry["label"] for entry in reports[0]["summary"]]
    assert labels == ["model", "all-foreground", "all-background", "colour",
                      "class-agnostic oracle"]
    assert reports[0]["settings"]["samples"] == [2]
    background = reports[0]["summary"][2]
    assert background["class_iou"]["mean"] == 0.0
    # Per-class figures name the classes (the held-out shapes of fold 0), in the JSON and printed.
    model_run = next(r for r in reports[0]["runs"] if r["label"] == "model")
    assert set(model_run["per_class_iou"]) <= {"star5", "ring", "cross", "crescent", "heart"}
    assert "class-IoU per class" in done.stdout
    assert any(name in done.stdout for name in model_run["per_class_iou"])


def test_eval_uncertainty_scores_each_map_and_writes_the_reliability_plot(tiny_checkpoint, tmp_path):
    import json

    done = vpi("eval", str(tiny_checkpoint), "--episodes", "8", "--samples", "3", "--uncertainty",
               "--no-baselines", "--json", str(tmp_path / "r.json"), "--plot", str(tmp_path / "f.png"))
    assert done.returncode == 0, done.stderr
    run = json.loads((tmp_path / "r.json").read_text())["runs"][0]
    flags = run["uncertainty"]
    assert set(flags["maps"]) == {"variance", "mutual_information", "entropy"}
    assert flags["episodes"] == run["episodes"] == 8
    for scores in flags["maps"].values():
        assert set(scores["corrected_class_iou"]) == {"0.01", "0.02", "0.05", "0.1"}
        # Correcting pixels to the truth can only help; 10% helps at least as much as 1%.
        curve = scores["corrected_class_iou"]
        assert run["class_iou"] - 1e-9 <= curve["0.01"] <= curve["0.1"] + 1e-9
        assert 0.0 <= scores["pixel_error_auroc"] <= 1.0
    assert 0.0 <= flags["ece"] <= 1.0
    assert "uncertainty: does each map flag the errors?" in done.stdout
    assert (tmp_path / "f-reliability.png").stat().st_size > 1000
