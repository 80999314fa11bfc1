"""Self-play vec env: every car of every match is one SB3 env slot, matches run in a few worker processes.

SB3 has no RLGym v2 adapter for self-play (rlgym-tools v2 dropped ``SB3MultipleInstanceEnv``), and its
``SubprocVecEnv`` moves one car per process per pipe round trip. :class:`SelfPlayVecEnv` is an SB3 ``VecEnv``:

* ``num_envs`` = the number of cars in all configured matches (``environment.selfplay.matches``); both teams
  act with the learning policy and every car's experience is a sample;
* the matches are spread over ``num_workers`` processes (:func:`vecenv.worker.plan_workers`), each
  stepping its matches in turn; observations, actions, rewards and flags go through shared memory
  (:class:`vecenv.worker.SharedArrays`), the pipes carry one tiny command and answer per worker;
* per-slot semantics are SB3's: a goal ends the match for all its cars (``done``, no bootstrap), so does the
  no-touch timeout when ``no_touch_timeout_terminal`` (else it truncates); the time limit truncates it (``done``
  with ``info["TimeLimit.truncated"]``), every ended slot carries
  ``info["terminal_observation"]``, and the match is reset in the same step;
* ``info["reward_parts"]`` / ``"touched"`` / ``"goal"`` per slot, as :class:`envs.rocket_league_env.RocketLeagueEnv`
  gives them, so ``VecMonitor``, ``VecNormalize`` and the callbacks work unchanged;
* a worker that dies (crash, kill -9) is restarted with fresh matches and a warning: its slots end their
  episode in that step as truncated (terminal observation = the last one the policy saw, reward 0,
  ``info["worker_restarted"]``). Training goes on;
* league matches (``league_sizes``): the learning policy drives one team (side drawn per episode), an
  :class:`Opponents` object drives the other: only learning cars are slots. At every league episode's end the
  opponents get the result and choose who plays the next episode; trainer-driven opponents' actions are asked
  from it in one call per step (``act``), scripted ones run in the workers.
"""

from __future__ import annotations

import multiprocessing as mp
import time
import warnings
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, Optional, Sequence

import numpy as np
from rlgym.api import StateMutator
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

from envs.schema import EnvironmentConfig, Rewards
from vecenv.base import MatchesVecEnv, Opponents
from config.sizing import available_cores
from vecenv.subproc import single_threaded_children
from vecenv.worker import TRAINER_DRIVEN, SharedArrays, league_match_plans, plan_workers, worker_main

#: Seconds a worker may take to start (spawn, imports, building its matches) before the run stops.
START_TIMEOUT_S = 300.0
#: Seconds ``close`` waits for a worker to exit before terminating it.
CLOSE_TIMEOUT_S = 10.0


class WorkerError(RuntimeError):
    """A worker raised an exception (its traceback is in the message) or could not start."""


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection
    generation: int


