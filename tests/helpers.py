"""Shared test helpers: a tiny-but-real training config and start states that force episode ends."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict

import numpy as np
import psutil
from rlgym.api import StateMutator
from rlgym.rocket_league.api import GameState
from rlgym.rocket_league.common_values import BALL_RADIUS, BACK_WALL_Y

from config import load_config


REPO = Path(__file__).resolve().parent.parent

#: Overrides that keep a real training run to seconds: small network, short rollouts, frequent saves.
FAST_TRAIN = [
    "training.n_steps=64",
    "training.batch_size=64",
    "training.n_epochs=2",
    "training.net_arch.pi=[32]",
    "training.net_arch.vf=[32]",
    "checkpoints.save_freq=256",
    "checkpoints.keep_last=0",
    "evaluation.eval_freq=256",
    "evaluation.n_eval_episodes=1",
    "environment.no_touch_timeout_seconds=2.0",
    "environment.selfplay.matches.1v1=1",  # self-play (the default vec env): one 1v1 match = 2 env slots
    "league.matches.1v1=0",  # no league match (tests/test_league.py adds them)
    "curriculum.enabled=false",  # the matches as configured (tests/test_curriculum.py runs the curriculum)
]


#: Steps of the shared ``trained`` run (tests/conftest.py): 8 iterations of 2 slots x 64 steps, a pair every 256.
TRAINED_TOTAL = 1024


def fast_config(*extra: str) -> Dict[str, Any]:
    return load_config(None, FAST_TRAIN + list(extra))


class BallIntoOrangeGoalMutator(StateMutator[GameState]):
    """Ball just in front of the orange goal, flying into it: a goal (terminated) within a few steps."""

    def apply(self, state: GameState, shared_info: Dict[str, Any]) -> None:
        state.ball.position = np.array([0.0, BACK_WALL_Y - 400.0, BALL_RADIUS + 50.0], dtype=np.float32)
        state.ball.linear_velocity = np.array([0.0, 2500.0, 0.0], dtype=np.float32)
        state.ball.angular_velocity = np.zeros(3, dtype=np.float32)
        for i, car in enumerate(state.cars.values()):
            car.physics.position = np.array([-1000.0 + 500 * i, 0.0, 17.0], dtype=np.float32)
            car.physics.linear_velocity = np.zeros(3, dtype=np.float32)
            car.physics.angular_velocity = np.zeros(3, dtype=np.float32)
            car.physics.euler_angles = np.array([0.0, np.pi / 2, 0.0], dtype=np.float32)
            car.boost_amount = 33.3


def run_cli(script: str, *args: str, cwd: Path, timeout: float = 240, **kwargs) -> subprocess.CompletedProcess:
    """Run ``python <repo>/<script> args...`` as a user would, from ``cwd``."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, str(REPO / script), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, **kwargs)


