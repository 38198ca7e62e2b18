"""Typed, frozen configuration and the named presets.

Every setting lives in one of these dataclasses; the CLI and YAML files only fill them in. A
checkpoint stores ``config_to_dict(config)`` so that eval and export rebuild the exact model without
flags to remember.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from vpi.errors import ConfigError
from vpi.ranges import check_range, check_threshold

BACKBONES = ("tiny", "mobilenet_v2", "resnet18", "resnet50", "resnet101", "vgg16")
AGGREGATIONS = ("variance", "mean")  # Eq. 6 and Eq. 10
LR_SCHEDULES = ("constant", "cosine")  # "cosine" anneals both rates to 0 at the last step
ENCODER_STAGES = ("all", "deep")  # what train.lr_backbone trains: every stage, or the deep one only
PROTOTYPE_FEATURES = ("deep", "deep+mid")
# "features": the paper's segmentation net over query features and z tiled (SegmentationDecoder);
# "matching": z holds a foreground and a background prototype, and the decoder refines their
# similarity maps, never reading raw deep features (MatchingDecoder): it carries over to photos.
DECODERS = ("features", "matching")
SELF_SUPPORT_FROM = ("decoder", "matcher")  # ModelConfig.self_support_from
MAX_BACKGROUND_PARTS = 8  # ModelConfig.background_parts
BLOCKS_PER_SAMPLE = ("all", "none")  # ModelConfig.blocks_per_sample
LIKELIHOOD_Z = ("prior", "posterior", "both")  # ModelConfig.likelihood_z
LIKELIHOOD_RULES = ("mean", "best", "mixture")  # ModelConfig.likelihood_rule
ENCODER_DEPTHS = ("full", "mid")  # "mid" ends the encoder before its last stage (build_backbone)
DATASETS = ("builtin", "pascal", "coco", "fss")
# The built-in objects' surfaces: two random colours in the class's pattern, or a crop of the
# class's own photograph (vpi.data.builtin), which ImageNet features read as they read photos.
SURFACES = ("palette", "photo")
OBJECT_SIZES = (0.3, 0.55)  # the built-in objects' diameters, of the image side, by default
MAX_OBJECT_SIZE = 1.5  # an object may overflow the frame, as a close-up in a photograph does
MAX_SHOTS = 10  # K range of the exported prior encoder
MAX_SAMPLES = 16  # L range of the exported decoder
MAX_REFINE_PASSES = 10  # model.refine_passes: each pass unrolls into the decoder graph
MAX_BATCH = 16  # B range of both exported graphs: independent items per call
SEGMENT_BATCH = 4  # queries per decoder call of `vpi segment`: most of the gain, little memory
# The defaults every entry point shares (the CLI, the Segmenter, eval and the library's functions).
DEFAULT_SAMPLES = 6  # L, Monte Carlo samples of z (Eq. 5)
DEFAULT_THRESHOLD = 0.5  # foreground probability over which a pixel is in the mask
DEFAULT_PRESET = "demo"  # what `vpi train` trains and `vpi bench` measures when told no other
RUNS_DIR = "runs"  # the folder of training runs, where the newest checkpoint is looked up
EXPORT_DIR = "export"  # where `vpi export` writes without --out
SEGMENT_DIR = "segment-out"  # where `vpi segment` writes without --out
BENCH_CACHE = "runs/bench-cache"  # `vpi bench`'s random-weight checkpoints and their exports
BENCH_SAMPLES = tuple(range(1, 11))  # the L that `vpi bench` sweeps unless told: 1..10
# `vpi export`: a reduced precision may lose GATE_MARGIN class-IoU points against PyTorch fp32 on
# GATE_EPISODES held-out episodes (vpi.export.gate); int8 calibrates on CALIBRATION_EPISODES.
GATE_EPISODES = 100
GATE_MARGIN = 0.5
CALIBRATION_EPISODES = 200


@dataclass(frozen=True)
class ModelConfig:
    """The network: encoder, latent prototype and decoder."""

    backbone: str = "mobilenet_v2"
    encoder_depth: str = "full"  # or "mid": mid-level features, which generalise better and cost less
    weights: str | None = None  # a state-dict path, "imagenet", or None for random init
    latent_dim: int = 128
    decoder_channels: tuple[int, int, int] = (64, 32, 16)  # the three decoder blocks
    probabilistic: bool = True  # False: the deterministic twin of the ablation (z = mean, no KL)
    aggregation: str = "variance"  # k-shot priors: "variance" (Eq. 6) or "mean" (Eq. 10)
    likelihood_z: str = "prior"  # where z of the likelihood term is drawn in training (Eq. 4)
    # "posterior" is the ELBO as the paper writes it, "both" adds the prior-sample term to it, so
    # that training also decodes what test time decodes (LIKELIHOOD_Z).
    # Prior samples per episode in the likelihood term, and how their losses combine: "mean"
    # (each sample is scored alone, so any reaction to the noise costs), "best" (only the best
    # sample is scored) or "mixture" (the likelihood of the mixture of the samples, as
    # stochastic segmentation networks train; a soft "best"). LIKELIHOOD_RULES.
    likelihood_samples: int = 1
    likelihood_rule: str = "mean"
    # An extension beyond the paper (PANet, PFENet): the decoder also reads the cosine similarity
    # between each prototype and the query's features, projected to the latent space, per pixel.
    # False is the paper's decoder: query features concatenated with z tiled over space.
    similarity_map: bool = False
    # Bias of the prior and posterior log-variance heads at init; None keeps PyTorch's init
    # (variance about 1, which swamps a prototype of norm about 1 with noise early in training).
    initial_logvar: float | None = None
    prototype_features: str = "deep"  # what the prior/posterior nets pool: "deep" or "deep+mid"
    decoder: str = "features"  # or "matching" (DECODERS); latent_dim is then two prototypes' widths
    dilated: bool = True  # False keeps ImageNet's strides in the deep stages (build_backbone)
    # The matching decoder's options: "identity" keeps prototypes and keys ImageNet features
    # (latent_dim = 2 x the pooled width), "learned" trains the projection (GaussianHead); without
    # skips it never reads the query's raw appearance (docs/reproduce.md, "Real photographs").
    projection: str = "learned"
    decoder_skips: bool = True
    # Rounds of self-support matching (matching decoder): the query's confident pixels, pooled,
    # pull the prototypes towards its own appearance before the final decision. Nothing in a
    # round is learned, so a trained model may decide with more rounds than its loss saw:
    # ``self_support_in_training`` (None: as many) is what training runs; the demo trains with
    # one round and decides with two, which scored better on photos than training with two.
    self_support: int = 0
    self_support_in_training: int | None = None
    # Parts of the support's background (matching decoder; vpi.model.parts): this many cluster
    # centres of the background away from the object, each a further prototype beside the
    # background one, so that a query pixel is foreground only when nearer the foreground
    # prototype than every background one. They are not sampled (z's Gaussian is the foreground
    # and background prototypes); latent_dim holds 2 + parts prototypes.
    background_parts: int = 0
    # What decides the confident pixels of the first self-support round: "decoder" (the matcher's
    # rule and the learned correction) or "matcher" (its rule alone, so that each of the L
    # samples runs the decoder's blocks once; docs/reproduce.md, "L's price").
    self_support_from: str = "decoder"
    # At test time, whether each of the L samples runs the matching decoder's blocks ("all"), or
    # "none": the blocks run once per decision on the samples' mean, and each sample adds that
    # learned correction to its own matcher rule, so that a sample costs its similarity maps
    # (docs/reproduce.md, "L's price"). One prototype decides alike both ways; training always
    # runs "all".
    blocks_per_sample: str = "all"
    # The decoder's three blocks all at stride 8, so the L samples' share of the time stays
    # small: the L maps are summarised there and upsampled once (VPIModel.sample_maps); the
    # encoder's finer skips, where the decoder has them, are pooled to stride 8 once per query
    # (_SkipDecoder). ``refine_passes`` then brings back the query's edges, once per query.
    decoder_low_resolution: bool = False
    # Passes of edge-aware refinement of the mean probability, a guided filter with the query's
    # colours as the guide (vpi.model.refine), once per query after the L samples; 0 leaves the
    # decoder's map as it is.
    refine_passes: int = 0


@dataclass(frozen=True)
class DataConfig:
    """Which episodes to train and evaluate on."""

    dataset: str = "builtin"
    root: str | None = None  # the user's copy of a real benchmark
    splits: str | None = None  # a folder of HSNet-format split lists
    fold: int = 0
    image_size: int = 128  # square network input, H = W
    shots: int = 1  # support pairs per training episode
    coco_split: str = "interleaved"  # or "consecutive"
    score_at: str = "input"  # or "original"
    num_workers: int = 0
    surfaces: str = "palette"  # the built-in data's (SURFACES)
    # The built-in objects' diameters, as fractions of the image side; photographs' objects are
    # larger (a median of a quarter of the picture in ../shared/realphoto) than (0.3, 0.55) gives.
    object_sizes: tuple[float, float] = OBJECT_SIZES


@dataclass(frozen=True)
class TrainConfig:
    """The optimisation recipe."""

    steps: int = 1500
    batch_size: int = 8
    lr_backbone: float = 1e-4  # 0 freezes the encoder
    encoder_stages: str = "all"  # which stages lr_backbone trains: "all", or "deep" (the last only)
    lr_head: float = 1e-3
    lr_schedule: str = "constant"  # the paper's; or "cosine" (vpi.train.loop.lr_factor)
    kl_weight: float = 1.0
    kl_free_bits: float = 0.0  # nats per latent dimension the KL leaves free (kl_divergence)
    similarity_weight: float = 1.0  # the similarity map's auxiliary loss; needs model.similarity_map
    dice_weight: float = 0.0  # adds a soft Dice loss (VPIModel.forward); 0 is the paper's objective
    # The soft Dice on each sample's map after model.refine_passes of refinement, the map test
    # time thresholds, rather than on the decoder's own (docs/reproduce.md, "Real photographs").
    dice_on_refined: bool = False
    # Above 0, what validation scores and best.pt holds are the trained weights' exponential
    # moving average over the steps, by this decay per step (vpi.train.averaging); 0 keeps the
    # last step's weights, as the paper trains.
    average_decay: float = 0.0
    seed: int = 0
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1", ...
    amp: bool = True  # mixed precision where CUDA is used; ignored on the CPU
    log_every: int = 10
    eval_every: int = 500
    eval_episodes: int = 200
    checkpoint_every: int = 250
    out_dir: str = RUNS_DIR


@dataclass(frozen=True)
class EvalConfig:
    """The test protocol: a fixed, seeded list of episodes."""

    episodes: int = 1000
    shots: int = 1
    samples: int = DEFAULT_SAMPLES
    seed: int = 0
    threshold: float = DEFAULT_THRESHOLD


@dataclass(frozen=True)
class Config:
    name: str = DEFAULT_PRESET
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self) -> None:
        validate(self)


def validate(config: Config) -> None:
    """Reject values no run could use, naming the field, the value and what is allowed."""
    m, d, t, e = config.model, config.data, config.train, config.eval
    _choice("model.backbone", m.backbone, BACKBONES)
    _choice("model.aggregation", m.aggregation, AGGREGATIONS)
    _choice("model.likelihood_z", m.likelihood_z, LIKELIHOOD_Z)
    _choice("model.likelihood_rule", m.likelihood_rule, LIKELIHOOD_RULES)
    check_range("model.likelihood_samples", m.likelihood_samples, 1, MAX_SAMPLES)
    check_range("model.refine_passes", m.refine_passes, 0, MAX_REFINE_PASSES)
    _choice("model.prototype_features", m.prototype_features, PROTOTYPE_FEATURES)
    _choice("model.encoder_depth", m.encoder_depth, ENCODER_DEPTHS)
    _choice("model.decoder", m.decoder, DECODERS)
    _choice("model.projection", m.projection, ("learned", "identity"))
    if m.decoder != "matching" and (m.projection != "learned" or not m.decoder_skips
                                    or m.self_support
                                    or m.self_support_in_training is not None
                                    or m.self_support_from != "decoder"
                                    or m.blocks_per_sample != "all"
                                    or m.background_parts):
        raise ConfigError("model.projection, model.decoder_skips, model.self_support, "
                          "model.self_support_in_training, model.self_support_from, "
                          "model.blocks_per_sample and model.background_parts are options of "
                          "model.decoder 'matching'")
    if m.similarity_map and m.prototype_features == "deep+mid" and not m.dilated:
        raise ConfigError("model.similarity_map over model.prototype_features 'deep+mid' needs "
                          "model.dilated true: the map is made at the mid stage's stride, finer "
                          "than the undilated deep features it joins")
    if m.decoder == "matching" and m.similarity_map:
        raise ConfigError("model.similarity_map is an option of model.decoder 'features'; the "
                          "matching decoder always reads its similarity maps")
    _choice("data.dataset", d.dataset, DATASETS)
    _choice("data.surfaces", d.surfaces, SURFACES)
    _choice("train.lr_schedule", t.lr_schedule, LR_SCHEDULES)
    _choice("train.encoder_stages", t.encoder_stages, ENCODER_STAGES)
    _choice("data.coco_split", d.coco_split, ("interleaved", "consecutive"))
    _choice("data.score_at", d.score_at, ("input", "original"))
    check_range("model.latent_dim", m.latent_dim, 1, 4096)
    check_range("model.self_support", m.self_support, 0, 3)
    check_range("model.background_parts", m.background_parts, 0, MAX_BACKGROUND_PARTS)
    if m.self_support_in_training is not None:
        check_range("model.self_support_in_training", m.self_support_in_training, 0,
                    m.self_support)
    _choice("model.self_support_from", m.self_support_from, SELF_SUPPORT_FROM)
    _choice("model.blocks_per_sample", m.blocks_per_sample, BLOCKS_PER_SAMPLE)
    if m.self_support_from != "decoder" and not m.self_support:
        raise ConfigError("model.self_support_from decides the first self-support round: it "
                          "needs model.self_support of at least 1")
    check_range("data.fold", d.fold, 0, 3)
    check_range("data.shots", d.shots, 1, MAX_SHOTS)
    check_range("eval.shots", e.shots, 1, MAX_SHOTS)
    check_range("eval.samples", e.samples, 1, MAX_SAMPLES)
    check_range("train.batch_size", t.batch_size, 1, 4096)
    check_range("train.steps", t.steps, 1, 10_000_000)
    if not 0.0 <= t.average_decay < 1.0:
        raise ConfigError(f"train.average_decay must lie in [0, 1), got {t.average_decay}")
    if t.dice_on_refined and not (t.dice_weight and m.refine_passes):
        raise ConfigError("train.dice_on_refined scores the soft Dice on the refined map: it "
                          "needs train.dice_weight above 0 and model.refine_passes of at least 1")
    if t.kl_free_bits < 0:
        raise ConfigError(f"train.kl_free_bits must be at least 0 nats, got {t.kl_free_bits}")
    check_range("eval.episodes", e.episodes, 1, 10_000_000)
    prototypes = 2 + m.background_parts
    # With the identity projection the width is the encoder's, so the one error a user needs
    # names the exact latent_dim (PriorNet); a learned projection only needs the split to divide.
    if m.decoder == "matching" and m.projection != "identity" and m.latent_dim % prototypes:
        raise ConfigError(f"model.latent_dim is {m.latent_dim}; the matching decoder splits it "
                          f"into {prototypes} prototypes (foreground, background and "
                          f"model.background_parts {m.background_parts}), so it must be a "
                          f"multiple of {prototypes}")
    if len(m.decoder_channels) != 3 or min(m.decoder_channels) < 1:
        raise ConfigError(
            f"model.decoder_channels must be three positive widths, got {m.decoder_channels!r}"
        )
    low, high = d.object_sizes
    if not 0.05 <= low <= high <= MAX_OBJECT_SIZE:
        raise ConfigError(f"data.object_sizes must be two fractions of the image side with "
                          f"0.05 <= low <= high <= {MAX_OBJECT_SIZE}, got {d.object_sizes!r}")
    if d.image_size < 32 or d.image_size % 8:
        raise ConfigError(
            f"data.image_size must be a multiple of 8 and at least 32, got {d.image_size}"
        )
    check_threshold(e.threshold, "eval.threshold")


def _choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} is {value!r}; choose one of: {', '.join(allowed)}")


def config_to_dict(config: Config) -> dict[str, Any]:
    return dataclasses.asdict(config)


def config_from_dict(data: dict[str, Any]) -> Config:
    """Rebuild a Config (e.g. from a checkpoint); unknown keys are an error, missing keys default."""
    return _build(Config, data, "")


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping of sections")
    return data


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """Turn ``["model.latent_dim=64", "train.steps=10"]`` into a nested dict (values as YAML)."""
    nested: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} must look like section.field=value")
        parts = key.strip().split(".")
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(raw)
    return nested


# The model's fields that scoring may change on a trained checkpoint (`vpi eval --set`): no weight
# depends on them (the refinement and the self-support rounds learn nothing). The checkpoint
# fixes every other one.
TEST_TIME_MODEL_FIELDS = ("refine_passes", "self_support", "blocks_per_sample")


def check_test_time_model(trained: ModelConfig, asked: ModelConfig, *, export: bool) -> None:
    """Refuse a change of the model that scoring cannot make: any field of an export (its graph
    is fixed), and any field of a checkpoint but ``TEST_TIME_MODEL_FIELDS``."""
    changed = [f.name for f in fields(ModelConfig)
               if getattr(trained, f.name) != getattr(asked, f.name)]
    fixed = changed if export else [n for n in changed if n not in TEST_TIME_MODEL_FIELDS]
    if fixed:
        what = "an export's graph fixes" if export else "the checkpoint's weights fix"
        allowed = ("; score its checkpoint to change it" if export
                   else f"; only {', '.join(TEST_TIME_MODEL_FIELDS)} may change")
        raise ConfigError(f"{', '.join('model.' + n for n in fixed)}: {what} the model{allowed}")


def apply_overrides(config: Config, overrides: dict[str, Any]) -> Config:
    """A new Config with ``overrides`` (nested dict, e.g. from YAML) laid over ``config``."""
    merged = _merge(config_to_dict(config), overrides, "")
    return config_from_dict(merged)


def _merge(base: dict[str, Any], over: dict[str, Any], where: str) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        name = f"{where}{key}"
        if key not in base:
            raise ConfigError(f"unknown config field {name!r}; known: {', '.join(base)}")
        if isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"config field {name!r} is a section; give its fields")
            out[key] = _merge(base[key], value, f"{name}.")
        else:
            out[key] = value
    return out


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"config section {where or 'root'!r} must be a mapping")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(
            f"unknown config field(s) {', '.join(sorted(where + u for u in unknown))}"
        )
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, f"{where}{name}")
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, name: str) -> Any:
    """Check ``value`` against the field's type; YAML gives lists where the field holds tuples."""
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, f"{name}.")
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{name} must be a list of {len(args)} values, got {value!r}")
        return tuple(_coerce(a, v, name) for a, v in zip(args, value, strict=True))
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as a string
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{name} must be a float, got {value!r}") from None
    if hint is bool and not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    if hint is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if not isinstance(value, hint):
        raise ConfigError(f"{name} must be a {hint.__name__}, got {value!r}")
    return value


