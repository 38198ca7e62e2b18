"""The training loop: Adam with backbone/head learning rates, periodic eval, atomic checkpoints.

Episode ``step * batch + j`` of the (seeded) training set is the j-th of step ``step``, and the
checkpoint holds the RNG states: a run resumed from its last checkpoint continues exactly as the
uninterrupted run would have.
"""

from __future__ import annotations

import json
import math
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, Subset

from vpi.checkpoint import read_checkpoint, save_checkpoint
from vpi.config import Config, config_from_dict, config_to_dict
from vpi.data import VALIDATION, EpisodeBatch, build_episodes, collate_episodes
from vpi.data.registry import write_splits
from vpi.device import autocast, autocast_dtype, resolve_device
from vpi.errors import ConfigError
from vpi.eval.controls import CachedEpisodes, SwappedSupport, support_gain
from vpi.eval.matcher import PrototypeMatcher, build_matcher
from vpi.eval.scoring import score_model
from vpi.eval.uncertainty import UncertaintyAccumulator
from vpi.io import atomic_write_text, ensure_writable_dir
from vpi.metrics import IoUAccumulator
from vpi.model import VPIModel
from vpi.train.averaging import WeightAverage
from vpi.train.distributed import (
    DistContext,
    StepShardSampler,
    all_reduce_sum,
    episode_noise,
    init_distributed,
    per_rank_batch,
    shutdown_distributed,
    step_indices,
)
from vpi.train.seeding import capture_rng, restore_rng, seed_everything

LAST, BEST = "last.pt", "best.pt"


@dataclass
class TrainResult:
    run_dir: Path
    last_checkpoint: Path
    best_checkpoint: Path
    step: int
    best_class_iou: float | None


