import pytest

from vpi.config import (
    PRESETS,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    get_preset,
    load_yaml,
    parse_overrides,
)
from vpi.errors import ConfigError


@pytest.mark.parametrize("name", PRESETS)
def test_presets_round_trip_through_a_dict(name):
    config = get_preset(name)
    assert config_from_dict(config_to_dict(config)) == config


def test_paper_presets_use_the_papers_recipe():
    config = get_preset("pascal-resnet101")
    assert (config.train.lr_backbone, config.train.lr_head) == (1e-6, 1e-5)
    assert (config.train.batch_size, config.train.steps) == (16, 40_000)
    assert config.data.image_size == 384 and config.eval.samples == 6


def test_unknown_preset_names_the_choices():
    with pytest.raises(ConfigError, match="unknown preset 'nope'.*demo"):
        get_preset("nope")


def test_overrides_from_cli_strings_are_typed():
    config = apply_overrides(
        get_preset("tiny"),
        parse_overrides(["model.latent_dim=64", "train.lr_head=0.01", "model.decoder_channels=[8,8,8]",
                         "train.lr_backbone=1e-4"]),
    )
    assert config.train.lr_backbone == 1e-4  # YAML 1.1 reads "1e-4" as a string
    assert config.model.latent_dim == 64
    assert config.train.lr_head == 0.01
    assert config.model.decoder_channels == (8, 8, 8)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"model": {"backbone": "alexnet"}}, "model.backbone is 'alexnet'"),
        ({"model": {"encoder_depth": "shallow"}}, "model.encoder_depth is 'shallow'.*full, mid"),
        ({"train": {"lr_schedule": "step"}}, "train.lr_schedule is 'step'.*constant, cosine"),
        ({"train": {"encoder_stages": "last"}}, "train.encoder_stages is 'last'.*all, deep"),
        ({"eval": {"samples": 0}}, r"eval.samples is 0; it must lie in 1..16"),
        ({"eval": {"samples": 17}}, r"eval.samples is 17"),
        ({"eval": {"shots": 11}}, r"eval.shots is 11"),
        ({"model": {"latent_dim": "big"}}, "must be an integer"),
        ({"train": {"lr_head": "fast"}}, "train.lr_head must be a float, got 'fast'"),
        ({"model": {"nope": 1}}, "unknown config field 'model.nope'"),
        ({"data": {"image_size": 100}}, "multiple of 8"),
        ({"train": {"kl_free_bits": -0.5}}, "train.kl_free_bits must be at least 0 nats"),
        ({"train": {"dice_on_refined": True, "dice_weight": 1.0}},
         "needs train.dice_weight above 0 and model.refine_passes of at least 1"),
        ({"train": {"dice_on_refined": True}, "model": {"refine_passes": 2}},
         "needs train.dice_weight above 0"),
    ],
)
def test_bad_overrides_are_one_clear_error(override, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(get_preset("tiny"), override)


def test_yaml_file_overrides(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("train:\n  steps: 7\nmodel:\n  aggregation: mean\n")
    config = apply_overrides(get_preset("tiny"), load_yaml(path))
    assert config.train.steps == 7 and config.model.aggregation == "mean"


def test_bad_yaml_and_bad_override_syntax(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_yaml(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="section.field=value"):
        parse_overrides(["latent_dim"])
