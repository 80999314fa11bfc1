"""Parallel training envs: SB3's ``SubprocVecEnv`` (one process per env, one thread each), the sizing of
both vec envs, and the thread limits every worker process gets. The self-play vec env is in
:mod:`vecenv.selfplay`."""

from __future__ import annotations

import os
import signal
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Optional, Sequence

import gymnasium as gym
from rlgym.api import StateMutator
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv

from config.sizing import available_cores
from envs.components import selfplay_team_sizes, smallest_team_size
from envs.rocket_league_env import RocketLeagueEnv, StateInInfo
from envs.schema import EnvironmentConfig, Rewards

#: Environment variables that cap the native thread pools (OpenMP, MKL, OpenBLAS) of a worker.
THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def resolve_num_envs(env_cfg: EnvironmentConfig, cli_num_envs: Optional[int], league_sizes: Sequence[int] = ()) -> int:
    """SB3's ``num_envs``. Self-play: the number of learning cars: every car of the self-play matches and the
    learning team of each league match (team sizes ``league_sizes``); ``--num-envs`` is refused.
    Subproc: ``--num-envs`` wins; otherwise ``num_envs``, capped at ``max_envs_per_core`` x cores when
    ``auto_adjust_envs``.

    :raises ValueError: ``--num-envs`` given in self-play mode.
    """
    if env_cfg.vec_env == "selfplay":
        if cli_num_envs is not None:
            raise ValueError(
                "--num-envs sets SubprocVecEnv processes, but environment.vec_env is 'selfplay', where the env "
                "slots are the cars of environment.selfplay.matches. Change the matches (e.g. --set "
                "environment.selfplay.matches.1v1=8), the worker processes (--set environment.selfplay.num_workers=2), "
                "or train with --set environment.vec_env=subproc."
            )
        return 2 * sum(selfplay_team_sizes(env_cfg)) + sum(league_sizes)
    if cli_num_envs is not None:
        return cli_num_envs
    if env_cfg.auto_adjust_envs:
        return max(1, min(env_cfg.num_envs, env_cfg.max_envs_per_core * available_cores()))
    return env_cfg.num_envs


#: Signals a worker ignores: stopping and snapshots are the trainer's business (see training/signals.py).
WORKER_IGNORED_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGUSR1")
                               if hasattr(signal, name))


def ignore_stop_signals() -> None:
    """In a worker process: a terminal's Ctrl-C or hang-up, or a SIGTERM sent to the whole process group
    (systemd does that), must not kill a worker mid-step. The trainer saves first and then closes its
    workers; a worker whose trainer died exits on its own when the pipe closes."""
    for signum in WORKER_IGNORED_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


def limit_threads_in_this_process() -> None:
    """One native thread per worker: N workers on N cores must not each start N OpenMP threads."""
    for var in THREAD_ENV_VARS:
        os.environ[var] = "1"
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)


@contextmanager
def single_threaded_children() -> Iterator[None]:
    """Set the thread caps in the environment while worker processes are started, then restore it."""
    saved = {var: os.environ.get(var) for var in THREAD_ENV_VARS}
    os.environ.update({var: "1" for var in THREAD_ENV_VARS})
    try:
        yield
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


@dataclass
class EnvFactory:
    """Picklable ``() -> gym.Env`` for ``SubprocVecEnv``: builds and seeds one env inside its worker.

    In a worker it also caps threads and ignores stop signals (:func:`ignore_stop_signals`), so that they
    reach only the trainer, which then saves and shuts the workers down in order.
    """

    env_cfg: EnvironmentConfig
    reward_weights: Rewards
    seed: int
    in_worker: bool = True
    state_mutator: Optional[StateMutator] = None
    record_state: bool = False

    def __call__(self) -> gym.Env:
        if self.in_worker:
            ignore_stop_signals()
            limit_threads_in_this_process()
        env = RocketLeagueEnv(self.env_cfg, self.reward_weights, self.state_mutator)
        env.reset(seed=self.seed)
        env.action_space.seed(self.seed)
        return StateInInfo(env) if self.record_state else env


def make_subproc_vec_env(env_cfg: EnvironmentConfig, reward_weights: Rewards, num_envs: int, seed: int,
                         state_mutator: Optional[StateMutator] = None) -> VecEnv:
    """``num_envs`` worker processes; worker ``i`` is seeded ``seed + i``."""
    factories: list[Callable[[], gym.Env]] = [
        EnvFactory(env_cfg, reward_weights, seed + i, state_mutator=state_mutator) for i in range(num_envs)]
    with single_threaded_children():
        return SubprocVecEnv(factories)


def close_vec_env(venv: VecEnv, timeout: float = 10.0) -> None:
    """Close ``venv`` and end its worker processes, also after a ``step`` cut short by Ctrl-C.

    SB3's ``SubprocVecEnv.close`` first reads one pending result from every worker when a step is in flight.
    If Ctrl-C arrived while ``step_wait`` had read only some of them, that read blocks forever. The workers
    have already sent (or will send) their results into the pipes, so here they are dropped unread; a worker
    that has crashed or does not exit within ``timeout`` seconds is terminated.
    """
    base = venv.unwrapped
    if isinstance(base, SubprocVecEnv) and not base.closed:
        for remote in base.remotes:
            try:
                remote.send(("close", None))
            except OSError:  # BrokenPipeError: that worker is already gone
                pass
        for process in base.processes:
            process.join(timeout)
            if process.is_alive():
                process.kill()  # workers ignore SIGTERM (ignore_stop_signals)
                process.join()
        for remote in base.remotes:
            remote.close()
        base.waiting = False
        base.closed = True
    venv.close()


def eval_env_config(env_cfg: EnvironmentConfig, league_matches: Optional[dict[str, int]] = None) -> EnvironmentConfig:
    """The ``environment`` section for single-car evaluation envs (``EvalCallback``, ``evaluate.py``).

    Subproc mode: unchanged. Self-play mode: the smallest configured team size (self-play or league matches,
    ``league_matches`` as in ``league.matches``) on both sides, the learning car ``blue-0`` against do-nothing
    cars (teammates idle too): the score says how well the policy plays without help from a copy of itself.
    """
    if env_cfg.vec_env != "selfplay":
        return env_cfg
    size = smallest_team_size(env_cfg, league_matches)
    return env_cfg.model_copy(update={"blue_size": size, "orange_size": size, "opponent_policy": "idle"})


def make_local_vec_env(env_cfg: EnvironmentConfig, reward_weights: Rewards, seed: int, n_envs: int = 1,
                       state_mutator: Optional[StateMutator] = None, record_state: bool = False) -> DummyVecEnv:
    """In-process ``DummyVecEnv`` (evaluation: no worker processes).

    :param record_state: put each step's ``GameState`` in ``info["state"]`` (see ``StateInInfo``).
    """
    return DummyVecEnv([
        EnvFactory(env_cfg, reward_weights, seed + i, in_worker=False, state_mutator=state_mutator,
                   record_state=record_state)
        for i in range(n_envs)
    ])
