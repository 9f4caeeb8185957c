"""Presets, key=value overrides and the one-line errors for bad settings."""

import numpy as np
import pytest

from ram.config import MAX_SEED, PRESETS, Config, apply_overrides, get_config, overrides_between
from ram.errors import ConfigError


def test_presets_validate_and_follow_the_paper():
    for cfg in PRESETS.values():
        cfg.validate()
    assert (
        PRESETS["mnist28"].patch_size,
        PRESETS["mnist28"].num_scales,
        PRESETS["mnist28"].num_glimpses,
    ) == (8, 1, 6)
    c100 = PRESETS["cluttered100"]
    assert (c100.canvas, c100.clutter_pieces, c100.patch_size, c100.num_scales) == (100, 8, 12, 4)


def test_overrides_are_typed():
    cfg = get_config("mnist28", ["num_glimpses=4", "learning_rate=3e-4", "core=lstm", "train_steps=1e3"])
    assert (cfg.num_glimpses, cfg.learning_rate, cfg.core, cfg.train_steps) == (4, 3e-4, "lstm", 1000)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["colour=red"], "unknown config field 'colour'"),
        (["train_step=10"], "unknown config field 'train_step'; did you mean train_steps\\?"),
        (["train_steps=50", "warmup_steps=0"], "set steps_per_call too for a short run"),
        (["num_glimpses"], "not of the form key=value"),
        (["num_glimpses=two"], "expected a value of type int"),
        (["num_glimpses=0"], "at least 1 glimpse"),
        (["location_std=0"], "positive standard deviation"),
        (["location_std_final=0.2"], "between 0 \\(fixed std\\) and location_std=0.1"),
        (["train_shift=30"], "by 1 to 13 pixels"),
        (["train_rotation=-5"], "between 0 \\(none\\) and 180 degrees"),
        (["train_scale=1"], "train_scale=1.0: must be >= 0 \\(none\\) and below 1"),
        (["mean_penalty=-1"], "mean_penalty=-1.0: must be >= 0"),
        (["mean_penalty_margin=-1", "mean_penalty=0.01"], "mean_penalty_margin=-1.0: must be >= 0"),
        (["mean_penalty_margin=2"], "no effect with mean_penalty=0"),
        (["num_classes=5"], "labels are 0-9"),
        (["policy=random", "policy_hidden=128"], "would ignore policy_hidden=128"),
        (["learning_rate=inf"], "must be a finite number"),
        (["location_std=nan"], "location_std=nan"),
        (["reinforce_weight=-1"], "reinforce_weight=-1.0: must be >= 0"),
        (["momentum=1"], "must be in \\[0, 1\\)"),
        (["momentum=0.5"], "momentum=0.5 is SGD's: optimizer=adam would ignore it"),
        (["clutter_size=6"], "clutter_size=6: clutter is added by task=cluttered only, task=mnist would ignore it"),
        (["dropout=1"], "dropout=1.0: must be >= 0 \\(0 = off\\) and below 1"),
        (["dropout=-0.1"], "dropout=-0.1: must be >= 0"),
        (["train_steps=45050"], "multiple of steps_per_call=100"),
        (["warmup_steps=40000"], "below train_steps=30000"),
        (["num_glimpses=1.5e0"], "expected a value of type int"),
        (["patch_size=40"], "larger than the 28x28 canvas"),
        (["core=transformer"], "choose one of"),
        (["canvas=60"], "task=translated"),
        (["clutter_pieces=4"], "clutter_pieces=4: clutter is added by task=cluttered only"),
    ],
)
def test_bad_overrides_say_what_to_fix(overrides, message):
    with pytest.raises(ConfigError, match=message):
        get_config("mnist28", overrides)


def test_the_retina_is_checked_against_the_images_task_mnist_will_see():
    """task=mnist's canvas is the images' size: image_size's, or (another dataset) the data's."""
    assert get_config("mnist28", ["image_size=64", "patch_size=32"]).patch_size == 32
    assert get_config("mnist28", ["dataset=tfds:cifar10", "patch_size=30"]).patch_size == 30  # checked on load
    with pytest.raises(ConfigError, match="patch_size=24 is larger than the 20x20 canvas"):
        get_config("mnist28", ["image_size=20", "patch_size=24"])


def test_unknown_preset():
    with pytest.raises(ConfigError, match="unknown preset 'mnist29'; did you mean mnist28\\? choose one of"):
        get_config("mnist29")
    with pytest.raises(ConfigError, match="unknown preset 'svhn'; choose one of"):
        get_config("svhn")


def test_round_trip_through_json_dict():
    cfg = apply_overrides(Config(), ["core=gru"])
    assert Config.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="unknown config field"):
        Config.from_dict({**cfg.to_dict(), "extra": 1})


def test_policy_std_is_fixed_or_cosine_annealed():
    fixed = get_config("mnist28", ["train_steps=1000"])
    assert fixed.policy_std(0) == fixed.policy_std(1000) == 0.1
    annealed = fixed.replace(location_std_final=0.02)
    stds = [float(annealed.policy_std(s)) for s in (0, 250, 500, 1000, 5000)]
    np.testing.assert_allclose(stds[0], 0.1, rtol=1e-6)
    np.testing.assert_allclose(stds[2], 0.06, rtol=1e-5)  # half way: the mean of the two
    np.testing.assert_allclose(stds[3:], 0.02, rtol=1e-5)  # the end, and after it
    assert stds[0] > stds[1] > stds[2] > stds[3]


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("num_glimpses", 6.5, "num_glimpses=6.5: must be a whole number"),
        ("num_glimpses", True, "num_glimpses=True: must be a whole number"),
        ("num_glimpses", "6", "num_glimpses='6': must be a whole number"),
        ("learning_rate", "1e-3", "learning_rate='1e-3': must be a number"),
        ("learning_rate", False, "learning_rate=False: must be a number"),
        ("core", None, "core=None: must be a string"),
        ("unroll_glimpses", 1, "unroll_glimpses=1: must be true or false"),
        ("seed", MAX_SEED, f"seed={MAX_SEED}: must be in \\[0, {MAX_SEED}\\)"),
        ("seed", -1, "seed=-1: must be in"),
        ("seed", 99999999999999999999, "seed=99999999999999999999: must be in"),
    ],
)
def test_a_config_read_from_json_is_typed_and_in_range(field, value, message):
    with pytest.raises(ConfigError, match=message):
        Config.from_dict({**Config().to_dict(), field: value})
    with pytest.raises(ConfigError, match=message):  # also a config made in code
        Config().replace(**{field: value}).validate()


def test_json_numbers_are_read_as_the_fields_type_where_nothing_is_lost():
    config = Config.from_dict({**Config().to_dict(), "num_glimpses": 4.0, "learning_rate": 1, "seed": 1e3})
    assert (config.num_glimpses, config.learning_rate, config.seed) == (4, 1.0, 1000)
    assert type(config.num_glimpses) is int and type(config.learning_rate) is float


def test_overrides_between_configs_give_the_config_back():
    config = get_config("cluttered60", ["core=gru", "learning_rate=3e-4", "init_from=runs/a b", "seed=3"])
    overrides = overrides_between(PRESETS["mnist28"], config)
    assert "core=gru" in overrides and "unroll_glimpses=true" not in overrides
    assert get_config("mnist28", overrides) == config
    assert overrides_between(config, config) == []