class SelfPlayVecEnv(MatchesVecEnv):
    """All cars of ``environment.selfplay.matches`` as SB3 env slots (module docstring).

    :param env_cfg: the config's ``environment`` section (``selfplay.matches`` sets the matches).
    :param reward_weights: the config's ``rewards`` section.
    :param seed: base seed; match ``i`` is seeded from (seed, i), independent of how matches are spread.
    :param num_workers: worker processes; 0 = one per CPU core (never more than matches).
    :param max_restarts: dead workers restarted in this env's life; the next death raises ``WorkerError``.
    :param state_mutator: a picklable mutator replacing the configured ones after the team-size one (tests use
        it to force goals).
    :param league_sizes: cars per team of each league match (after the self-play matches' slots).
    :param opponents: who drives the league opponents (default: :class:`vecenv.base.ScriptedOpponents`); see
        :meth:`set_opponents`.
    :param first_match: run-wide index of this env's first match (a share of a run on a Ray actor).
    """

    unit_name = "self-play worker"

    def __init__(self, env_cfg: EnvironmentConfig, reward_weights: Rewards, seed: int,
                 num_workers: int = 0, max_restarts: int = 10, state_mutator: Optional[StateMutator] = None,
                 league_sizes: Sequence[int] = (), opponents: Optional[Opponents] = None, first_match: int = 0):
        super().__init__(env_cfg, reward_weights, seed, league_sizes, opponents)
        self.state_mutator = state_mutator
        self._set_plans(plan_workers(self.team_sizes, num_workers or available_cores(), league_sizes, first_match))
        league_plans = league_match_plans(self.plans)
        #: Every league slot (learning cars of league matches) and its league match; per league match, whether its
        #: learning team touched the ball in the episode so far.
        self._league_slots = np.array([m.first_slot + i for m in league_plans for i in range(m.team_size)],
                                      dtype=np.int64)
        self._league_slot_match = np.repeat(np.arange(len(league_plans)), [m.team_size for m in league_plans])
        self._league_touched = np.zeros(len(league_plans), dtype=bool)
        #: Per worker: the opponent rows of its league matches.
        self._opp_rows = [np.array([m.first_opp + i for m in plan.matches if m.league_index is not None
                                    for i in range(m.team_size)], dtype=np.int64) for plan in self.plans]
        self.max_restarts = max_restarts
        self.restarts = 0
        self._ctx = mp.get_context("spawn")
        obs_size = self.observation_space.shape[0]
        self._arrays = SharedArrays(self._ctx, self.num_envs, obs_size, len(self.part_names),
                                    n_opp=sum(league_sizes), n_league=len(league_sizes))
        self._last_obs = np.zeros((self.num_envs, obs_size), dtype=np.float32)
        self._workers: list[Optional[_Worker]] = [None] * len(self.plans)
        self._restarted: list[int] = []  # workers restarted during the current step
        try:
            for index in range(len(self.plans)):
                self._start(index, generation=0)
            for index in range(len(self.plans)):
                self._wait_ready(index)
        except BaseException:
            self.close()
            raise
        self._last_obs[:] = self._arrays.obs

    # ----------------------------------------------------------------------------------------- workers
    def _start(self, index: int, generation: int) -> None:
        parent_conn, child_conn = self._ctx.Pipe()
        args = (child_conn, self._arrays, self.plans[index], self.env_cfg, self.reward_weights, self._seed, generation,
                self.state_mutator)
        with single_threaded_children():
            process = self._ctx.Process(target=worker_main, args=args, daemon=True,
                                        name=f"selfplay-worker-{index}")
            process.start()
        child_conn.close()  # so that the worker's death shows up as EOF on parent_conn
        self._workers[index] = _Worker(process, parent_conn, generation)

    def _worker(self, index: int) -> _Worker:
        worker = self._workers[index]
        assert worker is not None, f"self-play worker {index} was never started"
        return worker

    def _wait_ready(self, index: int) -> dict[str, Any]:
        worker = self._worker(index)
        if not worker.conn.poll(START_TIMEOUT_S):
            raise WorkerError(f"self-play worker {index} did not start within {START_TIMEOUT_S:g} s.")
        try:
            status, payload = worker.conn.recv()
        except EOFError:
            raise WorkerError(f"self-play worker {index} died while starting (exit code "
                              f"{worker.process.exitcode}).") from None
        if status != "ready":
            raise WorkerError(f"self-play worker {index} failed while starting:\n{payload}")
        return payload

    def _send(self, index: int, command: str, arg: Any = None) -> bool:
        """Send a command; False when the worker is dead."""
        try:
            self._worker(index).conn.send((command, arg))
            return True
        except OSError:  # BrokenPipeError / ConnectionResetError: the worker is gone
            return False

    def _receive(self, index: int) -> Optional[tuple[str, Any]]:
        """The worker's answer; None when it died. :raises WorkerError: the worker raised an exception."""
        try:
            status, payload = self._worker(index).conn.recv()
        except (EOFError, OSError):
            return None
        if status == "error":
            raise WorkerError(f"self-play worker {index} raised an exception:\n{payload}")
        return status, payload

    def _restart(self, index: int) -> None:
        """Replace a dead worker by a new one with fresh matches (next seed generation)."""
        old = self._worker(index)
        old.process.join(timeout=CLOSE_TIMEOUT_S)
        old.conn.close()
        self.restarts += 1
        if self.restarts > self.max_restarts:
            raise WorkerError(
                f"self-play worker {index} died (exit code {old.process.exitcode}) after {self.max_restarts} "
                "restarts in this run; stopping. Raise environment.selfplay.max_worker_restarts to go on anyway."
            )
        plan = self.plans[index]
        warnings.warn(
            f"self-play worker {index} (pid {old.process.pid}) died with exit code {old.process.exitcode}; "
            f"restarting it with fresh matches ({len(plan.matches)} match(es), slots {plan.slots.start}-"
            f"{plan.slots.stop - 1} end their episode as truncated). Restart {self.restarts} of at most "
            f"{self.max_restarts}.", RuntimeWarning, stacklevel=3)
        self._start(index, old.generation + 1)
        self._wait_ready(index)
        self._restarted.append(index)

    def _broadcast(self, command: str, arg: Any = None) -> list[bool]:
        """Send ``command`` to every worker; per worker, whether it could be sent."""
        return [self._send(index, command, arg) for index in range(len(self._workers))]

    def _await_all(self, sent: list[bool]) -> None:
        """Wait for every worker's answer; restart the ones that died (or could not be sent to)."""
        for index, ok in enumerate(sent):
            if not ok or self._receive(index) is None:
                self._restart(index)

    # ------------------------------------------------------------------------------------ league
    def _opponent_actions(self, workers: Sequence[int]) -> None:
        """Ask the trainer-side opponents for the actions of the cars they drive in these workers' league matches
        (one call)."""
        a = self._arrays
        rows = np.concatenate([self._opp_rows[w] for w in workers])
        rows = rows[a.opp_kind[self.opp_match[rows]] == TRAINER_DRIVEN]
        if len(rows):
            a.opp_actions[rows] = np.asarray(self.opponents.act(a.opp_obs[rows], self.opp_match[rows])).reshape(-1)

    def _league_episodes_ended(self, workers: Sequence[int], dones: np.ndarray, first_slot: int,
                               stop_slot: int) -> None:
        a = self._arrays
        inside = (self._league_slots >= first_slot) & (self._league_slots < stop_slot)
        np.logical_or.at(self._league_touched, self._league_slot_match[inside], a.touched[self._league_slots[inside]])
        restarted = {m.league_index for index in self._restarted for m in self.plans[index].matches}
        for w in workers:
            for match in (m.league_index for m in self.plans[w].matches if m.league_index is not None):
                if dones[self.league_first_slot[match] - first_slot]:
                    touched = bool(self._league_touched[match])
                    self._league_touched[match] = False
                    self.opponents.result(int(match), None if match in restarted else int(a.outcome[match]), touched)
                    a.opp_kind[match] = self.opponents.assign(int(match))

    # ------------------------------------------------------------------------------------ VecEnv API
    def reset(self) -> np.ndarray:
        """Reset every match. Seeds given by ``seed()`` (SB3 calls it with the model's seed) apply here."""
        if self._seeds[0] is not None:
            self._seed = int(self._seeds[0])
        for match in range(len(self.league_sizes)):
            self._arrays.opp_kind[match] = self.opponents.assign(match)
        self._league_touched[:] = False
        self._await_all(self._broadcast("reset", self._seed))
        self._restarted.clear()
        self._reset_seeds()
        self._last_obs = self._arrays.obs.copy()
        return self._last_obs.copy()

    def _write_actions(self, slots: slice, actions: np.ndarray) -> None:
        self._arrays.actions[slots] = actions

    def _send_step(self, workers: Sequence[int]) -> list[bool]:
        if len(self.league_sizes):
            self._opponent_actions(workers)
        return [self._send(index, "step") for index in workers]

    def _finish_step(self, workers: Sequence[int], sent: list[bool]) -> VecEnvStepReturn:
        """Wait for these workers (restarting dead ones) and build SB3's step return for their slots."""
        workers = list(workers)
        self._restarted.clear()
        for index, ok in zip(workers, sent):
            if not ok or self._receive(index) is None:
                self._restart(index)
        first, stop = self.plans[workers[0]].slots.start, self.plans[workers[-1]].slots.stop
        a = self._arrays
        for index in self._restarted:  # the lost step ends those slots' episodes as truncated
            slots = self.plans[index].slots
            a.terminal_obs[slots] = self._last_obs[slots]
            a.rewards[slots] = 0.0
            a.parts[slots] = 0.0
            a.terminated[slots] = False
            a.truncated[slots] = True
            a.touched[slots] = False
            a.goal[slots] = 0
        span = slice(first, stop)
        obs = a.obs[span].copy()
        rewards = a.rewards[span].copy()
        terminated, truncated = a.terminated[span].copy(), a.truncated[span].copy()
        dones = terminated | truncated
        names = self.part_names
        infos: list[dict[str, Any]] = [
            {"reward_parts": dict(zip(names, parts)), "touched": touched, "goal": goal}
            for parts, touched, goal in zip(a.parts[span].tolist(), a.touched[span].tolist(), a.goal[span].tolist())
        ]
        for i in np.flatnonzero(dones):
            infos[i]["terminal_observation"] = a.terminal_obs[first + i].copy()
            infos[i]["TimeLimit.truncated"] = bool(truncated[i])
        for index in self._restarted:
            for slot in range(self.plans[index].slots.start, self.plans[index].slots.stop):
                infos[slot - first]["worker_restarted"] = True
        if len(self.league_sizes):
            league_start = int(self.league_first_slot[0])
            for slot in range(max(first, league_start), stop):
                infos[slot - first]["league"] = True
            self._league_episodes_ended(workers, dones, first, stop)
        self._last_obs[span] = obs
        return obs.copy(), rewards, dones, infos

    def close(self) -> None:
        """End every worker: ask politely, wait ``CLOSE_TIMEOUT_S``, then kill (workers ignore SIGTERM). Safe to call twice,
        and after a step cut short by Ctrl-C (unread answers are dropped with the pipes)."""
        if self.closed:
            return
        self.closed = True
        workers = [w for w in self._workers if w is not None]
        for worker in workers:
            try:
                worker.conn.send(("close", None))
            except OSError:
                pass
        deadline = time.monotonic() + CLOSE_TIMEOUT_S
        for worker in workers:
            worker.process.join(timeout=max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.conn.close()
        self.waiting = False

    def worker_pids(self) -> list[int]:
        """Pids of the current worker processes (tests, debugging)."""
        pids = []
        for worker in self._workers:
            if worker is not None:
                assert worker.process.pid is not None  # started in _start
                pids.append(worker.process.pid)
        return pids

    def process_info(self) -> list[dict[str, Any]]:
        """Per worker: pid, ``OMP_NUM_THREADS`` and torch threads inside it."""
        infos = []
        for index in range(len(self._workers)):
            if not self._send(index, "info"):
                raise WorkerError(f"self-play worker {index} is not running.")
            answer = self._receive(index)
            if answer is None:
                raise WorkerError(f"self-play worker {index} died.")
            infos.append(answer[1])
        return infos


def make_selfplay_vec_env(env_cfg: EnvironmentConfig, reward_weights: Rewards, seed: int,
                          league_sizes: Sequence[int] = ()) -> SelfPlayVecEnv:
    """The self-play vec env sized by the config's ``environment.selfplay`` section, plus league matches of
    ``league_sizes`` cars per team (scripted opponents until :meth:`SelfPlayVecEnv.set_opponents`)."""
    selfplay = env_cfg.selfplay
    return SelfPlayVecEnv(env_cfg, reward_weights, seed, selfplay.num_workers, selfplay.max_worker_restarts,
                          league_sizes=league_sizes)


__all__ = ["SelfPlayVecEnv", "WorkerError", "make_selfplay_vec_env"]
