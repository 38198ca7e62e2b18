"""Two gloo processes under torchrun end where one process on the same global batch ends."""

import os
import subprocess
import sys

import pytest
import torch

from vpi.checkpoint import read_checkpoint
from vpi.config import apply_overrides
from vpi.train import train
from vpi.train.distributed import DistContext, StepShardSampler, episode_noise, step_indices


def _torchrun(*args: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
               "-m", "vpi", "train", "--preset", "tiny", "--device", "cpu", "--no-eval", *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def _assert_same_weights(path_a, path_b):
    a, b = read_checkpoint(path_a)["model"], read_checkpoint(path_b)["model"]
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5, msg=name)


def test_ranks_split_each_step_into_the_single_process_batch():
    ranks = [DistContext(rank=r, world=2) for r in range(2)]
    assert [list(step_indices(3, 4, c)) for c in ranks] == [[12, 13], [14, 15]]
    sampler = StepShardSampler(1, 3, 4, ranks[1])
    assert list(sampler) == [6, 7, 10, 11] and len(sampler) == 4


def test_episode_noise_depends_on_the_index_only():
    together = episode_noise([5, 6, 7], 4, seed=1)
    apart = torch.cat([episode_noise([5], 4, seed=1), episode_noise([6, 7], 4, seed=1)])
    assert torch.equal(together, apart)


@pytest.mark.slow
def test_two_process_run_matches_one_process_and_resumes(tiny_config, tmp_path):
    overrides = {"train": {"steps": 6, "batch_size": 4, "checkpoint_every": 3, "device": "cpu",
                           "out_dir": str(tmp_path / "single")}}
    single = train(apply_overrides(tiny_config, overrides))

    common = ["--steps", "6", "--batch-size", "4", "--set", "train.checkpoint_every=3"]
    _torchrun(*common, "--out", str(tmp_path / "ddp"))
    (ddp_run,) = (tmp_path / "ddp").iterdir()
    _assert_same_weights(single.last_checkpoint, ddp_run / "last.pt")

    # Stop a distributed run at its step-3 checkpoint, then resume it under torchrun.
    _torchrun("--steps", "3", "--batch-size", "4", "--set", "train.checkpoint_every=3",
              "--out", str(tmp_path / "resumed"))
    (resumed_run,) = (tmp_path / "resumed").iterdir()
    state = torch.load(resumed_run / "last.pt", weights_only=False)
    state["config"]["train"]["steps"] = 6
    torch.save(state, resumed_run / "last.pt")
    _torchrun("--resume", str(resumed_run))
    assert read_checkpoint(resumed_run / "last.pt")["step"] == 6
    _assert_same_weights(single.last_checkpoint, resumed_run / "last.pt")


def test_more_samples_of_episode_noise_keep_the_first():
    one, three = episode_noise([5, 6], 4, seed=1), episode_noise([5, 6], 4, seed=1, samples=3)
    assert one.shape == (2, 1, 4) and three.shape == (2, 3, 4)
    assert torch.equal(three[:, :1], one) and not torch.equal(three[:, 1], three[:, 2])