def run_module(module: str, *args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``python -m <module> args...`` as a user would, from ``cwd``."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def set_args(overrides: list[str]) -> list[str]:
    out: list[str] = []
    for item in overrides:
        out += ["--set", item]
    return out


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def start_training(tmp_path: Path, args: list[str], **popen_kwargs) -> subprocess.Popen:
    """Start ``train_sb3.py args`` in ``tmp_path`` and return once it saved its first checkpoint."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cmd = [sys.executable, str(REPO / "train_sb3.py"), "--checkpoint-dir", "ck", "--log-dir", "logs", *args]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, text=True, **popen_kwargs)
    deadline = time.time() + 120
    while not list((tmp_path / "ck").glob("*/checkpoint_*.zip")):
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.time() < deadline, "training never saved its first checkpoint"
        time.sleep(0.1)
    return proc


def shm_files() -> set[str]:
    return set(os.listdir("/dev/shm"))


def play(env, actions: np.ndarray, groups: int = 0) -> list[tuple]:
    """Reset and step ``env``; with ``groups`` > 0 through its group API (as the pipelined collection does: every
    group sent before the first is read)."""
    out = [(env.reset(),)]
    slices = env.group_slices(groups) if groups else []
    for row in actions:
        if slices:
            for g, slots in enumerate(slices):
                env.step_group_async(g, row[slots])
            parts = [env.step_group_wait(g) for g in range(len(slices))]
            obs, rewards, dones = (np.concatenate([p[k] for p in parts]) for k in range(3))
            infos = [info for p in parts for info in p[3]]
        else:
            obs, rewards, dones, infos = env.step(row)
        out.append((obs, rewards, dones, [i.get("terminal_observation") for i in infos],
                    [sorted(i["reward_parts"].items()) for i in infos]))
    return out


#: A user's own bot package, written by the tests that train with custom parts (``write_custom_parts``): a reward,
#: an obs builder, a state mutator and a done condition, each an rlgym v2 class the trainer knows nothing about.
CUSTOM_PARTS = {
    "__init__.py": "",
    "parts.py": '''
import numpy as np
from rlgym.api import DoneCondition, RewardFunction, StateMutator
from rlgym.rocket_league.obs_builders import DefaultObs


class BallHeightReward(RewardFunction):
    """The ball's height in units of ``scale`` uu, every step (an easy part to check in TensorBoard)."""

    def __init__(self, scale=1000.0):
        self.scale = scale

    def reset(self, agents, initial_state, shared_info):
        pass

    def get_rewards(self, agents, state, is_terminated, is_truncated, shared_info):
        return {agent: float(state.ball.position[2]) / self.scale for agent in agents}


class BrokenReward(BallHeightReward):
    """Raises on its ``after_calls``-th step: a user's bug that shows up mid-run."""

    def __init__(self, after_calls=400):
        super().__init__()
        self.after_calls, self.calls = after_calls, 0

    def get_rewards(self, agents, state, is_terminated, is_truncated, shared_info):
        self.calls += 1
        if self.calls >= self.after_calls:
            raise ZeroDivisionError("my reward divided by zero")
        return super().get_rewards(agents, state, is_terminated, is_truncated, shared_info)


class BoostObs(DefaultObs):
    """DefaultObs followed by the car's boost amount / 100 (one more float)."""

    def get_obs_space(self, agent):
        kind, size = super().get_obs_space(agent)
        return kind, size + 1

    def build_obs(self, agents, state, shared_info):
        obs = super().build_obs(agents, state, shared_info)
        return {a: np.append(obs[a], np.float32(state.cars[a].boost_amount / 100)) for a in agents}


class HalfBoostMutator(StateMutator):
    """Every car starts with ``boost`` boost."""

    def __init__(self, boost=50.0):
        self.boost = boost

    def apply(self, state, shared_info):
        for car in state.cars.values():
            car.boost_amount = self.boost


class BallTooHighCondition(DoneCondition):
    """Done when the ball's centre is above ``height`` uu."""

    def __init__(self, height=1500.0):
        self.height = height

    def reset(self, agents, initial_state, shared_info):
        pass

    def is_done(self, agents, state, shared_info):
        return {agent: bool(state.ball.position[2] > self.height) for agent in agents}


class NotAPart:
    pass
''',
}

#: A config naming every part of ``CUSTOM_PARTS`` (module ``mybot.parts``), imported from the current folder.
CUSTOM_CONFIG = """
environment:
  obs_builder: {class: "mybot.parts:BoostObs", kwargs: {zero_padding: 3}}
  state_mutators: [kickoff, {class: "mybot.parts:HalfBoostMutator", kwargs: {boost: 50}}]
  done_conditions:
    terminal: []
    truncation: [{class: "mybot.parts:BallTooHighCondition", kwargs: {height: 1500}}]
rewards:
  height: {class: "mybot.parts:BallHeightReward", weight: 0.5, kwargs: {scale: 1000}}
"""


def write_custom_parts(folder: Path) -> Path:
    """``folder/mybot/`` (the package of ``CUSTOM_PARTS``) and ``folder/my.yaml`` (``CUSTOM_CONFIG``); the config."""
    (folder / "mybot").mkdir(parents=True)
    for name, text in CUSTOM_PARTS.items():
        (folder / "mybot" / name).write_text(text)
    (folder / "my.yaml").write_text(CUSTOM_CONFIG)
    return folder / "my.yaml"
