"""Self-play matches spread over Ray actors (two per node by default), for training on several machines.

Why: Stable-Baselines3 has no distributed vec env, and the self-play vec env uses the cores of one machine. Ray
(the engine RLlib runs its env runners on) places actors on the machines of a cluster. Each actor runs the
existing shared-memory self-play worker pool (:class:`envs.selfplay_vec_env.SelfPlayVecEnv`) on its node for a
contiguous share of the matches, so the per-car path is today's; the trainer sends each actor its slice of
actions and gathers the results with one ``ray.get`` per step (per group of actors when collection is pipelined,
see :mod:`training.pipeline`).

:class:`RayVecEnv` gives SB3 exactly what :class:`SelfPlayVecEnv` gives for the same matches and seed (same slots,
rewards, dones, terminal observations, infos, reward parts; match ``i`` is seeded from (seed, i) wherever it runs),
and drives league opponents from the trainer the same way: trainer-driven opponents' actions are computed here
(one batch per step or group of actors) and sent with the step; ended league episodes come back with their result.

Faults: an actor that dies (its process or its node) is replaced by a new actor with fresh matches, as a dead
local worker is: its slots end their episode in that step as truncated, with ``info["worker_restarted"]``, and a
warning is issued. Ray is shut down on ``close`` when this env started it.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvObs, VecEnvStepReturn

from envs.components import selfplay_team_sizes
from envs.parts import module_roots
from envs.schema import EnvironmentConfig, RayConfig, Rewards
from envs.selfplay_vec_env import Opponents, ScriptedOpponents, probe_spaces
from envs.selfplay_worker import TRAINER_DRIVEN, WorkerPlan, plan_workers

RAY_INSTALL_HELP = ("environment.selfplay.backend 'ray' needs Ray, an optional install: "
                    "pip install -r requirements-ray.txt (or set environment.selfplay.backend=local).")
MATCH_NAMES = ("1v1", "2v2", "3v3")
#: Default actors per node: two, so that with 2 pipeline groups (``training.pipeline_groups``, auto with Ray) one
#: half of every node steps while the trainer runs the policy on the other half (measured on one 2-core machine:
#: two actors 0.89 of the local backend, two actors pipelined 0.93; README "Train on several machines").
ACTORS_PER_NODE = 2


class RayNotInstalled(ImportError):
    """``ray`` cannot be imported; the message says how to install it."""


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RayNotInstalled(RAY_INSTALL_HELP) from None
    return ray


class RelayOpponents:
    """The actor side of league opponents: actions, kinds and results travel with each step (module docstring)."""

    def __init__(self, n_league: int):
        self.kinds = np.zeros(n_league, dtype=np.int8)
        self.pending_actions = np.zeros(0, dtype=np.int64)
        self.results: list[tuple[int, Optional[int], bool]] = []

    def assign(self, match: int) -> int:
        return int(self.kinds[match])

    def result(self, match: int, outcome: Optional[int], touched: bool = False) -> None:
        self.results.append((match, outcome, touched))

    def act(self, obs: np.ndarray, matches: np.ndarray) -> np.ndarray:
        return self.pending_actions


class MatchGroupActor:
    """One Ray actor: a :class:`SelfPlayVecEnv` for a contiguous share of the run's matches (made a Ray actor class
    by :func:`actor_class`)."""

    def __init__(self, env_cfg: EnvironmentConfig, reward_weights: Rewards, seed: int, team_sizes: list[int],
                 league_sizes: list[int], first_match: int, num_workers: int, max_restarts: int,
                 state_mutator: Any = None):
        from envs.selfplay_vec_env import SelfPlayVecEnv

        cfg = copy.deepcopy(env_cfg)
        cfg.selfplay.matches = {name: sum(1 for size in team_sizes if size == i + 1)
                                      for i, name in enumerate(MATCH_NAMES)}
        self.opponents = RelayOpponents(len(league_sizes))
        self.env = SelfPlayVecEnv(cfg, reward_weights, seed, num_workers, max_restarts, state_mutator,
                                  league_sizes, self.opponents, first_match=first_match)

    def _league_state(self) -> dict[str, Any]:
        a = self.env._arrays
        results, self.opponents.results = self.opponents.results, []
        return {"opp_obs": a.opp_obs.copy(), "results": results}

    def reset(self, seed: int, kinds: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        self.opponents.kinds[:] = kinds
        self.env.seed(seed)
        obs = self.env.reset()
        return obs, self._league_state()

    def step(self, actions: np.ndarray, opp_actions: np.ndarray, kinds: np.ndarray) -> tuple:
        if len(kinds):
            self.env._arrays.opp_kind[:] = kinds
            self.opponents.kinds[:] = kinds
            rows = np.flatnonzero(kinds[self.env.opp_match] == TRAINER_DRIVEN)
            self.opponents.pending_actions = opp_actions[rows]
        obs, rewards, dones, infos = self.env.step(actions)
        return obs, rewards, dones, infos, self._league_state()

    def node(self) -> dict[str, Any]:
        import os
        import socket

        import ray

        return {"host": socket.gethostname(), "node_id": ray.get_runtime_context().get_node_id(), "pid": os.getpid(),
                "workers": self.env.worker_pids()}

    def close(self) -> None:
        self.env.close()


def actor_class(ray: Any, cpus: float) -> Any:
    return ray.remote(num_cpus=cpus, max_restarts=0)(MatchGroupActor)


@dataclass
class _Actor:
    handle: Any
    plan: WorkerPlan
    generation: int


#: The repository root: actors import this trainer's modules from it (every node needs the repository and its
#: virtual environment at the same path, see README "Train on several machines").
REPO_ROOT = str(Path(__file__).resolve().parent.parent)


def connect(ray: Any, ray_cfg: RayConfig, py_modules: Sequence[Path] = ()) -> bool:
    """Start or join Ray as ``ray.address`` says; True when this process connected (and must disconnect: a Ray
    started here is stopped with it, a cluster joined stays up). ``py_modules``: the packages of the user's own
    parts (``envs.parts.module_roots``), which Ray uploads to every node."""
    if ray.is_initialized():
        return False
    runtime_env: dict[str, Any] = {"env_vars": {"PYTHONPATH": REPO_ROOT, "OMP_NUM_THREADS": "1"}}
    if py_modules:
        runtime_env["py_modules"] = [str(path) for path in py_modules]
    address = ray_cfg.address
    if address == "local":
        ray.init(address="local", num_cpus=ray_cfg.num_cpus or None, include_dashboard=False, log_to_driver=False,
                 object_store_memory=ray_cfg.object_store_mb * 2**20 if ray_cfg.object_store_mb else None,
                 runtime_env=runtime_env)
    else:
        ray.init(address=address, log_to_driver=False, runtime_env=runtime_env)
    return True


class RayVecEnv(VecEnv):
    """The self-play matches (and league matches) on Ray actors; SB3 sees the same VecEnv as ``SelfPlayVecEnv``.

    :param ray_cfg: the config's ``ray`` section: ``address`` (``local``, ``auto`` or ``host:port``), ``actors``
        (0: two per alive node), ``cpus_per_actor`` (Ray CPUs each actor reserves; 0: half the smallest node),
        ``workers_per_actor`` (worker processes inside an actor; 0: one per reserved CPU), ``num_cpus`` and
        ``object_store_mb`` (``local`` only; 0: Ray's defaults).
    Other parameters as :class:`envs.selfplay_vec_env.SelfPlayVecEnv`.
    """

    def __init__(self, env_cfg: EnvironmentConfig, reward_weights: Rewards, seed: int, ray_cfg: RayConfig,
                 max_restarts: int = 10, league_sizes: Sequence[int] = (), opponents: Optional[Opponents] = None,
                 state_mutator: Any = None):
        self.ray = import_ray()
        team_sizes = selfplay_team_sizes(env_cfg)
        observation_space, action_space, self.part_names = probe_spaces(env_cfg, reward_weights)
        super().__init__(2 * sum(team_sizes) + sum(league_sizes), observation_space, action_space)
        self.env_cfg, self.reward_weights, self.ray_cfg = env_cfg, reward_weights, ray_cfg
        self.league_sizes, self.state_mutator = list(league_sizes), state_mutator
        self.opponents: Opponents = opponents or ScriptedOpponents(seed=seed)
        self.max_restarts, self.restarts, self.closed, self.waiting = max_restarts, 0, False, False
        self._seed = seed
        self._owns_ray = connect(self.ray, ray_cfg, module_roots(env_cfg, reward_weights))
        try:
            nodes = [n for n in self.ray.nodes() if n.get("Alive")]
            n_actors = ray_cfg.actors or ACTORS_PER_NODE * len(nodes)
            node_cpus = min(float(n.get("Resources", {}).get("CPU", 1.0)) for n in nodes)
            self.cpus_per_actor = ray_cfg.cpus_per_actor or node_cpus / ACTORS_PER_NODE
            self.workers_per_actor = ray_cfg.workers_per_actor or max(1, int(self.cpus_per_actor))
            self.plans = plan_workers(team_sizes, n_actors, league_sizes)
            self._cls = actor_class(self.ray, self.cpus_per_actor)
            league_plans = sorted((m for plan in self.plans for m in plan.matches if m.league_index is not None),
                                  key=lambda m: m.league_index)
            self.opp_match = np.repeat(np.arange(len(league_plans)), [m.team_size for m in league_plans])
            #: Per actor (plan): its league matches and opponent rows in the run's numbering.
            self._league_rows = [self._plan_league_rows(plan) for plan in self.plans]
            self.opp_kind = np.zeros(len(league_sizes), dtype=np.int8)
            self.opp_obs = np.zeros((len(self.opp_match), observation_space.shape[0]), dtype=np.float32)
            self._actors: list[_Actor] = [self._start(plan, 0) for plan in self.plans]
            self._last_obs = np.zeros((self.num_envs, observation_space.shape[0]), dtype=np.float32)
            self._actions = np.zeros(self.num_envs, dtype=np.int64)
            self._futures: list[Any] = []
            self._groups: list[list[int]] = [list(range(len(self._actors)))]
            self._group_futures: list[list[Any]] = [[]]
            errors = self.ray.exceptions
            self._actor_errors = tuple(getattr(errors, name) for name in ("RayActorError", "ActorDiedError",
                                                                        "ActorUnavailableError") if hasattr(errors, name))
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------------------------------ actors
    @staticmethod
    def _plan_league_rows(plan: WorkerPlan) -> tuple[slice, slice]:
        """The plan's league matches and opponent rows in the run's numbering."""
        league = [m for m in plan.matches if m.league_index is not None]
        if not league:
            return slice(0, 0), slice(0, 0)
        return (slice(league[0].league_index, league[-1].league_index + 1),
                slice(league[0].first_opp, league[-1].first_opp + league[-1].team_size))

    def _start(self, plan: WorkerPlan, generation: int) -> _Actor:
        team_sizes = [m.team_size for m in plan.matches if m.league_index is None]
        league_sizes = [m.team_size for m in plan.matches if m.league_index is not None]
        handle = self._cls.options(scheduling_strategy="SPREAD").remote(
            self.env_cfg, self.reward_weights, self._actor_seed(generation), team_sizes, league_sizes,
            plan.matches[0].index, self.workers_per_actor, self.env_cfg.selfplay.max_worker_restarts,
            self.state_mutator)
        return _Actor(handle, plan, generation)

    def _actor_seed(self, generation: int) -> int:
        """Generation 0 uses the run's seed (matches seeded as locally); a replacement gets fresh seeds."""
        if generation == 0:
            return self._seed
        return int(np.random.SeedSequence([self._seed, 7919, generation]).generate_state(1)[0])

    def _replace(self, index: int, error: BaseException) -> None:
        old = self._actors[index]
        self.restarts += 1
        if self.restarts > self.max_restarts:
            raise RuntimeError(f"Ray actor {index} died ({type(error).__name__}) after {self.max_restarts} restarts "
                               "in this run; stopping. Raise environment.selfplay.max_worker_restarts to go on "
                               "anyway.") from error
        try:
            self.ray.kill(old.handle)
        except Exception:
            pass
        plan = old.plan
        warnings.warn(f"Ray actor {index} (matches {plan.matches[0].index}-{plan.matches[-1].index}) died "
                      f"({type(error).__name__}); replacing it with fresh matches: slots {plan.slots.start}-"
                      f"{plan.slots.stop - 1} end their episode as truncated. Restart {self.restarts} of at most "
                      f"{self.max_restarts}.", RuntimeWarning, stacklevel=3)
        self._actors[index] = self._start(plan, old.generation + 1)
        league, _ = self._league_rows[index]
        obs, state = self.ray.get(self._actors[index].handle.reset.remote(
            self._actor_seed(old.generation + 1), self.opp_kind[league]))
        self._take_league_state(index, state)
        self._fresh_obs = obs

    def set_opponents(self, opponents: Opponents) -> None:
        self.opponents = opponents

    def _take_league_state(self, index: int, state: dict[str, Any]) -> None:
        league, rows = self._league_rows[index]
        self.opp_obs[rows] = state["opp_obs"]
        for match, outcome, touched in state["results"]:
            match = league.start + match
            self.opponents.result(match, outcome, touched)
            self.opp_kind[match] = self.opponents.assign(match)

    # --------------------------------------------------------------------------------------- VecEnv API
    def reset(self) -> VecEnvObs:
        if self._seeds[0] is not None:
            self._seed = int(self._seeds[0])
        for match in range(len(self.league_sizes)):
            self.opp_kind[match] = self.opponents.assign(match)
        futures = []
        for index, actor in enumerate(self._actors):
            league, _ = self._league_rows[index]
            futures.append(actor.handle.reset.remote(self._actor_seed(actor.generation), self.opp_kind[league]))
        for index, future in enumerate(futures):
            obs, state = self.ray.get(future)
            self._take_league_state(index, state)
            self._last_obs[self._actors[index].plan.slots] = obs
        self._reset_seeds()
        return self._last_obs.copy()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions[:] = np.asarray(actions).reshape(self.num_envs)
        self._futures = self._send_step(range(len(self._actors)))
        self.waiting = True

    def step_wait(self) -> VecEnvStepReturn:
        result = self._finish_step(range(len(self._actors)), self._futures)
        self.waiting = False
        return result

    # Groups of actors for the pipelined rollout collection (training/pipeline.py), as in SelfPlayVecEnv.
    def group_slices(self, n_groups: int) -> list[slice]:
        self._groups = [list(map(int, g)) for g in np.array_split(np.arange(len(self._actors)),
                                                                   min(n_groups, len(self._actors)))]
        self._group_futures = [[] for _ in self._groups]
        return [slice(self._actors[g[0]].plan.slots.start, self._actors[g[-1]].plan.slots.stop) for g in self._groups]

    def step_group_async(self, group: int, actions: np.ndarray) -> None:
        actors = self._groups[group]
        slots = slice(self._actors[actors[0]].plan.slots.start, self._actors[actors[-1]].plan.slots.stop)
        self._actions[slots] = np.asarray(actions).reshape(-1)
        self._group_futures[group] = self._send_step(actors)

    def step_group_wait(self, group: int) -> VecEnvStepReturn:
        return self._finish_step(self._groups[group], self._group_futures[group])

    def _send_step(self, actors: Sequence[int]) -> list[Any]:
        """Send these actors their step: their actions, and their trainer-driven opponents' actions (asked from the
        opponents in one call for all of them, as the local env does per step)."""
        opp_actions = np.zeros(len(self.opp_match), dtype=np.int64)
        rows = np.concatenate([np.arange(self._league_rows[i][1].start, self._league_rows[i][1].stop) for i in actors])
        rows = rows[self.opp_kind[self.opp_match[rows]] == TRAINER_DRIVEN]
        if len(rows):
            opp_actions[rows] = np.asarray(self.opponents.act(self.opp_obs[rows], self.opp_match[rows])).reshape(-1)
        futures = []
        for index in actors:
            actor = self._actors[index]
            league, opp = self._league_rows[index]
            futures.append(actor.handle.step.remote(self._actions[actor.plan.slots], opp_actions[opp],
                                                    self.opp_kind[league]))
        return futures

    def _finish_step(self, actors: Sequence[int], futures: list[Any]) -> VecEnvStepReturn:
        actors = list(actors)
        first = self._actors[actors[0]].plan.slots.start
        stop = self._actors[actors[-1]].plan.slots.stop
        obs = np.empty((stop - first, self._last_obs.shape[1]), dtype=np.float32)
        rewards = np.zeros(stop - first, dtype=np.float32)
        dones = np.zeros(stop - first, dtype=bool)
        infos: list[dict[str, Any]] = [{} for _ in range(stop - first)]
        try:
            replies: list[Any] = self.ray.get(list(futures))  # one ray.get for all the actors of the step
        except self._actor_errors:  # some actor died: find which
            replies = []
            for future in futures:
                try:
                    replies.append(self.ray.get(future))
                except self._actor_errors as error:
                    replies.append(error)
        for index, reply in zip(actors, replies):
            plan_slots = self._actors[index].plan.slots
            slots = slice(plan_slots.start - first, plan_slots.stop - first)
            if isinstance(reply, BaseException):
                self._replace(index, reply)
                obs[slots] = self._fresh_obs
                dones[slots] = True
                for slot in range(plan_slots.start, plan_slots.stop):
                    infos[slot - first] = {"reward_parts": dict.fromkeys(self.part_names, 0.0), "touched": False,
                                           "goal": 0, "terminal_observation": self._last_obs[slot].copy(),
                                           "TimeLimit.truncated": True, "worker_restarted": True}
                continue
            part_obs, part_rewards, part_dones, part_infos, state = reply
            obs[slots], rewards[slots], dones[slots] = part_obs, part_rewards, part_dones
            infos[slots] = part_infos
            self._take_league_state(index, state)
        self._last_obs[first:stop] = obs
        return obs.copy(), rewards, dones, infos

    def close(self) -> None:
        """Close every actor (each closes its worker processes), then shut Ray down if this env started it."""
        if self.closed:
            return
        self.closed = True
        actors = getattr(self, "_actors", [])
        try:
            if actors:
                pending = [a.handle.close.remote() for a in actors]
                self.ray.wait(pending, num_returns=len(pending), timeout=15.0)
            for actor in actors:
                try:
                    self.ray.kill(actor.handle)
                except Exception:
                    pass
        finally:
            if self._owns_ray and self.ray.is_initialized():
                self.ray.shutdown()
        self.waiting = False

    def actor_info(self) -> list[dict[str, Any]]:
        """Per actor: host, Ray node id, pid and its worker processes' pids."""
        return self.ray.get([a.handle.node.remote() for a in self._actors])

    def process_info(self) -> list[dict[str, Any]]:
        return self.actor_info()

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None,
                   **method_kwargs: Any) -> list[Any]:
        if method_name != "process_info":
            raise AttributeError(f"RayVecEnv slots are cars inside Ray actors; env_method('{method_name}') is not "
                                 "available (only 'process_info').")
        info = self.actor_info()
        return [dict(info[next(i for i, a in enumerate(self._actors) if a.plan.slots.start <= slot < a.plan.slots.stop)],
                     OMP_NUM_THREADS="1", torch_threads=None) for slot in self._get_indices(indices)]

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        if attr_name != "render_mode":
            raise AttributeError(f"RayVecEnv slots have no attribute '{attr_name}' to read.")
        return [None for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        raise AttributeError(f"RayVecEnv slots have no attribute '{attr_name}' to set.")

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]
