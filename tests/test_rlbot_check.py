"""``export_rlbot.py --check``: a freshly trained bot, installed from its own folder's requirements into its own
venv, started by its bot.toml run command through the shell, plays real-time matches through the stand-in RLBot
v5 core (120 Hz whether it answered or not, the game's phases, jitter and dropped packets), and a bot that is too
slow, crashes or cannot be installed fails the check."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from rlbot_export.export import export_bot
from tests.helpers import run_cli

#: Every phase a match with a goal shows a bot, in the order it first sees them.
ALL_PHASES = ["Inactive", "Countdown", "Active", "GoalScored", "Replay", "Kickoff", "Ended"]
#: A short match that still has a goal (the goal opening), its replay and a second kickoff, with jitter and drops.
MATCH_ARGS = ["--seconds", "8", "--open-with-goal", "--jitter-ms", "2", "--drop", "0.01"]
CHECK_TIMEOUT_S = 400


@pytest.fixture(scope="module")
def fresh_bot(trained, tmp_path_factory) -> tuple[Path, Path]:
    """The tiny model trained by the ``trained`` fixture, exported; and the cache folder of bot venvs."""
    root, _ = trained
    folder = tmp_path_factory.mktemp("bots") / "FreshBot"
    export_bot(root / "ck" / "PPO_1" / "model_final.zip", folder)
    return folder, tmp_path_factory.mktemp("bot-venvs")


def check(folder: Path, venvs: Path, *args: str, cwd: Path):
    return run_cli("export_rlbot.py", "--check", str(folder), "--venv-cache", str(venvs), *args, cwd=cwd,
                   timeout=CHECK_TIMEOUT_S)


def report_of(result) -> dict:
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_exported_bot_plays_a_real_time_match_from_its_own_venv(fresh_bot, tmp_path):
    """In 2v2 the bot drives a car of each team (player indices 1 and 2), other cars on the field: this covers the
    default 1v1's path (`--mode 1v1`) plus each bot process finding its own car. One real-time match, not two: a match
    takes its seconds whatever the machine, and the suite must stay within CI's time."""
    folder, venvs = fresh_bot
    assert not (folder / "venv").exists()  # nothing of the trainer's environment is linked in
    result = check(folder, venvs, "--mode", "2v2", *MATCH_ARGS, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-4000:]
    report = report_of(result)
    assert report["passed"] and report["failures"] == []
    assert report["phases"] == ALL_PHASES
    assert report["goals"]["blue"] >= 1 and report["kickoffs"] >= 2
    assert report["missed_share"] <= 0.01 and report["ticks"] > 1500
    assert Path(report["venv"]).is_dir() and not (folder / "venv").exists()
    assert [(b["team"], b["player_index"]) for b in report["bots"]] == [(0, 1), (1, 2)]
    for bot in report["bots"]:
        assert bot["exit_code"] == 0  # it left when the core disconnected
        assert bot["decision_ticks"] >= 50 and bot["inputs"] > 1000
        # its decisions, made from RLBot packets in its own process, are the trained policy's on the same states
        assert bot["policy_decisions"] >= 0.95 * bot["decision_ticks"] and bot["policy_match"] >= 0.95, bot


SLOW_BOT = '''"""The exported bot, made too slow for the game: 25 ms per decision (a decision is due every 8.3 ms tick)."""
import time

import bot


class SlowBot(bot.ExportedBot):
    def get_action(self, obs, game_state, packet):
        time.sleep(0.025)
        return super().get_action(obs, game_state, packet)


if __name__ == "__main__":
    SlowBot().run(wants_match_communications=False, wants_ball_predictions=False)
'''


def test_a_bot_too_slow_for_real_time_fails_the_check(fresh_bot, tmp_path):
    folder, venvs = fresh_bot
    slow = tmp_path / "SlowBot"
    shutil.copytree(folder, slow)
    (slow / "slow_bot.py").write_text(SLOW_BOT)
    toml = (slow / "bot.toml").read_text().replace("./venv/bin/python bot.py", "./venv/bin/python slow_bot.py")
    (slow / "bot.toml").write_text(toml)
    result = check(slow, venvs, "--seconds", "3", cwd=tmp_path)
    assert result.returncode == 1, result.stderr[-3000:]
    report = report_of(result)
    assert not report["passed"] and report["missed_share"] > 0.5
    assert "missed" in result.stderr and "decision ticks" in result.stderr


def test_check_refuses_what_is_not_a_working_bot(fresh_bot, tmp_path):
    folder, venvs = fresh_bot
    (tmp_path / "empty").mkdir()
    not_a_bot = check(tmp_path / "empty", venvs, cwd=tmp_path)
    assert not_a_bot.returncode == 2 and "bot.toml" in not_a_bot.stderr and "export_rlbot.py --model" in not_a_bot.stderr

    crashing = tmp_path / "CrashBot"
    shutil.copytree(folder, crashing)
    (crashing / "bot.py").write_text("raise RuntimeError('the bot broke at start')\n")
    crashed = check(crashing, venvs, "--seconds", "2", cwd=tmp_path)
    assert crashed.returncode == 1 and "exited before the match started" in crashed.stderr
    assert "the bot broke at start" in crashed.stderr  # the bot's own output tail

    broken = tmp_path / "BrokenBot"
    shutil.copytree(folder, broken)
    (broken / "requirements.txt").write_text("rlgym-no-such-package-anywhere==9.9.9\n")
    uninstallable = check(broken, venvs, "--seconds", "2", cwd=tmp_path)
    assert uninstallable.returncode == 1 and "requirements do not install" in uninstallable.stderr
    assert "rlgym-no-such-package-anywhere" in uninstallable.stderr  # pip's own message
