"""Presets, key=value overrides and the one-line errors for bad settings."""

import pytest

from ram.config import PRESETS, Config, apply_overrides, get_config
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
        (["num_glimpses"], "not of the form key=value"),
        (["num_glimpses=two"], "expected a value of type int"),
        (["num_glimpses=0"], "at least 1 glimpse"),
        (["location_std=0"], "positive standard deviation"),
        (["patch_size=40"], "larger than the 28x28 canvas"),
        (["core=transformer"], "choose one of"),
        (["canvas=60"], "task=translated"),
    ],
)
def test_bad_overrides_say_what_to_fix(overrides, message):
    with pytest.raises(ConfigError, match=message):
        get_config("mnist28", overrides)


def test_unknown_preset():
    with pytest.raises(ConfigError, match="unknown preset 'mnist29'"):
        get_config("mnist29")


def test_round_trip_through_json_dict():
    cfg = apply_overrides(Config(), ["core=gru"])
    assert Config.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="unknown config field"):
        Config.from_dict({**cfg.to_dict(), "extra": 1})
