"""What the local and the Ray self-play vec envs share: slots, league rows, step groups and SB3's VecEnv surface.

Why a base of our own: SB3's ``VecEnv`` assumes one env object per slot (``env_method``, ``get_attr``); here a slot
is one car of a match inside a worker process (:class:`vecenv.selfplay.SelfPlayVecEnv`) or a Ray actor
(:class:`vecenv.ray_backend.RayVecEnv`). Both split the run's matches into *units* (workers or actors) with
:func:`vecenv.worker.plan_workers`; a unit owns a contiguous range of slots. This class holds everything that does
not depend on how a unit is reached: the slot count and spaces, the league matches' opponent rows, the step groups
of the pipelined rollout (:mod:`training.pipeline`), ``step_async`` / ``step_wait`` in terms of the groups, and the
answers SB3's generic methods get. Subclasses implement :meth:`_send_step` and :meth:`_finish_step` for a list of
units, and :meth:`process_info`.
"""

from __future__ import annotations

from typing import Any, Optional, Protocol, Sequence

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn

from envs.components import build_match, selfplay_team_sizes
from envs.schema import EnvironmentConfig, Rewards
from envs.scripted import SCRIPTED_NAMES
from vecenv.worker import TRAINER_DRIVEN, WorkerPlan, league_match_plans


__all__ = ["TRAINER_DRIVEN", "MatchesVecEnv", "Opponents", "ScriptedOpponents", "probe_spaces"]


class Opponents(Protocol):
    """Who drives the opponent team of each league match (``league/`` implements it for training).

    ``assign`` returns an ``opp_kind``: :data:`vecenv.worker.TRAINER_DRIVEN` (then ``act`` gives the
    actions) or ``1 + i`` for the scripted driver ``SCRIPTED_NAMES[i]``.
    """

    def assign(self, match: int) -> int:
        """Choose the opponent of league match ``match`` for its next episode."""

    def result(self, match: int, outcome: Optional[int], touched: bool = False) -> None:
        """League match ``match`` ended: +1 the learning team scored, -1 it conceded, 0 no goal; None: lost with
        a restarted worker (no result). ``touched``: a car of the learning team touched the ball in the episode."""

    def act(self, obs: np.ndarray, matches: np.ndarray) -> np.ndarray:
        """Actions ``[n]`` for trainer-driven opponent cars with raw observations ``obs`` ``[n, obs_size]`` in
        league matches ``matches`` ``[n]``."""


class ScriptedOpponents:
    """Default :class:`Opponents`: a scripted driver drawn uniformly for every episode (no trainer-side policy)."""

    def __init__(self, names: Sequence[str] = SCRIPTED_NAMES, seed: int = 0):
        self.kinds = [1 + SCRIPTED_NAMES.index(name) for name in names]
        self.rng = np.random.default_rng(seed)

    def assign(self, match: int) -> int:
        return int(self.rng.choice(self.kinds))

    def result(self, match: int, outcome: Optional[int], touched: bool = False) -> None:
        pass

    def act(self, obs: np.ndarray, matches: np.ndarray) -> np.ndarray:
        raise RuntimeError("ScriptedOpponents drive no opponent from the trainer")


def probe_spaces(env_cfg: EnvironmentConfig, reward_weights: Rewards) -> tuple[gym.spaces.Box, gym.spaces.Discrete,
                                                                                     tuple[str, ...]]:
    """Observation space, action space and reward-part names of the configured match, from a throwaway 1v1.

    Every team size gives the same observation size (the obs builders pad to ``obs_zero_padding`` cars).
    """
    match, reward_fn = build_match(env_cfg, reward_weights, team_sizes=(1, 1))
    try:
        obs = match.reset()
        size = next(iter(obs.values())).shape[0]
        n_actions = len(match.action_parser.parser._lookup_table)
    finally:
        match.close()
    return (gym.spaces.Box(-np.inf, np.inf, shape=(size,), dtype=np.float32), gym.spaces.Discrete(n_actions),
            reward_fn.names)


