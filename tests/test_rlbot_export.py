"""RLBot v5 export: the bot folder RLBot loads, parity of its observations and actions with training, and its
process in real time: tests/test_rlbot_check.py (real RocketSim, real rlbot / rlgym-rlbot, real processes)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rlbot.config import load_match_config, load_player_config

from config import load_config
from play.match import load_policy_driver, lookup_table, make_driver, play_episodes
from rlbot_harness.driver import ExportedBotDriver
from rlbot_export.export import export_bot
from tests.helpers import run_cli

REPO = Path(__file__).resolve().parent.parent
#: A model trained by this trainer: the best evaluation of a default run (4.0M steps, 19 minutes on this 2-core
#: machine, run "asset_run" of 2026-11-26), with its normalizer and the run's config.yaml. Its optimizer state was
#: reset to keep the file small (1.2 MB); the policy is the trained one.
ASSET = REPO / "tests" / "fixtures" / "kickoff_bot"
ASSET_MODEL = ASSET / "best_model.zip"
OBS_TOLERANCE = 1e-4
PARITY_SHARE = 0.99


@pytest.fixture(scope="module")
def asset_bot(tmp_path_factory) -> Path:
    """The asset model exported (played in this process: the bot's own venv is tested in test_rlbot_check.py)."""
    folder = tmp_path_factory.mktemp("bots") / "KickoffBot"
    export_bot(ASSET_MODEL, folder)
    return folder


def test_export_writes_a_folder_rlbot_loads(trained, tmp_path):
    root, _ = trained
    result = run_cli("export_rlbot.py", "--model", str(root / "ck" / "PPO_1" / "model_final.zip"),
                     "--out", str(tmp_path / "bots" / "MyBot"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "bots" / "MyBot"
    for name in ("bot.py", "bot.toml", "loadout.toml", "match.toml", "policy.npz", "settings.json",
                 "training_config.yaml", "requirements.txt", "README.md"):
        assert (folder / name).is_file(), name
    player = load_player_config(folder / "bot.toml", 1)  # RLBot v5's own loader
    assert player.variety.name == "MyBot" and player.variety.agent_id == "sb3trainer/mybot"
    assert player.variety.run_command == "./venv/bin/python bot.py" and player.variety.loadout.car_id == 23
    match = load_match_config(folder / "match.toml")
    assert [p.team for p in match.player_configurations] == [0, 1]
    requirements = [line for line in (folder / "requirements.txt").read_text().splitlines() if not line.startswith("#")]
    assert requirements and all("==" in line for line in requirements)
    assert "rlgym-rlbot[rocketsim]==0.3.0" in requirements and "rlbot==2.0.0b52" in requirements
    settings = json.loads((folder / "settings.json").read_text())
    assert settings["obs_size"] == 172 and settings["tick_skip"] == 8 and settings["n_actions"] == 90

    again = run_cli("export_rlbot.py", "--model", str(root / "ck" / "PPO_1" / "model_final.zip"), "--out", str(folder),
                    cwd=tmp_path)
    assert again.returncode == 2 and "--force" in again.stderr
    assert run_cli("export_rlbot.py", "--model", str(root / "ck" / "PPO_1" / "model_final.zip"), "--out", str(folder),
                   "--force", cwd=tmp_path).returncode == 0


#: What the exported bot must run without: torch, SB3 and every package of this repository.
TRAINER_MODULES = ("torch", "stable_baselines3", "envs", "config", "training", "play", "rlbot_export",
                   "rlbot_harness")


def run_bot_alone(folder: Path, lines: str) -> subprocess.CompletedProcess:
    """``import bot; b = bot.ExportedBot()`` then ``lines``, in a fresh interpreter in ``folder`` with
    ``TRAINER_MODULES`` blocked and no PYTHONPATH: what RLBot's run command gets."""
    code = ("import sys\n"
            f"for name in {TRAINER_MODULES!r}:\n"
            "    sys.modules[name] = None\n"
            "sys.path.insert(0, '.')\n"
            "import numpy as np, bot\n"
            "b = bot.ExportedBot()\n" + lines)
    return subprocess.run([sys.executable, "-c", code], cwd=folder, capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})


def test_bot_runs_without_sb3_torch_or_the_trainer(trained, tmp_path):
    """The exported folder alone: bot.py imports and decides with torch, SB3 and this repository unavailable."""
    root, _ = trained
    folder = tmp_path / "Bot"
    export_bot(root / "ck" / "PPO_1" / "model_final.zip", folder)
    result = run_bot_alone(folder, "print(b.policy.act(np.zeros(b.settings['obs_size'], dtype=np.float32)))\n")
    assert result.returncode == 0, result.stderr[-2000:]
    assert 0 <= int(result.stdout.strip().splitlines()[-1]) < 90


def _parity(bot_folder: Path, model_path: Path, bot_team: str, opponent: str, episodes: int, cfg: dict) -> tuple:
    """Play the exported bot on RLBot packets; return the share of decisions whose bot observation equals the
    training observation, and the share whose action equals the SB3 model's deterministic one on that
    observation (what evaluate.py plays)."""
    bot = ExportedBotDriver(bot_folder, record=True)
    other = make_driver(opponent, lookup_table(cfg.environment), seed=5)
    blue, orange = (bot, other) if bot_team == "blue" else (other, bot)
    play_episodes(blue, orange, cfg.environment, cfg.rewards, 1, episodes, seed=11)
    env_obs = np.stack([d.env_obs for d in bot.decisions])
    bot_obs = np.stack([d.bot_obs for d in bot.decisions])
    model_actions = load_policy_driver(model_path)(env_obs, None, ["car"] * len(env_obs))
    obs_equal = np.abs(env_obs - bot_obs).max(axis=1) <= OBS_TOLERANCE
    actions_equal = model_actions == np.array([d.action for d in bot.decisions])
    return len(env_obs), float(obs_equal.mean()), float(actions_equal.mean())


@pytest.mark.parametrize("team", ["blue", "orange"])
def test_exported_bot_sees_and_acts_as_in_training(asset_bot, team):
    """From RLBot packets the bot rebuilds the training observation and takes the model's action, on each side,
    against a ball chaser that drives, jumps and boosts (pads get picked up, cars leave the ground)."""
    cfg = load_config(ASSET / "config.yaml", ["environment.no_touch_timeout_seconds=4",
                                               "environment.episode_seconds=15"])
    decisions, obs_share, action_share = _parity(asset_bot, ASSET_MODEL, team, "chaser", 3, cfg)
    assert decisions >= 150
    assert obs_share >= PARITY_SHARE, f"observations equal on only {obs_share:.1%} of {decisions} decisions"
    assert action_share >= PARITY_SHARE, f"actions equal on only {action_share:.1%} of {decisions} decisions"


def test_evaluate_plays_a_bot_folder_against_a_saved_model(asset_bot, trained, tmp_path):
    root, _ = trained
    result = run_cli("evaluate.py", "--model", str(asset_bot), "--episodes", "1", "--json",
                     "--opponent", f"idle,{root / 'ck' / 'PPO_1' / 'model_final.zip'}",
                     "--set", "environment.no_touch_timeout_seconds=3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["vs_idle"]["episodes"] == 1 and len(summary) == 4
    reverse = run_cli("evaluate.py", "--model", str(root / "ck" / "PPO_1" / "model_final.zip"), "--episodes", "1",
                      "--json", "--opponent", str(asset_bot), cwd=tmp_path)  # a saved model against the bot
    assert reverse.returncode == 0, reverse.stderr[-3000:]
    assert json.loads(reverse.stdout.strip().splitlines()[-1])[f"vs_{asset_bot}"]["episodes"] == 1


def test_export_refuses_what_it_cannot_export(trained, tmp_path):
    root, _ = trained
    model = tmp_path / "lonely" / "model_final.zip"
    model.parent.mkdir()
    shutil.copy(root / "ck" / "PPO_1" / "model_final.zip", model)
    shutil.copy(root / "ck" / "PPO_1" / "vecnormalize_final.pkl", model.parent)
    result = run_cli("export_rlbot.py", "--model", str(model), "--out", str(tmp_path / "B"), cwd=tmp_path)
    assert result.returncode == 2 and "--config" in result.stderr  # no config.yaml beside it
    (tmp_path / "C.cfg.yaml").write_text("environment:\n  obs_zero_padding: 2\n")
    mismatch = run_cli("export_rlbot.py", "--model", str(model), "--out", str(tmp_path / "B"), "--config",
                       str(tmp_path / "C.cfg.yaml"), cwd=tmp_path)
    assert mismatch.returncode == 2 and "obs_zero_padding" in mismatch.stderr
    assert not (tmp_path / "B").exists()


def test_a_custom_obs_builder_travels_with_the_bot_and_builds_the_training_obs(custom_trained, tmp_path):
    """A model trained on a user's own obs builder: the export copies its package into the bot folder, the bot
    builds it alone (no trainer, no user folder on the path), and its observations from RLBot packets equal the
    training ones."""
    root, _ = custom_trained
    model = root / "ck" / "PPO_1" / "model_final.zip"
    result = run_cli("export_rlbot.py", "--model", str(model), "--out", str(tmp_path / "Custom"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    folder = tmp_path / "Custom"
    assert (folder / "mybot" / "parts.py").is_file()
    settings = json.loads((folder / "settings.json").read_text())
    assert settings["obs_builder"] == {"class": "mybot.parts:BoostObs", "kwargs": {"zero_padding": 3}}
    alone = run_bot_alone(folder, "print(type(b.obs_builder).__module__, b.settings['obs_size'])\n")
    assert alone.returncode == 0, alone.stderr[-2000:]
    assert alone.stdout.split() == ["mybot.parts", "173"]
    cfg = load_config(root / "ck" / "PPO_1" / "config.yaml", ["environment.no_touch_timeout_seconds=4",
                                                              "environment.episode_seconds=15"])
    decisions, obs_share, action_share = _parity(folder, model, "blue", "chaser", 2, cfg)
    assert decisions >= 100
    assert obs_share >= PARITY_SHARE, f"observations equal on only {obs_share:.1%} of {decisions} decisions"
    assert action_share >= PARITY_SHARE, f"actions equal on only {action_share:.1%} of {decisions} decisions"


def test_a_model_trained_without_observation_normalization_is_a_pair_that_plays_and_exports(trained, tmp_path):
    """normalize.norm_obs false: SB3's VecNormalize then holds no observation statistics. The pair still loads
    (inspect_pair checks the size from the normalizer's observation space), plays, and exports with an identity
    normalizer that the bot's numpy policy applies as the model saw its observations."""
    from training.model_files import inspect_pair
    from training.setup import make_eval_env

    root, _ = trained
    run = tmp_path / "run"
    shutil.copytree(root / "ck" / "PPO_1", run)
    cfg = load_config(run / "config.yaml", ["normalize.norm_obs=false", "environment.episode_seconds=4"])
    env = make_eval_env(cfg, seed=0)
    env.save(str(run / "vecnormalize_final.pkl"))
    env.close()
    model = run / "model_final.zip"
    assert inspect_pair(model).obs_shape == (172,)
    driver = load_policy_driver(model)
    episodes = play_episodes(driver, make_driver("idle", lookup_table(cfg.environment), 0), cfg.environment,
                             cfg.rewards, 1, 1, seed=0)
    assert len(episodes) == 1
    folder = tmp_path / "bots" / "Raw"
    export_bot(model, folder)  # checks the numpy policy's logits against the torch policy's
    policy = np.load(folder / "policy.npz")
    assert not policy["obs_mean"].any() and np.isinf(policy["clip_obs"])