def new_run_dir(config: Config) -> Path:
    """``<out_dir>/<preset>-<timestamp>``: runs sort by time, so the newest is easy to find."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    root = ensure_writable_dir(config.train.out_dir)
    run_dir = root / f"{config.name}-{stamp}"
    suffix = 1
    while run_dir.exists():
        suffix += 1
        run_dir = root / f"{config.name}-{stamp}-{suffix}"
    return ensure_writable_dir(run_dir)


def resolve_resume(path: str | Path) -> Path:
    """A run folder or a checkpoint file -> the checkpoint to resume from."""
    path = Path(path)
    return path / LAST if path.is_dir() else path


def train(
    config: Config,
    *,
    resume: str | Path | None = None,
    run_dir: str | Path | None = None,
    console: Console | None = None,
) -> TrainResult:
    """Train ``config`` (or continue the run ``resume`` points at) and return where it wrote.

    Under torchrun (WORLD_SIZE > 1) this is one rank of a data-parallel run: the global batch is
    split across ranks, gradients are averaged, and only rank 0 logs and writes checkpoints.
    """
    state: dict[str, Any] | None = None
    if resume is not None:
        checkpoint = resolve_resume(resume)
        state = read_checkpoint(checkpoint)
        config = config_from_dict(state["config"])
        run_dir = checkpoint.parent
    device = resolve_device(config.train.device)
    context = init_distributed(device.type)
    if context.active and device.type == "cuda":
        device = torch.device("cuda", context.local_rank)
        torch.cuda.set_device(device)
    console = console if console is not None and context.is_main else Console(quiet=True)
    try:
        return _train(config, state, run_dir, device, context, console)
    finally:
        shutdown_distributed(context)


def _train(
    config: Config,
    state: dict[str, Any] | None,
    run_dir: str | Path | None,
    device: torch.device,
    context: DistContext,
    console: Console,
) -> TrainResult:
    seed_everything(config.train.seed)
    # Data first: a dataset's layout check fails before any weights load or folder is made.
    train_cfg = config.train
    val_set = _validation_set(config)
    if val_set is None and train_cfg.eval_every:
        console.print(f"{config.data.dataset} has no validation split apart from its test images: "
                      "no periodic eval, best.pt is the last step")
    train_set = build_episodes(config.data, "train", shots=config.data.shots,
                               episodes=train_cfg.steps * train_cfg.batch_size,
                               seed=train_cfg.seed, augment=True)
    run = _start_run(config, state, run_dir, device, context, console)
    network = _parallel(run.model, config, device, context)

    loader = _train_loader(train_set, config, run.step, context)
    use_amp = device.type == "cuda" and train_cfg.amp
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and autocast_dtype(device) == torch.float16)
    if val_set is not None and train_cfg.eval_every and run.step == 0:
        matcher = _matcher_validation(val_set, config, device, context, console)
        if matcher is not None and context.is_main:
            _append(run.log_path, {"step": 0, "matcher_validation": matcher})
    run.model.train()
    columns = [TextColumn("[bold]train"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TextColumn("{task.fields[stats]}"), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("train", total=train_cfg.steps, completed=run.step, stats="")
        tic = time.perf_counter()
        try:
            for batch in loader:
                losses = _step(run, network, batch, scaler, device, use_amp)
                if context.is_main and (run.step % train_cfg.log_every == 0
                                        or run.step == train_cfg.steps):
                    tic = _log_step(run, losses, tic, progress, task)
                progress.update(task, completed=run.step)
                if val_set is not None and train_cfg.eval_every and run.step % train_cfg.eval_every == 0:
                    _validate(run, val_set, device, console)
                if run.step % train_cfg.checkpoint_every == 0:
                    run.save(LAST)
        except KeyboardInterrupt:
            run.save(LAST)
            console.print(f"interrupted at step {run.step}; continue: vpi train --resume {run.run_dir}")
            raise
    if run.best is None:  # no periodic eval ran: the last weights are the best we know
        run.selection = {**run.selection, "step": run.step}
        with run.averaged():
            run.save(BEST)
    last = run.save(LAST)
    return TrainResult(run.run_dir, last, run.run_dir / BEST, run.step, run.best)


@dataclass
class _Run:
    """What a run carries from step to step and writes into each checkpoint: a resumed run
    continues from exactly these."""

    config: Config
    model: VPIModel
    optimizer: torch.optim.Optimizer
    run_dir: Path
    context: DistContext
    step: int = 0
    best: float | None = None  # the best validation class-IoU so far
    selection: dict[str, Any] = field(default_factory=dict)  # how best.pt was chosen
    average: WeightAverage | None = None  # train.average_decay's, where above 0

    def averaged(self) -> AbstractContextManager[None]:
        """The model holds the weights that validation scores and best.pt keeps in this block."""
        return self.average.applied() if self.average is not None else nullcontext()

    @property
    def log_path(self) -> Path:
        return self.run_dir / "metrics.jsonl"

    def save(self, name: str) -> Path:
        """Checkpoint ``name`` in the run folder, with the RNG states (written by rank 0 only)."""
        path = self.run_dir / name
        if self.context.is_main:
            average = {} if self.average is None else {"average": self.average.state_dict()}
            save_checkpoint(path, self.model, self.config, step=self.step, optimizer=self.optimizer,
                            extra={"rng": capture_rng(), "best_class_iou": self.best,
                                   "selection": self.selection, **average})
        return path


def _start_run(
    config: Config,
    state: dict[str, Any] | None,
    run_dir: str | Path | None,
    device: torch.device,
    context: DistContext,
    console: Console,
) -> _Run:
    """The model, run folder and optimizer: restored from ``state`` when resuming; else new, with
    the config (and the split lists used, so the episodes can be rebuilt) written by rank 0."""
    if state is None and config.model.weights is None and config.model.backbone != "tiny":
        console.print("[yellow]warning:[/] training from random init (no --weights given)")
    model = VPIModel(config.model, pretrained=state is None).to(device)
    run_dir = _agree_on_run_dir(config, run_dir, context)  # after the weights loaded: no empty run
    run = _Run(config, model, _optimizer(model, config), run_dir, context,
               selection=_selection(config, None, None))
    if state is not None:
        model.load_state_dict(state["model"])
        run.optimizer.load_state_dict(state["optimizer"])
        run.step, run.best = state["step"], state.get("best_class_iou")
        run.selection = state.get("selection", run.selection)
        restore_rng(state["rng"])
        console.print(f"resuming {run_dir} at step {run.step}")
    elif context.is_main:
        atomic_write_text(run_dir / "config.json", json.dumps(config_to_dict(config), indent=2))
        if config.data.dataset != "builtin":
            write_splits(config.data, run_dir / "splits")
    if config.train.average_decay:
        run.average = WeightAverage(model, config.train.average_decay)
        if state is not None and "average" in state:
            run.average.load_state_dict(state["average"])
    return run


def _step(
    run: _Run,
    network: VPIModel | DistributedDataParallel,
    batch: EpisodeBatch,
    scaler: torch.amp.GradScaler,
    device: torch.device,
    use_amp: bool,
) -> dict[str, torch.Tensor]:
    """One update: the scheduled learning rates, each episode's own noise (so a resumed run draws
    what the uninterrupted one would), the losses, the backward pass; returns the losses."""
    config, train_cfg = run.config, run.config.train
    _set_learning_rates(run.optimizer, config, run.step)
    noise = episode_noise(step_indices(run.step, train_cfg.batch_size, run.context),
                          config.model.latent_dim, train_cfg.seed, config.model.likelihood_samples)
    with autocast(device, use_amp):
        losses = network(batch.to(device), noise.to(device), train_cfg.kl_weight,
                         train_cfg.similarity_weight, train_cfg.dice_weight,
                         train_cfg.kl_free_bits, train_cfg.dice_on_refined)
    run.optimizer.zero_grad(set_to_none=True)
    scaler.scale(losses["loss"]).backward()
    scaler.step(run.optimizer)
    scaler.update()
    if run.average is not None:
        run.average.update()
    run.step += 1
    return losses


def _log_step(
    run: _Run, losses: dict[str, torch.Tensor], tic: float, progress: Progress, task: TaskID
) -> float:
    """The losses and steps/s since ``tic`` into metrics.jsonl and the progress bar; returns the
    time the next interval starts."""
    rate = run.config.train.log_every / max(time.perf_counter() - tic, 1e-9)
    tic = time.perf_counter()
    record = {k: round(float(v.detach()), 5) for k, v in losses.items()}
    _append(run.log_path, {"step": run.step, **record, "steps_per_s": round(rate, 3)})
    progress.update(task, stats=" ".join(
        [f"{k} {v:.4f}" for k, v in record.items()] + [f"{rate:.2f} it/s"]))
    return tic


def _validate(run: _Run, val_set: Dataset, device: torch.device, console: Console) -> None:
    """Score the validation episodes, log the figures, and write best.pt when class-IoU beats the
    best so far."""
    with run.averaged():
        metrics = _evaluate(run.model, val_set, run.config, device, run.context)
        run.model.train()
        console.print(f"step {run.step}: validation {_describe(metrics)}")
        if run.context.is_main:
            _append(run.log_path, {"step": run.step, "validation": metrics})
        if run.best is None or metrics["class_iou"] > run.best:
            run.best = metrics["class_iou"]
            run.selection = _selection(run.config, run.step, metrics)
            run.save(BEST)


def _agree_on_run_dir(config: Config, run_dir: str | Path | None, context: DistContext) -> Path:
    """Rank 0 names (and creates) the run folder; the other ranks receive its name."""
    if run_dir is None:
        name = [str(new_run_dir(config)) if context.is_main else ""]
        if context.active:
            dist.broadcast_object_list(name, src=0)
        run_dir = name[0]
    return ensure_writable_dir(run_dir)


def _parallel(model: VPIModel, config: Config, device: torch.device, context: DistContext):
    """DDP where there are several ranks; the deterministic twin never uses its posterior net."""
    if not context.active:
        return model
    return DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None,
        find_unused_parameters=not config.model.probabilistic,
    )


def _validation_set(config: Config) -> Dataset | None:
    """The episodes that choose best.pt, sharing none of the reported test episodes; None where
    the dataset has no such split (``vpi.data.VALIDATION``) or periodic eval is off."""
    if config.data.dataset not in VALIDATION or not config.train.eval_every:
        return None
    return CachedEpisodes(build_episodes(config.data, "val", shots=config.eval.shots,
                                         episodes=config.train.eval_episodes, seed=config.eval.seed))


def _selection(config: Config, step: int | None, metrics: dict[str, Any] | None) -> dict[str, Any]:
    """How best.pt was chosen, for eval.json: the validation figures it won on, or why none."""
    if config.data.dataset not in VALIDATION or not config.train.eval_every:
        why = ("periodic eval is off" if config.data.dataset in VALIDATION
               else f"{config.data.dataset} has no validation split apart from its test images")
        return {"by": "last step", "why": why, "step": step}
    return {"by": "validation class-IoU", "split": f"val: {VALIDATION[config.data.dataset]}",
            "episodes": config.train.eval_episodes, "step": step, **(metrics or {})}


def _evaluate(
    predictor: VPIModel | PrototypeMatcher,
    val_set: Dataset,
    config: Config,
    device: torch.device,
    context: DistContext,
) -> dict[str, Any]:
    """Class-IoU, FB-IoU and the swapped-support control on the validation episodes: each rank
    scores its share, and the pooled counts are summed over ranks. A validation split of one class
    (an FSS list's single val class) has no other class to swap in: no control then. The
    ``failure_flag`` threshold that `vpi segment` flags likely failed queries by is chosen on the
    main process's share of the episodes (``vpi.eval.uncertainty``)."""
    class_ids = list(val_set.class_ids)
    sets = [("model", val_set)] + ([("swapped", SwappedSupport(val_set))] if len(class_ids) > 1
                                   else [])
    scores = {}
    flags = UncertaintyAccumulator(class_ids, config.eval.threshold, config.eval.seed)
    for name, episodes in sets:
        shard = Subset(episodes, range(context.rank, len(episodes), context.world))
        local = score_model(predictor, shard, samples=config.eval.samples, seed=config.eval.seed,
                            device=device, uncertainty=flags if name == "model" else None)
        counts = torch.stack([local.per_class[c] for c in class_ids])
        counts = all_reduce_sum(counts.to(device), context).cpu()
        pooled = IoUAccumulator(class_ids)
        for class_id, class_counts in zip(class_ids, counts, strict=True):
            pooled.add_counts(class_id, class_counts)
        scores[name] = pooled.compute()
    metrics = {"class_iou": round(scores["model"]["class_iou"], 5),
               "fb_iou": round(scores["model"]["fb_iou"], 5)}
    if "swapped" in scores:
        metrics["swapped_class_iou"] = round(scores["swapped"]["class_iou"], 5)
        metrics["support_gain"] = round(support_gain(scores["model"]["class_iou"],
                                                     scores["swapped"]["class_iou"]), 3)
    flag = flags.failure_flag()
    if flag is not None:
        metrics["failure_flag"] = flag
    return metrics


def _describe(metrics: dict[str, Any]) -> str:
    """One log line's worth of validation figures."""
    line = f"class-IoU {metrics['class_iou']:.3f}  FB-IoU {metrics['fb_iou']:.3f}"
    if "support_gain" in metrics:
        line += (f"  swapped support {metrics['swapped_class_iou']:.3f}  support gain "
                 f"{metrics['support_gain']:.1f} points")
    return line


def _matcher_validation(
    val_set: Dataset, config: Config, device: torch.device, context: DistContext, console: Console
) -> dict[str, Any] | None:
    """The training-free matcher on the validation episodes, once: the line every validation
    figure of the run should stand above (None, said, where it cannot run)."""
    try:
        matcher = build_matcher(config.model, device)
    except ConfigError as exc:
        console.print(f"validation: no training-free matcher: {exc}")
        return None
    metrics = _evaluate(matcher, val_set, config, device, context)
    console.print(f"validation, training-free matcher: {_describe(metrics)}")
    return metrics


def _optimizer(model: VPIModel, config: Config) -> torch.optim.Optimizer:
    """Adam with the backbone and head learning rates. A backbone rate of 0 freezes the encoder,
    and ``train.encoder_stages="deep"`` trains only its deep stage; frozen stages also skip their
    backward pass (a frozen encoder makes a step about 4x cheaper on a CPU)."""
    model.encoder.requires_grad_(False)
    params = []
    if config.train.lr_backbone > 0:
        trained = model.encoder if config.train.encoder_stages == "all" else model.encoder.deep_stage
        trained.requires_grad_(True)
        params.append(list(trained.parameters()))
    params.append(model.head_parameters())
    return torch.optim.Adam([{"params": p, "lr": lr}
                             for p, lr in zip(params, _base_rates(config), strict=True)])


def _base_rates(config: Config) -> list[float]:
    """The optimizer's groups' learning rates before any schedule: [backbone,] head."""
    train = config.train
    return ([train.lr_backbone] if train.lr_backbone > 0 else []) + [train.lr_head]


def lr_factor(step: int, config: Config) -> float:
    """The learning rates' multiplier for the update after ``step`` steps. A function of the step
    alone, so a resumed run follows the same schedule as an uninterrupted one."""
    if config.train.lr_schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * step / config.train.steps))
    return 1.0


def _set_learning_rates(optimizer: torch.optim.Optimizer, config: Config, step: int) -> None:
    factor = lr_factor(step, config)
    for group, rate in zip(optimizer.param_groups, _base_rates(config), strict=True):
        group["lr"] = rate * factor


def _train_loader(
    dataset: Dataset, config: Config, start_step: int, context: DistContext
) -> DataLoader:
    batch = config.train.batch_size
    sampler = StepShardSampler(start_step, config.train.steps, batch, context)
    # Its own generator: a DataLoader otherwise draws its base seed from the global RNG, which
    # a resumed run would then consume at another point than the uninterrupted one.
    return DataLoader(dataset, batch_size=per_rank_batch(batch, context), sampler=sampler,
                      num_workers=config.data.num_workers, collate_fn=collate_episodes,
                      generator=torch.Generator().manual_seed(config.train.seed))


def _append(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a") as handle:
        handle.write(json.dumps(record) + "\n")
