"""One learning car in an RLGym v2 match, as a ``gymnasium.Env`` that Stable-Baselines3 can train.

RLGym v2 is multi-agent (dicts keyed by agent id) and rlgym-tools v2 ships no Gymnasium/SB3 adapter,
so this thin wrapper exposes the car ``blue-0`` as a single-agent env. Other cars in the match
(``orange_size > 0`` or ``blue_size > 1``) are driven by a fixed opponent policy.
"""

from __future__ import annotations

import os
import random
import sys
from typing import Any, Optional

import gymnasium as gym
import numpy as np
from rlgym.api import StateMutator
from rlgym.rocket_league.api import GameState
from rlgym.rocket_league.common_values import TICKS_PER_SECOND

from envs.components import build_match
from envs.schema import EnvironmentConfig, Rewards

LEARNER = "blue-0"


class RocketLeagueEnv(gym.Env):
    """Gymnasium env for the car ``blue-0``.

    * Observation: ``float32`` vector of the configured obs builder (DefaultObs: 52 + 40 * obs_zero_padding).
    * Action: ``Discrete(90)``, an index into rlgym's ``LookupTableAction`` table, held for ``tick_skip`` ticks.
    * ``terminated``: a goal was scored, or the no-touch timeout when ``no_touch_timeout_terminal``.
      ``truncated``: the episode time limit, or the no-touch timeout when not ``no_touch_timeout_terminal``.
    * ``info["reward_parts"]``: part name -> weighted value; they add up exactly to the returned reward.
    * ``info["touched"]``: the car touched the ball during the step. ``info["goal"]``: +1 our team scored,
      -1 conceded, 0 no goal.

    :param env_cfg: the ``environment`` section of the config.
    :param reward_weights: the ``rewards`` section of the config.
    :param state_mutator: optional mutator replacing the configured ones (tests use it).
    """

    metadata = {"render_modes": []}

    def __init__(self, env_cfg: EnvironmentConfig, reward_weights: Rewards,
                 state_mutator: Optional[StateMutator] = None):
        super().__init__()
        self.env_cfg = env_cfg
        self.match, self.reward_fn = build_match(env_cfg, reward_weights, state_mutator)
        self.decision_seconds: float = env_cfg.tick_skip / TICKS_PER_SECOND
        self._opponent_random = env_cfg.opponent_policy == "random"
        table = self.match.action_parser.parser._lookup_table
        self._idle_action = int(np.flatnonzero(~table.any(axis=1))[0])  # the all-zero controls row
        self._n_actions = len(table)
        self._rng = np.random.default_rng()

        obs = self.match.reset()
        obs_size = obs[LEARNER].shape[0]
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(obs_size,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(self._n_actions)

    @property
    def state(self) -> GameState:
        """The current rlgym ``GameState`` (for evaluation, rendering and debugging)."""
        return self.match.state

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if seed is not None:
            # rlgym's mutators draw from the global `random` / `np.random` generators.
            random.seed(seed)
            np.random.seed(seed % 2**32)
            self._rng = np.random.default_rng(seed)
        obs = self.match.reset()
        return obs[LEARNER].astype(np.float32, copy=False), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        actions = {}
        for agent in self.match.agents:
            if agent == LEARNER:
                actions[agent] = np.array([int(action)])
            elif self._opponent_random:
                actions[agent] = np.array([int(self._rng.integers(self._n_actions))])
            else:
                actions[agent] = np.array([self._idle_action])
        obs, rewards, terminated, truncated = self.match.step(actions)
        state = self.match.state
        is_terminated = bool(terminated[LEARNER])
        goal = 0
        if state.goal_scored:
            goal = 1 if state.scoring_team == state.cars[LEARNER].team_num else -1
        info = {
            "reward_parts": self.reward_fn.last_parts[LEARNER],
            "touched": state.cars[LEARNER].ball_touches > 0,
            "goal": goal,
        }
        return (obs[LEARNER].astype(np.float32, copy=False), float(rewards[LEARNER]), is_terminated,
                bool(truncated[LEARNER]) and not is_terminated, info)

    def process_info(self) -> dict[str, Any]:
        """Where this env runs: pid and thread limits (shown at start-up, checked by the tests)."""
        torch = sys.modules.get("torch")
        return {
            "pid": os.getpid(),
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
            "torch_threads": torch.get_num_threads() if torch is not None else None,
        }

    def close(self) -> None:
        self.match.close()


class StateInInfo(gym.Wrapper):
    """Adds the post-step rlgym ``GameState`` as ``info["state"]`` (for rendering evaluation episodes).

    Vec envs reset a finished episode inside ``step``, so reading ``env.state`` afterwards would show the
    next episode's first state, not the goal. Only for in-process envs: pickling a state to another
    process on every step would slow training down.
    """

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        info["state"] = self.env.unwrapped.state
        return obs, reward, terminated, truncated, info


__all__ = ["RocketLeagueEnv", "StateInInfo", "LEARNER"]
