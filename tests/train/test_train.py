import pytest
import torch

from vpi.checkpoint import load_model, read_checkpoint
from vpi.config import apply_overrides
from vpi.data import build_episodes, collate_episodes
from vpi.model import VPIModel
from vpi.train import loop, train
from vpi.train.loop import lr_factor


def _config(tiny_config, tmp_path, **train_fields):
    return apply_overrides(tiny_config, {"train": {"out_dir": str(tmp_path), **train_fields}})


def _weights(path):
    return read_checkpoint(path)["model"]


def _held_out_ce(model, config):
    """Cross-entropy on fixed training-split episodes with fixed noise: comparable across models."""
    episodes = build_episodes(config.data, "train", shots=1, episodes=16, seed=123)
    batch = collate_episodes([episodes[i] for i in range(16)])
    noise = torch.zeros(16, config.model.latent_dim)
    with torch.no_grad():
        return model.train()(batch, noise)["ce"].item()


@pytest.mark.slow
def test_a_few_hundred_steps_lower_the_loss(tiny_config, tmp_path):
    config = _config(tiny_config, tmp_path, steps=200, log_every=50, checkpoint_every=1000)
    torch.manual_seed(config.train.seed)  # train() builds its initial model from this seed too
    before = _held_out_ce(VPIModel(config.model), config)
    result = train(config)
    after = _held_out_ce(load_model(result.last_checkpoint)[0], config)
    assert after < 0.6 * before, (before, after)


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tiny_config, tmp_path, schedule,
                                                               monkeypatch):
    config = _config(tiny_config, tmp_path, steps=12, checkpoint_every=6, lr_schedule=schedule)
    full, resumed = run_interrupted_and_resumed(config, tmp_path, monkeypatch, at_step=6)
    assert resumed.step == 12
    a, b = _weights(full.last_checkpoint), _weights(resumed.last_checkpoint)
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)


def run_interrupted_and_resumed(config, tmp_path, monkeypatch, at_step):
    """The run of ``config`` uninterrupted, and the same run stopped by Ctrl-C as step
    ``at_step`` + 1 begins, then resumed to its end: their TrainResults."""
    full = train(config, run_dir=tmp_path / "full")
    set_rates = loop._set_learning_rates

    def interrupt(optimizer, config, step):
        if step == at_step:
            raise KeyboardInterrupt
        set_rates(optimizer, config, step)

    monkeypatch.setattr(loop, "_set_learning_rates", interrupt)
    with pytest.raises(KeyboardInterrupt):
        train(config, run_dir=tmp_path / "half")
    monkeypatch.setattr(loop, "_set_learning_rates", set_rates)
    return full, train(config, resume=tmp_path / "half")


def test_cosine_schedule_anneals_from_the_base_rates_to_zero(tiny_config):
    cosine = apply_overrides(tiny_config, {"train": {"steps": 100, "lr_schedule": "cosine"}})
    assert [lr_factor(s, cosine) for s in (0, 50, 100)] == pytest.approx([1.0, 0.5, 0.0], abs=1e-9)
    assert lr_factor(25, cosine) == pytest.approx(0.5 * (1 + 2**-0.5))
    assert {lr_factor(s, tiny_config) for s in (0, 25, 49)} == {1.0}  # "constant", the paper's


def test_encoder_stages_deep_trains_only_the_last_stage(tiny_config, tmp_path):
    config = _config(tiny_config, tmp_path, steps=2, checkpoint_every=2, encoder_stages="deep")
    torch.manual_seed(config.train.seed)  # train() builds its initial model from this seed too
    before = VPIModel(config.model).state_dict()
    after = _weights(train(config).last_checkpoint)
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    encoder = {name for name in changed if name.startswith("encoder.")}
    assert encoder and all(name.startswith("encoder.deep_stage.") for name in encoder), encoder
    assert any(name.startswith("decoder.") for name in changed)


