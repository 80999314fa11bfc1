"""Sizing a run to the machine (config/sizing.py): environment.selfplay.scale and training.batch_size auto."""

from __future__ import annotations

import pytest

import config.sizing as sizing
from config import check_rollout, load_config
from config.sizing import minibatch, resolve_scale


@pytest.mark.parametrize("cores, scale", [(1, 1), (2, 1), (4, 1), (8, 2), (16, 4), (64, 16)])
def test_auto_scale_multiplies_the_default_counts_by_one_per_four_cores(monkeypatch, cores, scale):
    monkeypatch.setattr(sizing, "available_cores", lambda: cores)
    cfg = load_config()
    assert cfg.environment.selfplay.matches["1v1"] == 56 * scale and cfg.league.matches["1v1"] == 16 * scale
    assert cfg.environment.selfplay.scale == 1  # the run's saved config holds the counts it played
    assert cfg.sizing.scale == scale and f"auto for {cores} core(s)" in cfg.sizing.describe()
    assert resolve_scale(cfg, counts_given=False, cores=cores).environment.selfplay.matches == \
        cfg.environment.selfplay.matches  # applied once: the resolved config holds scale 1


def test_auto_leaves_counts_the_user_gives_and_a_number_is_used_as_written(monkeypatch):
    monkeypatch.setattr(sizing, "available_cores", lambda: 16)  # a 16-core machine
    assert load_config().environment.selfplay.matches["1v1"] == 224
    mine = load_config(overrides=["environment.selfplay.matches.1v1=8"])
    assert (mine.environment.selfplay.matches["1v1"], mine.league.matches["1v1"]) == (8, 16)
    assert "as your config gives them" in mine.sizing.describe()
    league = load_config(overrides=["league.matches.1v1=4"])
    assert (league.environment.selfplay.matches["1v1"], league.league.matches["1v1"]) == (56, 4)
    fixed = load_config(overrides=["environment.selfplay.scale=2"])
    assert (fixed.environment.selfplay.matches["1v1"], fixed.league.matches["1v1"]) == (112, 32)
    assert fixed.sizing.describe() == "match counts x 2 (environment.selfplay.scale)"


def test_auto_minibatch_is_a_quarter_of_the_rollout_and_a_number_wins():
    cfg = load_config()
    assert cfg.training.batch_size == "auto"
    assert minibatch(cfg.training, 128) == 1024 and minibatch(cfg.training, 512) == 4096
    assert minibatch(load_config(overrides=["training.batch_size=512"]).training, 512) == 512
    check_rollout(cfg, 1)  # auto always fits the rollout


def test_scale_must_be_auto_or_a_positive_number():
    from config import ConfigError

    with pytest.raises(ConfigError, match="environment.selfplay.scale"):
        load_config(overrides=["environment.selfplay.scale=0"])
    with pytest.raises(ConfigError, match="training.batch_size"):
        load_config(overrides=["training.batch_size=big"])
