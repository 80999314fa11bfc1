"""Self-play matches spread over Ray actors (two per node by default), for training on several machines.

Why: Stable-Baselines3 has no distributed vec env, and the self-play vec env uses the cores of one machine. Ray
(the engine RLlib runs its env runners on) places actors on the machines of a cluster. Each actor runs the
existing shared-memory self-play worker pool (:class:`vecenv.selfplay.SelfPlayVecEnv`) on its node for a
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
from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

from envs.parts import module_roots
from envs.schema import EnvironmentConfig, RayConfig, Rewards
from vecenv.base import MatchesVecEnv, Opponents
from vecenv.worker import TRAINER_DRIVEN, WorkerPlan, plan_workers

if TYPE_CHECKING:
    from rlgym.api import StateMutator

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
                 state_mutator: Optional[StateMutator] = None):
        from vecenv.selfplay import SelfPlayVecEnv

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


def place_actors(ray: Any, n_actors: int, cpus: float) -> Any:
    """A placement group of one bundle of ``cpus`` CPUs per actor, spread over the nodes (soft: several bundles may
    share a node when it has the CPUs), ready when this returns.

    Why a placement group: the actors' CPUs are reserved together before any actor starts, so a run either gets all
    its actors or fails at once with a message, and a replacement actor takes its predecessor's bundle (Ray moves a
    lost node's bundles to nodes that have the CPUs).

    :raises ActorsNotPlaced: the alive nodes have fewer CPUs than the actors reserve, or Ray could not place the
        bundles within :data:`START_TIMEOUT_S`.
    """
    from ray.util.placement_group import placement_group, remove_placement_group

    total = float(ray.cluster_resources().get("CPU", 0.0))
    fix = ("lower ray.actors or ray.cpus_per_actor (0 = half the CPUs of the smallest node), or add machines to the "
           "cluster")
    if n_actors * cpus > total + 1e-9:
        raise ActorsNotPlaced(f"ray.actors {n_actors} x ray.cpus_per_actor {cpus:g} = {n_actors * cpus:g} CPUs, but "
                              f"the Ray cluster has {total:g}; {fix}.")
    group = placement_group([{"CPU": cpus}] * n_actors, strategy="SPREAD")
    if not group.wait(timeout_seconds=START_TIMEOUT_S):
        remove_placement_group(group)
        raise ActorsNotPlaced(f"Ray could not reserve {n_actors} x {cpus:g} CPUs within {START_TIMEOUT_S:g} s "
                              f"(other jobs hold them?); {fix}.")
    return group


@dataclass
class _Actor:
    handle: Any
    plan: WorkerPlan
    generation: int


#: The packages an actor imports (its class lives in ``vecenv``, the matches in ``envs``, the machine's cores are
#: read by ``config.sizing``): Ray uploads them to every
#: node with the job's ``runtime_env``, so a node needs only the same Python packages (the virtual environment), not
#: a copy of this repository.
ACTOR_PACKAGES = tuple(str(Path(__file__).resolve().parent.parent / name) for name in ("envs", "config", "vecenv"))
#: Seconds an actor may take to start (its worker processes, imports, building its matches) or Ray to place them.
START_TIMEOUT_S = 300.0
#: Seconds ``close`` waits for the actors to close their workers.
CLOSE_TIMEOUT_S = 15.0


def runtime_env(py_modules: Sequence[Path] = ()) -> dict[str, Any]:
    """The job's Ray ``runtime_env``: the trainer's packages the actors import (:data:`ACTOR_PACKAGES`) and those of
    the user's own parts (``py_modules``, from ``envs.parts.module_roots``), uploaded by Ray to every node; one
    native thread per process (the workers inside an actor set their own limits too)."""
    return {"py_modules": [*ACTOR_PACKAGES, *(str(path) for path in py_modules)],
            "env_vars": {"OMP_NUM_THREADS": "1"}}


def connect(ray: Any, ray_cfg: RayConfig, py_modules: Sequence[Path] = ()) -> bool:
    """Start or join Ray as ``ray.address`` says; True when this process connected (and must disconnect: a Ray
    started here is stopped with it, a cluster joined stays up). The actors' output (warnings, a worker's
    traceback) is printed on this console, prefixed with the actor (``log_to_driver``)."""
    if ray.is_initialized():
        return False
    env = runtime_env(py_modules)
    address = ray_cfg.address
    if address == "local":
        ray.init(address="local", num_cpus=ray_cfg.num_cpus or None, include_dashboard=False, log_to_driver=True,
                 object_store_memory=ray_cfg.object_store_mb * 2**20 if ray_cfg.object_store_mb else None,
                 runtime_env=env)
    else:
        ray.init(address=address, log_to_driver=True, runtime_env=env)
    return True


class ActorsNotPlaced(RuntimeError):
    """The cluster has not the CPUs the configured actors reserve; the message says what to change."""


class RayVecEnv(MatchesVecEnv):
    """The self-play matches (and league matches) on Ray actors; SB3 sees the same VecEnv as ``SelfPlayVecEnv``.

    :param ray_cfg: the config's ``ray`` section: ``address`` (``local``, ``auto`` or ``host:port``), ``actors``
        (0: two per alive node), ``cpus_per_actor`` (Ray CPUs each actor reserves; 0: half the smallest node),
        ``workers_per_actor`` (worker processes inside an actor; 0: one per reserved CPU), ``num_cpus`` and
        ``object_store_mb`` (``local`` only; 0: Ray's defaults).
    Other parameters as :class:`vecenv.selfplay.SelfPlayVecEnv`.
    """

    unit_name = "Ray actor"

    def __init__(self, env_cfg: EnvironmentConfig, reward_weights: Rewards, seed: int, ray_cfg: RayConfig,
                 max_restarts: int = 10, league_sizes: Sequence[int] = (), opponents: Optional[Opponents] = None,
                 state_mutator: Optional[StateMutator] = None):
        self.ray = import_ray()
        super().__init__(env_cfg, reward_weights, seed, league_sizes, opponents)
        self.ray_cfg, self.state_mutator = ray_cfg, state_mutator
        self.max_restarts, self.restarts = max_restarts, 0
        self._placement: Any = None
        self._owns_ray = connect(self.ray, ray_cfg, module_roots(env_cfg, reward_weights))
        try:
            nodes = [n for n in self.ray.nodes() if n.get("Alive")]
            n_actors = ray_cfg.actors or ACTORS_PER_NODE * len(nodes)
            node_cpus = min(float(n.get("Resources", {}).get("CPU", 1.0)) for n in nodes)
            self.cpus_per_actor = ray_cfg.cpus_per_actor or node_cpus / ACTORS_PER_NODE
            self.workers_per_actor = ray_cfg.workers_per_actor or max(1, int(self.cpus_per_actor))
            self._set_plans(plan_workers(self.team_sizes, n_actors, league_sizes))
            self._cls = actor_class(self.ray, self.cpus_per_actor)
            self._placement = place_actors(self.ray, len(self.plans), self.cpus_per_actor)
            #: Per actor (plan): its league matches and opponent rows in the run's numbering.
            self._league_rows = [self._plan_league_rows(plan) for plan in self.plans]
            self.opp_kind = np.zeros(len(league_sizes), dtype=np.int8)
            obs_size = self.observation_space.shape[0]
            self.opp_obs = np.zeros((len(self.opp_match), obs_size), dtype=np.float32)
            self._actors: list[_Actor] = [self._start(plan, 0) for plan in self.plans]
            self._last_obs = np.zeros((self.num_envs, obs_size), dtype=np.float32)
            self._actions = np.zeros(self.num_envs, dtype=np.int64)
            errors = self.ray.exceptions
            #: What a lost actor raises on ray.get: it died, its node left, or it did not answer within timeout_s.
            self._lost_errors = tuple(getattr(errors, name) for name in (
                "RayActorError", "ActorDiedError", "ActorUnavailableError", "GetTimeoutError") if hasattr(errors, name))
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
        indices = plan.league_matches  # league_index of the same matches
        return (slice(indices[0], indices[-1] + 1),
                slice(league[0].first_opp, league[-1].first_opp + league[-1].team_size))

    def _start(self, plan: WorkerPlan, generation: int) -> _Actor:
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        team_sizes = [m.team_size for m in plan.matches if m.league_index is None]
        league_sizes = [m.team_size for m in plan.matches if m.league_index is not None]
        bundle = self.plans.index(plan)
        strategy = PlacementGroupSchedulingStrategy(self._placement, placement_group_bundle_index=bundle)
        handle = self._cls.options(scheduling_strategy=strategy).remote(
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
        obs, state = self._get(self._actors[index].handle.reset.remote(
            self._actor_seed(old.generation + 1), self.opp_kind[league]), START_TIMEOUT_S, f"restarted actor {index}")
        self._take_league_state(index, state)
        self._fresh_obs = obs

    def _take_league_state(self, index: int, state: dict[str, Any]) -> None:
        league, rows = self._league_rows[index]
        self.opp_obs[rows] = state["opp_obs"]
        for match, outcome, touched in state["results"]:
            match = league.start + match
            self.opponents.result(match, outcome, touched)
            self.opp_kind[match] = self.opponents.assign(match)

    # --------------------------------------------------------------------------------------- VecEnv API
    def reset(self) -> np.ndarray:
        if self._seeds[0] is not None:
            self._seed = int(self._seeds[0])
        for match in range(len(self.league_sizes)):
            self.opp_kind[match] = self.opponents.assign(match)
        futures = []
        for index, actor in enumerate(self._actors):
            league, _ = self._league_rows[index]
            futures.append(actor.handle.reset.remote(self._actor_seed(actor.generation), self.opp_kind[league]))
        for index, future in enumerate(futures):
            obs, state = self._get(future, START_TIMEOUT_S, f"actor {index}'s reset")
            self._take_league_state(index, state)
            self._last_obs[self._actors[index].plan.slots] = obs
        self._reset_seeds()
        return self._last_obs.copy()

    def _write_actions(self, slots: slice, actions: np.ndarray) -> None:
        self._actions[slots] = actions

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
        timeout = self.ray_cfg.timeout_s
        try:  # one ray.get for all the actors of the step
            replies: list[Any] = self.ray.get(list(futures), timeout=timeout)
        except self._lost_errors:  # some actor died or did not answer in time: find which
            replies = []
            for future in futures:
                try:
                    replies.append(self.ray.get(future, timeout=timeout))
                except self._lost_errors as error:
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
                self.ray.wait(pending, num_returns=len(pending), timeout=CLOSE_TIMEOUT_S)
            for actor in actors:
                try:
                    self.ray.kill(actor.handle)
                except Exception:
                    pass
            if self._placement is not None:
                from ray.util.placement_group import remove_placement_group

                remove_placement_group(self._placement)
        finally:
            if self._owns_ray and self.ray.is_initialized():
                self.ray.shutdown()
        self.waiting = False

    def actor_info(self) -> list[dict[str, Any]]:
        """Per actor: host, Ray node id, pid and its worker processes' pids."""
        # the first call after the actors were created may wait on their start
        return self._get([a.handle.node.remote() for a in self._actors], START_TIMEOUT_S, "actor_info")

    def _get(self, refs: Any, timeout: float, what: str) -> Any:
        """``ray.get`` with a timeout; a timeout names what was waited on."""
        try:
            return self.ray.get(refs, timeout=timeout)
        except self.ray.exceptions.GetTimeoutError:
            raise TimeoutError(f"Ray: no answer to {what} within {timeout:g} s (ray.timeout_s); is its node "
                               "still in the cluster (ray status)?") from None

    def process_info(self) -> list[dict[str, Any]]:
        """Per actor: :meth:`actor_info` and the thread settings of its workers."""
        return [dict(info, OMP_NUM_THREADS="1", torch_threads=None) for info in self.actor_info()]
