"""`vpi train` and `vpi eval` on a real benchmark layout (a tiny VOC tree made by the fixtures)."""

import json
import subprocess
import sys

from fixtures import make_voc


def _vpi(*args, cwd):
    return subprocess.run([sys.executable, "-m", "vpi", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def test_train_and_eval_on_pascal_layout_record_the_protocol(tmp_path):
    root = make_voc(tmp_path / "VOC2012")
    common = ["--dataset", "pascal", "--root", str(root), "--fold", "0"]
    done = _vpi("train", "--preset", "tiny", *common, "--steps", "2", "--no-eval", "--out", "runs",
                "--set", "eval.episodes=4", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (run,) = (tmp_path / "runs").iterdir()
    assert (run / "splits" / "pascal" / "val" / "fold0.txt").is_file()  # lists beside the run

    done = _vpi("eval", str(run / "best.pt"), "--episodes", "4", "--score-at", "original",
                "--seeds", "0,1", "--splits", str(run / "splits"), "--json", "report.json",
                cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    settings = report["settings"]
    assert settings["dataset"] == "pascal" and settings["score_at"] == "original"
    assert settings["seeds"] == [0, 1] and settings["shots"] == [1]
    assert {r["seed"] for r in report["runs"]} == {0, 1}


def test_missing_dataset_folder_is_one_line_before_anything_runs(tmp_path):
    done = _vpi("train", "--preset", "tiny", "--dataset", "pascal", "--root", "missing",
                "--out", "runs", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "missing" in done.stderr
    assert not (tmp_path / "runs").exists()
