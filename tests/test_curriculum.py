"""The skill curriculum: its config checks, its gates, and a real run that advances, saves its stage and resumes it."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from config.stages import scripted_weights, split_matches, stage_config
from config import ConfigError, load_config
from curriculum.curriculum import Curriculum
from tests.helpers import FAST_TRAIN, fast_config, run_cli, set_args
from training.model_files import read_model_data

#: FAST_TRAIN with the curriculum on: one 1v1 self-play match (2 learning cars), so stages with league_share 1.0
#: play two 1v1 league matches.
CURRICULUM_ON = [o for o in FAST_TRAIN if not o.startswith("curriculum.")] + ["curriculum.enabled=true"]


def stages_override(*stages: str) -> str:
    return "curriculum.stages=[" + ", ".join(stages) + "]"


BASICS = "{name: basics, league_share: 1.0, shares: {past: 0, scripted: 1, self: 0}, scripted: {idle: 1}, " \
         "advance: {opponent: idle, touch: %s, goal: %s}}"


def test_default_stages_keep_the_learning_cars_and_start_against_idle():
    cfg = load_config()
    cars = [2 * sum(stage_config(cfg, i).environment.selfplay.matches.values())
            + sum(stage_config(cfg, i).league.matches.values()) for i in range(len(cfg.curriculum.stages))]
    assert len(set(cars)) == 1  # SB3's num_envs never changes within a run
    first = stage_config(cfg, 0)
    assert sum(first.environment.selfplay.matches.values()) == 0 and first.league.scripted[0] == "idle"
    index = len(cfg.curriculum.stages) - 1
    last = stage_config(cfg, index)
    assert sum(last.environment.selfplay.matches.values()) > 0 and last.league.shares.past > 0  # self-play, the pool
    assert scripted_weights(cfg, index)["idle"] > 0 and last.league.shares.scripted > 0  # the first opponents stay


def test_league_share_resplits_matches_at_their_team_sizes():
    assert split_matches({"1v1": 56, "2v2": 0, "3v3": 0}, {"1v1": 16}, 1.0) == (
        {"1v1": 0, "2v2": 0, "3v3": 0}, {"1v1": 128, "2v2": 0, "3v3": 0})
    selfplay, league = split_matches({"1v1": 0, "2v2": 4, "3v3": 0}, {"2v2": 0}, 0.5)
    assert selfplay["2v2"] == 2 and league["2v2"] == 4  # 8 learning teams of 2 either way


@pytest.mark.parametrize("override, key", [
    ("curriculum.windw=3", "curriculum.windw"),
    (stages_override(BASICS % (1.5, 0), "{name: league}"), "curriculum.stages[0].advance.touch"),
    (stages_override((BASICS % (0, 0)).replace("opponent: idle", "opponent: bogus"), "{name: league}"),
     "curriculum.stages[0].advance.opponent"),
    (stages_override((BASICS % (0, 0)).replace("opponent: idle", "opponent: chaser"), "{name: league}"),
     "curriculum.stages[0] ('basics').advance.opponent"),
    (stages_override(BASICS % (0, 0), "{name: league, colour: red}"), "curriculum.stages[1].colour"),
    (stages_override(BASICS % (0, 0)), "curriculum.stages[0] ('basics').advance"),
    ("curriculum.pin=nowhere", "curriculum.pin"),
])
def test_bad_curriculum_config_names_the_key(override, key):
    with pytest.raises(ConfigError) as error:
        fast_config("curriculum.enabled=true", override)
    assert f"'{key}'" in str(error.value)


def test_bad_curriculum_key_exits_2_before_any_worker(tmp_path):
    result = run_cli("train_sb3.py", "--set", "curriculum.stages=[{name: a, advance: {opponent: idle, touch: 2, "
                     "goal: 0}}, {name: b}]", cwd=tmp_path)
    assert result.returncode == 2
    assert "curriculum.stages[0].advance.touch" in result.stderr and "Traceback" not in result.stderr


def gate_curriculum(window: int = 4, hold: int = 2) -> Curriculum:
    cfg = fast_config("curriculum.enabled=true", f"curriculum.window={window}", f"curriculum.hold={hold}",
                      stages_override(BASICS % (0.5, 0.5), "{name: league}"))
    return Curriculum(cfg.curriculum)


def test_gate_opens_only_with_a_full_window_held_and_never_goes_back():
    cur = gate_curriculum()
    for _ in range(3):
        cur.record("idle", True, 1)
    cur.record("chaser", False, -1)  # other opponents do not count
    assert not cur.check() and cur.reading().games == 3  # window not full
    cur.record("idle", True, 1)
    assert not cur.check() and cur.reading().held == 1  # held once: hold is 2
    assert cur.check() and cur.index == 1 and cur.stage.name == "league"
    assert cur.reading() is None and not cur.check()  # the last stage has no gate: it stays
    # A noisy stretch right after a gate opened does not move the run back either: only forward moves exist.
    cur.record("idle", False, -1)
    assert cur.index == 1


def test_gate_that_drops_below_starts_its_hold_again():
    cur = gate_curriculum(window=2, hold=2)
    cur.record("idle", True, 1), cur.record("idle", True, 1)
    assert not cur.check()
    cur.record("idle", False, 0)  # window: (win, miss): goal 50% still holds, touch 50% holds
    cur.record("idle", False, 0)  # window: two misses: the gate fails, the hold count restarts
    assert not cur.check() and cur.reading().held == 0 and cur.index == 0


def test_pinned_stage_stays_and_unknown_saved_stage_starts_at_the_first():
    cfg = fast_config("curriculum.enabled=true", "curriculum.pin=scripted", "curriculum.window=1", "curriculum.hold=1")
    cur = Curriculum.resume(cfg.curriculum, saved="basics")
    assert cur.stage.name == "scripted"
    for _ in range(5):
        cur.record("chaser", True, 1)
    assert not cur.check() and cur.stage.name == "scripted"
    with pytest.warns(RuntimeWarning, match="does not have"):
        cur = Curriculum.resume(fast_config("curriculum.enabled=true").curriculum, saved="renamed")
    assert cur.index == 0


def tb_scalars(log_dir, tag):
    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return [e.value for e in acc.Scalars(tag)] if tag in acc.Tags()["scalars"] else []


def test_run_advances_saves_its_stage_and_resume_restores_it(tmp_path):
    """A gate that opens at once: stage 1 (two league matches against idle) -> stage 2 (the configured self-play
    match) during the run; the stage is in the banner, in TensorBoard and in every saved model (a checkpoint saved
    before the gate opened holds the first stage); --resume starts in the saved one."""
    overrides = CURRICULUM_ON + ["curriculum.window=2", "curriculum.hold=3",
                                 stages_override(BASICS % (0, 0), "{name: league}")]
    result = run_cli("train_sb3.py", "--total-timesteps", "1024", "--seed", "3", "--checkpoint-dir", "ck",
                     "--log-dir", "logs", *set_args(overrides), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Curriculum:  stage 1/2 'basics' of basics -> league" in result.stdout
    assert "league 2 x 1v1 = 2 learning cars" in result.stdout  # the stage's matches, not the top-level ones
    assert "Curriculum: stage 'basics' -> 'league'" in result.stdout
    run = tmp_path / "ck" / "PPO_1"
    assert read_model_data(run / "model_final.zip")["curriculum_stage"] == "league"
    checkpoints = sorted(run.glob("checkpoint_*.zip"), key=lambda p: int(p.stem.split("_")[1]))
    assert read_model_data(checkpoints[0])["curriculum_stage"] == "basics"  # saved before the gate opened
    stages = tb_scalars(tmp_path / "logs" / "PPO_1", "curriculum/stage")
    assert stages[0] == 0 and stages[-1] == 1
    assert tb_scalars(tmp_path / "logs" / "PPO_1", "curriculum/gate_games")
    resumed = run_cli("train_sb3.py", "--resume", "PPO_1", "--total-timesteps", "1280", "--checkpoint-dir", "ck",
                      "--log-dir", "logs", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Curriculum:  stage 2/2 'league'" in resumed.stdout and "self-play 1 x 1v1" in resumed.stdout


def test_resuming_a_run_from_before_the_curriculum_starts_at_the_first_stage(trained, tmp_path):
    root, _ = trained
    shutil.copytree(root / "ck", tmp_path / "ck")
    result = run_cli("train_sb3.py", "--resume", "latest", "--total-timesteps", "1280", "--checkpoint-dir", "ck",
                     "--log-dir", "logs", "--set", "curriculum.enabled=true", "--set", "curriculum.hold=1000",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "saved without a curriculum stage" in result.stderr and "starting at the first stage" in result.stderr
    assert "Curriculum:  stage 1/3 'basics'" in result.stdout
    assert "Steps:       1,024 done" in result.stdout  # nothing of the run was lost


def test_all_league_matches_train_and_evaluate(tmp_path):
    """An early stage's layout as the plain config (every self-play count 0): evaluation during training and
    evaluate.py play it."""
    overrides = FAST_TRAIN + ["environment.selfplay.matches.1v1=0", "league.matches.1v1=2"]
    result = run_cli("train_sb3.py", "--total-timesteps", "512", "--checkpoint-dir", "ck", "--log-dir", "logs",
                     *set_args(overrides), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    evaluated = run_cli("evaluate.py", "--model", "ck/PPO_1/model_final.zip", "--episodes", "1", "--json",
                        cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert json.loads(evaluated.stdout.strip().splitlines()[-1])


def test_kickoff_jitter_moves_cars_and_ball_a_little():
    from envs.components import build_match
    from rlgym.rocket_league.state_mutators import KickoffMutator

    cfg = fast_config("environment.state_mutators=[kickoff, jitter]")
    jitter = cfg.environment.kickoff_jitter
    match, _ = build_match(cfg.environment, cfg.rewards, team_sizes=(1, 1))
    spots = np.concatenate([KickoffMutator.SPAWN_BLUE_POS, KickoffMutator.SPAWN_ORANGE_POS])[:, :2]
    np.random.seed(0)
    starts = set()
    try:
        for _ in range(6):
            match.reset()
            ball = match.state.ball.position
            assert np.all(np.abs(ball[:2]) <= jitter.ball_xy_uu + 1e-3) and np.any(ball[:2] != 0)
            for car in match.state.cars.values():
                offset = np.abs(spots - car.physics.position[:2]).max(axis=1).min()
                assert 0 < offset <= jitter.car_xy_uu + 1e-3
                starts.add(tuple(np.round(car.physics.position[:2])))
    finally:
        match.close()
    assert len(starts) == 12  # every start a different one


def test_jitter_first_is_refused():
    with pytest.raises(ConfigError, match="put it after 'kickoff'"):
        fast_config("environment.state_mutators=[jitter, kickoff]")