class MatchesVecEnv(VecEnv):
    """Every car of the self-play matches, then the learning cars of the league matches, as SB3 env slots, run by
    units (workers or actors) that each own the contiguous slots of their plan (module docstring).

    :param env_cfg: the config's ``environment`` section (``selfplay.matches`` sets the self-play matches).
    :param reward_weights: the config's ``rewards`` section.
    :param seed: base seed; match ``i`` is seeded from (seed, i), independent of how matches are spread.
    :param league_sizes: cars per team of each league match (after the self-play matches' slots).
    :param opponents: who drives the league opponents (default: :class:`ScriptedOpponents`).
    """

    #: What a unit is called in messages ("self-play worker", "Ray actor").
    unit_name = "unit"
    #: Set from :func:`probe_spaces`.
    observation_space: gym.spaces.Box
    action_space: gym.spaces.Discrete

    def __init__(self, env_cfg: EnvironmentConfig, reward_weights: Rewards, seed: int,
                 league_sizes: Sequence[int] = (), opponents: Optional[Opponents] = None):
        self.team_sizes = selfplay_team_sizes(env_cfg)
        observation_space, action_space, self.part_names = probe_spaces(env_cfg, reward_weights)
        super().__init__(2 * sum(self.team_sizes) + sum(league_sizes), observation_space, action_space)
        self.env_cfg, self.reward_weights = env_cfg, reward_weights
        self.league_sizes = list(league_sizes)
        self.opponents: Opponents = opponents or ScriptedOpponents(seed=seed)
        self.closed = False
        self.waiting = False
        self._seed = seed
        self.plans: list[WorkerPlan] = []
        self._groups: list[list[int]] = []
        self._group_pending: list[Any] = []
        self._pending: Any = None

    def _set_plans(self, plans: list[WorkerPlan]) -> None:
        """The units' plans; sets the league matches' rows (run-wide numbering) and one group of all units."""
        self.plans = plans
        league_plans = league_match_plans(plans)
        #: Per league match: its first learning slot; per opponent row: its league match.
        self.league_first_slot = np.array([m.first_slot for m in league_plans], dtype=np.int64)
        self.opp_match = np.repeat(np.arange(len(league_plans)), [m.team_size for m in league_plans])
        self._groups = [list(range(len(plans)))]
        self._group_pending = [None]

    def _slots(self, units: Sequence[int]) -> slice:
        """The slots of consecutive units."""
        return slice(self.plans[units[0]].slots.start, self.plans[units[-1]].slots.stop)

    # ----------------------------------------------------------------------------------- for subclasses
    def _write_actions(self, slots: slice, actions: np.ndarray) -> None:
        """Store the policy's actions of ``slots`` until they are sent."""
        raise NotImplementedError

    def _send_step(self, units: Sequence[int]) -> Any:
        """Send these units their step; returns what :meth:`_finish_step` waits on."""
        raise NotImplementedError

    def _finish_step(self, units: Sequence[int], pending: Any) -> VecEnvStepReturn:
        """Wait for these units (replacing dead ones) and return SB3's step return for their slots."""
        raise NotImplementedError

    def process_info(self) -> list[dict[str, Any]]:
        """Per unit: its process(es) and thread settings."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------------ VecEnv API
    def set_opponents(self, opponents: Opponents) -> None:
        """Who drives the league opponents, from the next ``reset`` on (the training league is attached once the
        model exists, before ``learn`` resets the env)."""
        self.opponents = opponents

    def step_async(self, actions: np.ndarray) -> None:
        units = list(range(len(self.plans)))
        self._write_actions(slice(0, self.num_envs), np.asarray(actions).reshape(self.num_envs))
        self._pending = self._send_step(units)
        self.waiting = True

    def step_wait(self) -> VecEnvStepReturn:
        result = self._finish_step(list(range(len(self.plans))), self._pending)
        self.waiting = False
        return result

    # Groups: the pipelined rollout collection (training/pipeline.py) keeps several groups of units in flight,
    # stepping one group while the trainer runs inference on another.
    def group_slices(self, n_groups: int) -> list[slice]:
        """Split the units, in order, into ``min(n_groups, units)`` groups; returns each group's slots (a
        contiguous range). Groups are then stepped with :meth:`step_group_async` / :meth:`step_group_wait`."""
        self._groups = [list(map(int, g)) for g in np.array_split(np.arange(len(self.plans)),
                                                                   min(n_groups, len(self.plans)))]
        self._group_pending = [None for _ in self._groups]
        return [self._slots(g) for g in self._groups]

    def step_group_async(self, group: int, actions: np.ndarray) -> None:
        """Send the step of group ``group`` (its slots' actions, in slot order); other groups may be in flight."""
        units = self._groups[group]
        self._write_actions(self._slots(units), np.asarray(actions).reshape(-1))
        self._group_pending[group] = self._send_step(units)

    def step_group_wait(self, group: int) -> VecEnvStepReturn:
        """The step results of group ``group``'s slots, as :meth:`step_wait` gives them for all slots."""
        return self._finish_step(self._groups[group], self._group_pending[group])

    def _unit_of_slot(self, slot: int) -> int:
        return next(i for i, plan in enumerate(self.plans) if plan.slots.start <= slot < plan.slots.stop)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None,
                   **method_kwargs: Any) -> list[Any]:
        """Only ``process_info`` (of the unit running each slot): the slots are cars, not env objects."""
        if method_name != "process_info":
            raise AttributeError(f"{type(self).__name__} slots are cars inside {self.unit_name}s, not env objects; "
                                 f"env_method('{method_name}') is not available (only 'process_info').")
        per_unit = self.process_info()
        return [per_unit[self._unit_of_slot(slot)] for slot in self._get_indices(indices)]

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """``render_mode`` (None) only, for the same reason as :meth:`env_method`."""
        if attr_name != "render_mode":
            raise AttributeError(f"{type(self).__name__} slots have no attribute '{attr_name}' to read.")
        return [None for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        raise AttributeError(f"{type(self).__name__} slots have no attribute '{attr_name}' to set.")

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]