def _paper(name: str, backbone: str, dataset: str, image_size: int = 384) -> Config:
    """The paper's recipe: Adam, 1e-6 / 1e-5, batch 16, 40k iterations, 384x384 crops, L = 6."""
    return Config(
        name=name,
        model=ModelConfig(backbone=backbone, weights="imagenet", latent_dim=256,
                          decoder_channels=(128, 64, 32)),
        data=DataConfig(dataset=dataset, image_size=image_size, num_workers=4),
        train=TrainConfig(steps=40_000, batch_size=16, lr_backbone=1e-6, lr_head=1e-5,
                          eval_every=2_000, eval_episodes=1_000, checkpoint_every=1_000),
        eval=EvalConfig(episodes=1_000, samples=6),
    )


PRESETS: dict[str, Config] = {
    # Drives the test suite: a few channels, 64x64 inputs, random init, seconds on a CPU.
    "tiny": Config(
        name="tiny",
        model=ModelConfig(backbone="tiny", latent_dim=16, decoder_channels=(16, 8, 8)),
        data=DataConfig(image_size=64),
        train=TrainConfig(steps=50, batch_size=4, lr_backbone=1e-3, lr_head=1e-3,
                          eval_every=0, eval_episodes=20, checkpoint_every=25, log_every=5),
        eval=EvalConfig(episodes=20, samples=4),
    ),
    # The README's main job: pretrained MobileNetV2 on the built-in data, minutes on 2 CPU cores,
    # built to carry over to photographs (docs/reproduce.md, "Real photographs"). The decoder
    # refines the training-free matcher (model.decoder="matching"): z holds a foreground and a
    # background prototype, compared with the query's pixels in the encoder's own ImageNet feature
    # space (projection="identity"; block 13 undilated beside block 6), and the learned part reads
    # only those similarity maps (no raw skips). Every learned thing that reads features learned
    # what generated objects look like and lost photographs. A round of self-support matching
    # pulls the prototypes towards the query's own confident pixels; the decoder's blocks run at
    # stride 8, on the L samples' mean, each sample adding that correction to its own matcher
    # rule (model.blocks_per_sample), so that each sample costs little.
    # The built-in objects wear crops of photographs and are as large as photographs' objects,
    # up to 1.2 times the image side (close-ups overflow the frame): trained on smaller targets,
    # the decoder learned to under-segment large objects in photos. The encoder stays frozen. The
    # mean probability is refined along the query's colour edges (nothing learned), and the soft
    # Dice scores each sample's refined map, the one test time thresholds (train.dice_on_refined:
    # 1.2 more photo points over two seeds, about 0.4 fewer on the built-in data). Five parts of
    # the support's background stand beside its background prototype (model.background_parts:
    # its other objects are no longer averaged into one backdrop), and best.pt holds the
    # weights' running average (train.average_decay); together, over two seeds, 1.6 and 0.3
    # built-in points and 0.5 and 1.1 on photos. The decoder's rate is 1e-3: at 2e-3 one seed in
    # three fell apart on the built-in fold (44.3; docs/reproduce.md, "Seeds").
    "demo": Config(
        name="demo",
        model=ModelConfig(backbone="mobilenet_v2", encoder_depth="mid", weights="imagenet",
                          decoder="matching", dilated=False, projection="identity",
                          decoder_skips=False, prototype_features="deep+mid", latent_dim=896,
                          background_parts=5, initial_logvar=-6.0, self_support=2,
                          self_support_in_training=1, decoder_low_resolution=True,
                          refine_passes=2, blocks_per_sample="none"),
        data=DataConfig(image_size=128, surfaces="photo", object_sizes=(0.6, 1.2)),
        train=TrainConfig(steps=1000, batch_size=8, lr_backbone=0.0, lr_head=1e-3,
                          lr_schedule="cosine", dice_weight=1.0, dice_on_refined=True,
                          average_decay=0.995, eval_every=250, eval_episodes=100),
        eval=EvalConfig(episodes=500),
    ),
    # Training on one's own photographs in FSS layout (`--root DIR [--splits DIR]`): the demo's
    # matcher-refining model, here with the encoder's skips and its deep stage fine-tuned, since
    # what it learns comes from the domain it will be used in. On ../shared/realphoto's heldout4
    # split (6 training classes) it beats the matcher by 11 points on 4 unseen classes in about
    # 7 minutes on 2 CPU cores (README, "Your own photos").
    "photos": Config(
        name="photos",
        model=ModelConfig(backbone="mobilenet_v2", encoder_depth="mid", weights="imagenet",
                          decoder="matching", dilated=False, projection="identity",
                          prototype_features="deep+mid", latent_dim=256, initial_logvar=-6.0),
        data=DataConfig(dataset="fss", image_size=128),
        train=TrainConfig(steps=1500, batch_size=8, lr_backbone=1e-4, encoder_stages="deep",
                          lr_head=2e-3, lr_schedule="cosine", dice_weight=1.0, eval_every=250,
                          eval_episodes=200),
        eval=EvalConfig(episodes=500),
    ),
    **{
        f"{ds}-{bb}": _paper(f"{ds}-{bb}", bb, ds)
        for ds in ("pascal", "coco", "fss")
        for bb in ("resnet101", "resnet50", "vgg16")
    },
}


def get_preset(name: str) -> Config:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}"
        ) from None


__all__ = [
    "AGGREGATIONS",
    "BACKBONES",
    "BENCH_CACHE",
    "BENCH_SAMPLES",
    "Config",
    "DataConfig",
    "DECODERS",
    "DEFAULT_PRESET",
    "DEFAULT_SAMPLES",
    "DEFAULT_THRESHOLD",
    "ENCODER_DEPTHS",
    "ENCODER_STAGES",
    "EXPORT_DIR",
    "EvalConfig",
    "LR_SCHEDULES",
    "MAX_BATCH",
    "MAX_REFINE_PASSES",
    "MAX_SAMPLES",
    "MAX_SHOTS",
    "ModelConfig",
    "PRESETS",
    "TEST_TIME_MODEL_FIELDS",
    "RUNS_DIR",
    "SEGMENT_DIR",
    "SELF_SUPPORT_FROM",
    "BLOCKS_PER_SAMPLE",
    "SEGMENT_BATCH",
    "OBJECT_SIZES",
    "SURFACES",
    "TrainConfig",
    "apply_overrides",
    "check_test_time_model",
    "config_from_dict",
    "config_to_dict",
    "get_preset",
    "load_yaml",
    "parse_overrides",
    "replace",
]
