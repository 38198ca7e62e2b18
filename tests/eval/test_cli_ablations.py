"""The paper's ablations from one `vpi eval` command: Table 1 (--compare the deterministic twin,
--shots 1,5), Fig. 3 (--samples 1..10 --plot) and Table 2 (--aggregation variance,mean)."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import torch

from vpi.checkpoint import save_checkpoint
from vpi.config import Config, ModelConfig, get_preset
from vpi.data import build_episodes, collate_episodes
from vpi.model import VPIModel


def _sensitive_checkpoint(path: Path, config: Config, model_config: ModelConfig) -> Path:
    """A random tiny model made to respond to z and to each shot's variance, with logits centred
    on 0, so that L, k and the k-shot rule visibly change its scores (at random init they barely
    would)."""
    torch.manual_seed(0)
    model = VPIModel(model_config).eval()
    episodes = build_episodes(config.data, "test", shots=1, episodes=4, seed=0)
    batch = collate_episodes([episodes[i] for i in range(4)])
    with torch.no_grad():
        model.decoder.prototype_proj.weight.mul_(20)
        model.prior_net.mean.weight.mul_(50)
        model.prior_net.logvar.weight.mul_(300)
        mean, var = model.prior(batch.support_images, batch.support_masks)
        size = batch.query_image.shape[-2:]
        logits = model.decode(model.encoder(batch.query_image), mean[:, None], size)
        model.decoder.head.bias.sub_(logits.median())
    return save_checkpoint(path, model, dataclasses.replace(config, model=model_config), step=0)


def test_one_command_sweeps_model_twin_shots_samples_and_rule(tmp_path: Path) -> None:
    config = get_preset("tiny")
    vpi_ckpt = _sensitive_checkpoint(tmp_path / "vpi.pt", config, config.model)
    twin = _sensitive_checkpoint(tmp_path / "twin.pt", config,
                                 dataclasses.replace(config.model, probabilistic=False))
    report_path, plot = tmp_path / "ablations.json", tmp_path / "fig3.png"
    done = subprocess.run(
        [sys.executable, "-m", "vpi", "eval", str(vpi_ckpt), "--compare", str(twin),
         "--shots", "1,2", "--samples", "1..3", "--aggregation", "variance,mean",
         "--episodes", "4", "--no-baselines", "--json", str(report_path), "--plot", str(plot)],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(report_path.read_text())
    assert report["settings"]["shots"] == [1, 2] and report["settings"]["samples"] == [1, 2, 3]
    assert report["settings"]["aggregation"] == ["variance", "mean"]
    assert plot.read_bytes()[:4] == b"\x89PNG"

    iou = {(e["label"], e["shots"], e["samples"], e["aggregation"]): e["class_iou"]["mean"]
           for e in report["summary"]}
    assert len(iou) == 2 * 2 * 3 * 2
    model, det = "probabilistic", "deterministic"
    assert {label for label, *_ in iou} == {model, det}
    for label in (model, det):
        for L in (1, 2, 3):  # with one shot, Eq. 6 and Eq. 10 are the same prior
            assert iou[label, 1, L, "variance"] == iou[label, 1, L, "mean"]
    for k in (1, 2):  # the twin decodes its mean once, whatever L
        for rule in ("variance", "mean"):
            assert len({iou[det, k, L, rule] for L in (1, 2, 3)}) == 1
    # The twin's variance head never trains: it fuses shots by the plain mean whatever the rule.
    assert iou[det, 2, 1, "variance"] == iou[det, 2, 1, "mean"]
    assert len({iou[model, 1, L, "variance"] for L in (1, 2, 3)}) > 1  # samples of z matter
    assert any(iou[model, 2, L, "variance"] != iou[model, 2, L, "mean"] for L in (1, 2, 3))


def test_scoring_may_change_the_refinement_of_a_checkpoint_and_nothing_it_trained(
    tmp_path: Path,
) -> None:
    """`--set model.refine_passes` scores the same checkpoint refined; a field its weights
    fix (the latent width) is one clear line and a non-zero exit."""
    config = get_preset("tiny")
    checkpoint = _sensitive_checkpoint(tmp_path / "vpi.pt", config, config.model)

    def score(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "vpi", "eval", str(checkpoint), "--episodes", "4",
             "--no-baselines", "--json", str(tmp_path / "eval.json"), *extra],
            capture_output=True, text=True, timeout=300)

    def fb_iou() -> float:
        return json.loads((tmp_path / "eval.json").read_text())["summary"][0]["fb_iou"]["mean"]

    assert score().returncode == 0
    plain = fb_iou()
    assert score("--set", "model.refine_passes=5").returncode == 0
    assert fb_iou() != plain
    refused = score("--set", "model.latent_dim=8")
    assert refused.returncode != 0
    assert refused.stderr.strip().splitlines() == [
        "error: model.latent_dim: the checkpoint's weights fix the model; only "
        "refine_passes, self_support, blocks_per_sample may change"]