def test_run_writes_config_metrics_and_both_checkpoints(tiny_config, tmp_path):
    result = train(_config(tiny_config, tmp_path, steps=4, log_every=2, checkpoint_every=2))
    names = {p.name for p in result.run_dir.iterdir()}
    assert {"config.json", "metrics.jsonl", "last.pt", "best.pt"} <= names
    assert read_checkpoint(result.last_checkpoint)["step"] == 4
    assert not [n for n in names if n.endswith(".tmp")]


def test_best_checkpoint_is_chosen_on_validation_episodes_and_says_so(tiny_config, tmp_path):
    import json

    result = train(_config(tiny_config, tmp_path, steps=4, eval_every=2, eval_episodes=6,
                           checkpoint_every=2))
    selection = read_checkpoint(result.best_checkpoint)["selection"]
    assert selection["by"] == "validation class-IoU" and selection["split"].startswith("val")
    assert selection["step"] in (2, 4) and selection["episodes"] == 6
    assert {"class_iou", "swapped_class_iou", "support_gain"} <= set(selection)
    records = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    validation = [r["validation"] for r in records if "validation" in r]
    assert len(validation) == 2 and all("support_gain" in v for v in validation)
    # The validation episodes are a seed stream of their own, never the reported test episodes.
    val = build_episodes(tiny_config.data, "val", shots=1, episodes=2, seed=0)
    test = build_episodes(tiny_config.data, "test", shots=1, episodes=2, seed=0)
    assert not torch.equal(val[0].query_image, test[0].query_image)


def test_without_periodic_eval_best_is_the_last_step(tiny_config, tmp_path):
    result = train(_config(tiny_config, tmp_path, steps=3, checkpoint_every=3))
    selection = read_checkpoint(result.best_checkpoint)["selection"]
    assert selection == {"by": "last step", "why": "periodic eval is off", "step": 3}


def test_validation_on_one_class_has_no_swap_and_the_matcher_is_said(tiny_config, tmp_path,
                                                                      capsys):
    """An FSS split with a single validation class (realphoto's heldout4) trains: the swapped
    control needs two classes, so validation reports without it; the run says why the tiny
    encoder gets no training-free matcher."""
    import json

    from data.fixtures import make_fss, write_lines
    from rich.console import Console

    root = make_fss(tmp_path / "fss")
    splits = tmp_path / "splits" / "fss"
    write_lines(splits / "trn.txt", ["abacus", "banana", "cactus"])
    write_lines(splits / "val.txt", ["drum"])
    write_lines(splits / "test.txt", ["eagle", "fig"])
    config = apply_overrides(_config(tiny_config, tmp_path, steps=4, eval_every=2, eval_episodes=3),
                             {"data": {"dataset": "fss", "root": str(root),
                                       "splits": str(tmp_path / "splits"), "image_size": 32}})
    result = train(config, console=Console(width=200))
    out = capsys.readouterr().out
    assert "no training-free matcher: the tiny encoder has no ImageNet weights" in out
    records = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").open()]
    validation = [r["validation"] for r in records if "validation" in r]
    assert len(validation) == 2
    assert all("class_iou" in v and "swapped_class_iou" not in v for v in validation)


def test_the_failure_threshold_chosen_on_validation_travels_in_best_checkpoint(
        tiny_config, tmp_path, monkeypatch):
    """Validation feeds every episode's maps to the uncertainty scores, and the threshold they
    choose is recorded with the selection that `vpi segment` and `vpi export` read."""
    from vpi.checkpoint import failure_threshold
    from vpi.eval.uncertainty import UncertaintyAccumulator

    seen: list[int] = []

    def flag(self):
        seen.append(len(self.episode_iou))
        return {"map": "entropy", "threshold": 0.25, "episodes": len(self.episode_iou)}

    monkeypatch.setattr(UncertaintyAccumulator, "failure_flag", flag)
    result = train(_config(tiny_config, tmp_path, steps=2, eval_every=2, eval_episodes=6))
    state = read_checkpoint(result.best_checkpoint)
    assert state["selection"]["failure_flag"] == {"map": "entropy", "threshold": 0.25, "episodes": 6}
    assert failure_threshold(state) == 0.25 and 6 in seen
