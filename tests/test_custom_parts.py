"""A user's own rlgym parts by import path: train, league, resume, evaluate from anywhere, the example project, and
every bad input (exit 2 before any worker, naming the key) or a part that breaks mid-run. Real processes and files;
the parts are defined by the tests (tests/helpers.py ``CUSTOM_PARTS``)."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.helpers import FAST_TRAIN, REPO, run_cli, set_args, write_custom_parts


def scalar_tags(folder) -> list[str]:
    acc = EventAccumulator(str(folder))
    acc.Reload()
    return acc.Tags()["scalars"]


def test_custom_parts_train_log_and_play_in_the_league(custom_trained):
    root, result = custom_trained
    assert "Obs:         173 floats (mybot.parts:BoostObs)" in result.stdout
    assert "height 0.5 (mybot.parts:BallHeightReward)" in result.stdout
    assert "mutators: kickoff, mybot.parts:HalfBoostMutator" in result.stdout
    assert "reward/height_mean" in scalar_tags(root / "logs" / "PPO_1")  # logged like the built-in parts
    saved = yaml.safe_load((root / "ck" / "PPO_1" / "config.yaml").read_text())
    assert saved["environment"]["obs_builder"] == {"class": "mybot.parts:BoostObs", "kwargs": {"zero_padding": 3},
                                                   "path": str(root)}  # the folder it imported from
    assert saved["rewards"]["height"]["path"] == str(root)
    ladder = json.loads((root / "ck" / "PPO_1" / "league" / "ladder.json").read_text())
    assert ladder["pool"]  # past versions (trained on the custom obs) joined the pool and were played


def test_resume_and_evaluate_rebuild_the_parts_from_another_folder(custom_trained, tmp_path):
    root, _ = custom_trained
    shutil.copytree(root / "ck", tmp_path / "ck")
    elsewhere = tmp_path / "elsewhere"  # no mybot/ here: the run's config.yaml says where it lives
    elsewhere.mkdir()
    resumed = run_cli("train_sb3.py", "--resume", str(tmp_path / "ck" / "PPO_1"), "--total-timesteps", "1024",
                      "--checkpoint-dir", str(tmp_path / "ck"), "--log-dir", str(tmp_path / "logs"), cwd=elsewhere)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "173 floats (mybot.parts:BoostObs)" in resumed.stdout
    evaluated = run_cli("evaluate.py", "--model", str(tmp_path / "ck" / "PPO_1" / "model_final.zip"), "--episodes",
                        "1", "--json", cwd=elsewhere)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    mismatch = run_cli("train_sb3.py", "--resume", str(tmp_path / "ck" / "PPO_1"), "--set",
                       "environment.obs_builder=default", "--checkpoint-dir", str(tmp_path / "ck"), cwd=elsewhere)
    assert mismatch.returncode == 2 and "takes observations of 173 floats" in mismatch.stderr
    assert "makes 172" in mismatch.stderr and "Traceback" not in mismatch.stderr


DUPLICATE = """
rewards:
  height: {class: "mybot.parts:BallHeightReward", weight: 1.0}
  touch: 1.0
  height: 2.0
"""


@pytest.mark.parametrize("override, message", [
    ("environment.obs_builder={class: 'mybot.nope:BoostObs'}", "No module named 'mybot.nope'"),
    ("environment.obs_builder={class: 'mybot.broken:BoostObs'}", "SyntaxError"),
    ("environment.obs_builder={class: 'mybot.parts:Nope'}", "module 'mybot.parts' has no 'Nope'"),
    ("rewards.height={class: 'mybot.parts:BoostObs', weight: 1}", "not a subclass of rlgym's RewardFunction"),
    ("environment.state_mutators=[kickoff, {class: 'mybot.parts:NotAPart'}]", "not a subclass of rlgym's "
                                                                               "StateMutator"),
    ("rewards.height={class: 'mybot.parts:BallHeightReward', weight: 1, kwargs: {nope: 1}}", "does not accept"),
    ("environment.state_mutators=[kickoff, teleport]", "A custom part is written {class:"),
    (None, "key 'height' appears twice in 'rewards'"),
], ids=["missing-module", "module-does-not-import", "missing-name", "wrong-base-class", "not-a-part", "bad-kwargs",
        "unknown-builtin", "duplicate-reward-name"])
def test_bad_custom_parts_exit_2_before_any_worker_naming_the_key(tmp_path, override, message):
    config = write_custom_parts(tmp_path)
    (tmp_path / "mybot" / "broken.py").write_text("def broken(:\n")
    if override is None:
        config.write_text(DUPLICATE)
    args = ["--config", config.name, *(["--set", override] if override else [])]
    result = run_cli("train_sb3.py", *args, "--checkpoint-dir", "ck", "--log-dir", "logs", cwd=tmp_path, timeout=60)
    assert result.returncode == 2, result.stderr[-3000:]
    assert message in result.stderr and "Traceback" not in result.stderr
    key = override.split("=")[0] if override else "rewards"
    assert key.split(".")[0] in result.stderr
    assert not (tmp_path / "ck").exists() and not (tmp_path / "logs").exists()


def test_a_part_that_raises_mid_run_stops_it_with_its_name_after_saving(tmp_path):
    config = write_custom_parts(tmp_path)
    config.write_text('rewards:\n  boom: {class: "mybot.parts:BrokenReward", weight: 1.0, kwargs: {after_calls: '
                      '400}}\n')
    result = run_cli("train_sb3.py", "--config", config.name, "--total-timesteps", "100000", "--checkpoint-dir", "ck",
                     "--log-dir", "logs", *set_args(FAST_TRAIN), cwd=tmp_path)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "rewards.boom (BrokenReward) raised in get_rewards()" in result.stderr
    assert "ZeroDivisionError: my reward divided by zero" in result.stderr  # the part's own traceback
    assert "Training stopped at" in result.stderr and "train_sb3.py" not in result.stderr  # no trainer traceback
    run = tmp_path / "ck" / "PPO_1"
    assert (run / "model_interrupted.zip").is_file() and (run / "vecnormalize_interrupted.pkl").is_file()


def test_the_example_project_trains_from_its_folder(tmp_path):
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    result = run_cli("train_sb3.py", "--config", "config.yaml", "--total-timesteps", "256", "--checkpoint-dir", "ck",
                     "--log-dir", "logs", *set_args(FAST_TRAIN), cwd=tmp_path / "examples")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "174 floats (my_bot.obs:BallDistanceObs)" in result.stdout
    assert "reward/aerial_mean" in scalar_tags(tmp_path / "examples" / "logs" / "PPO_1")


def test_custom_parts_train_in_subproc_mode(tmp_path):
    """SB3's SubprocVecEnv workers (one process per env) import the user's parts too."""
    config = write_custom_parts(tmp_path)
    result = run_cli("train_sb3.py", "--config", config.name, "--total-timesteps", "256", "--num-envs", "2",
                     "--checkpoint-dir", "ck", "--log-dir", "logs",
                     *set_args(FAST_TRAIN + ["environment.vec_env=subproc",
                                             "training.total_timesteps=1e6"]),  # 1e6 reads as a number (--total-timesteps wins)
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Workers:     2 processes (SubprocVecEnv)" in result.stdout and "173 floats" in result.stdout
    assert "reward/height_mean" in scalar_tags(tmp_path / "logs" / "PPO_1")
