"""The benchmark's stages after the ceiling: each builds what it measures with the trainer's own functions
(``vecenv.subproc.EnvFactory``, ``training.setup.make_training_env`` / ``make_model``), warms up, measures for
a given number of wall seconds, and closes every env (and so every worker process) before returning.

Units: agent-steps are decisions of learning cars, i.e. SB3 timesteps: one vec-env step of ``num_envs``
slots is ``num_envs`` agent-steps. In self-play every car learns and counts; in subproc mode non-learning
opponent cars are simulated but not counted (the ceiling counts every car, so with opponents the ratio also
shows the share of sim spent on them).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

from config.schema import Config, reward_weight

if TYPE_CHECKING:
    import gymnasium as gym
    import torch as th
    from rlgym.api import RLGym
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecEnv, VecNormalize

#: Vec-env steps (or env steps for ``env``) run before the clock starts: first torch calls, worker caches.
WARMUP_STEPS = 20


@dataclass(frozen=True)
class StageResult:
    """One stage's measurement.

    :param steps: agent-steps measured. :param seconds: wall seconds they took.
    :param sps: agent-steps per second (for the ceiling, the sum of per-process rates).
    :param detail: one line saying what ran.
    :param extra: what a probe measured on the stage's env before it closed (see :func:`run_train_stage`).
    """

    steps: int
    seconds: float
    sps: float
    detail: str
    extra: dict[str, Any] = field(default_factory=dict)


def run_for(seconds: float, step: Callable[[], int], warmup: int = WARMUP_STEPS) -> tuple[int, float]:
    """Call ``step`` (which returns agent-steps done) ``warmup`` times, then until ``seconds`` wall seconds pass.

    :return: (agent-steps, wall seconds) of the measured calls only; at least one call is measured.
    """
    for _ in range(warmup):
        step()
    steps = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        steps += step()
        now = time.perf_counter()
        if now >= deadline:
            return steps, now - start


def _result(steps: int, seconds: float, detail: str, extra: Optional[dict[str, Any]] = None) -> StageResult:
    return StageResult(steps, seconds, steps / seconds if seconds > 0 else 0.0, detail, extra or {})


def run_ceiling_stage(cfg: Config, seconds: float, processes: int) -> StageResult:
    """Stage ``ceiling``: raw RocketSim, one process per core (see :mod:`bench.ceiling`)."""
    from bench.ceiling import run_ceiling

    from bench.ceiling import bench_team_sizes

    env = cfg.environment
    steps, rate, wall = run_ceiling(env, seconds, processes, cfg.training.seed)
    cars = sum(bench_team_sizes(env))
    return StageResult(steps, wall, rate, f"raw RocketSim, {processes} procs x 1 arena ({cars} cars), random controls")


def random_stepper(env: gym.Env) -> Callable[[], int]:
    """``() -> 1``: one random-action step of a single gymnasium ``env``, resetting it when an episode ends."""

    def step() -> int:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
        return 1

    return step


@dataclass
class InProcessEnv:
    """What the ``env`` stage (and the profiler) steps in this process.

    :param match: subproc mode: the RLGym match inside (the profiler times its components); self-play: None.
    :param step: one decision of every learning car with random actions, resetting on episode end;
        returns the agent-steps done.
    :param close: frees the matches. :param detail: one line saying what runs.
    :param groups: self-play: the workers' match groups (:class:`vecenv.worker.MatchGroup`), all here.
    """

    match: Optional[RLGym]
    step: Callable[[], int]
    close: Callable[[], None]
    detail: str
    groups: tuple = ()


def in_process_env(cfg: Config) -> InProcessEnv:
    """Self-play: every match of the config, split into the workers' match groups as the vec env splits them
    (:func:`vecenv.worker.plan_workers`), stepped one group after the other in this process with random
    actions (league opponents: random actions from the trainer, or a scripted driver, redrawn every 50 steps):
    the workers' own code path and per-car cost, on one core. Subproc: one ``RocketLeagueEnv`` (the learning car
    acts, the others follow ``opponent_policy``)."""
    import multiprocessing as mp

    import numpy as np
    from envs.components import selfplay_team_sizes, team_sizes
    from envs.scripted import SCRIPTED_NAMES
    from vecenv.worker import MatchGroup, SharedArrays, plan_workers
    from config.sizing import available_cores
    from vecenv.subproc import EnvFactory
    from config import league_match_counts
    from envs.rocket_league_env import RocketLeagueEnv

    env_cfg, seed = cfg.environment, cfg.training.seed
    if env_cfg.vec_env != "selfplay":
        env = EnvFactory(env_cfg, cfg.rewards, seed, in_worker=False)()
        assert isinstance(env, RocketLeagueEnv)  # record_state is off: no wrapper
        return InProcessEnv(env.match, random_stepper(env), env.close, "1 RocketLeagueEnv in-process, random actions")
    league_sizes = team_sizes(league_match_counts(cfg))
    sizes = selfplay_team_sizes(env_cfg)
    plans = plan_workers(sizes, env_cfg.selfplay.num_workers or available_cores(), league_sizes)
    n_slots, n_opp = plans[-1].slots.stop, sum(league_sizes)
    n_parts = sum(1 for part in cfg.rewards.values() if reward_weight(part) != 0)
    groups = [MatchGroup(plan, None, env_cfg, cfg.rewards) for plan in plans]
    obs_size = groups[0].matches[0].env.obs_builder.get_obs_space(None)[1]
    arrays = SharedArrays(mp.get_context("spawn"), n_slots, obs_size, n_parts, n_opp, len(league_sizes))
    for group in groups:
        group.arrays = arrays
        group.reset(seed, 0)
    n_actions = len(groups[0].matches[0].env.action_parser.parser._lookup_table)
    rng = np.random.default_rng(seed)
    calls = [0]

    def step() -> int:
        if calls[0] % 50 == 0 and len(league_sizes):
            arrays.opp_kind[:] = rng.integers(0, 1 + len(SCRIPTED_NAMES), len(league_sizes))
        calls[0] += 1
        arrays.actions[:] = rng.integers(n_actions, size=n_slots)
        arrays.opp_actions[:] = rng.integers(n_actions, size=n_opp)
        for group in groups:
            group.step()
        return n_slots

    def close() -> None:
        for group in groups:
            group.close()

    path = "batched obs/reward/done" if groups[0].batched is not None else "rlgym per-match step"
    cars = 2 * (sum(sizes) + sum(league_sizes))
    return InProcessEnv(None, step, close,
                        f"{len(sizes) + len(league_sizes)} matches ({cars} cars, {n_slots} learning) in-process as "
                        f"{len(plans)} worker match groups ({path}), random actions", tuple(groups))


def run_env_stage(cfg: Config, seconds: float) -> StageResult:
    """Stage ``env``: :func:`in_process_env`, random actions, reset on episode end."""
    env = in_process_env(cfg)
    try:
        steps, wall = run_for(seconds, env.step)
    finally:
        env.close()
    return _result(steps, wall, env.detail)


def run_collect_random_stage(cfg: Config, seconds: float, num_envs: int) -> StageResult:
    """Stage ``collect_random``: ``make_training_env`` (workers + VecMonitor + VecNormalize), random actions."""
    import numpy as np
    from training.setup import make_training_env

    env = make_training_env(cfg, num_envs, cfg.training.seed)
    try:
        env.reset()

        def step() -> int:
            env.step(np.array([env.action_space.sample() for _ in range(num_envs)]))
            return num_envs

        steps, wall = run_for(seconds, step)
    finally:
        env.close()
    return _result(steps, wall, f"training vec env, {vec_env_detail(env)}, random actions")


def run_collect_policy_stage(cfg: Config, seconds: float, num_envs: int, device: th.device) -> StageResult:
    """Stage ``collect_policy``: the training vec env stepped as SB3's ``collect_rollouts`` does
    (obs -> tensor -> ``policy(obs)`` under ``no_grad`` -> actions -> ``env.step``), without buffer or update."""
    import numpy as np
    import torch as th
    from stable_baselines3.common.utils import obs_as_tensor
    from training.setup import make_model, make_training_env

    seed = cfg.training.seed
    env = make_training_env(cfg, num_envs, seed)
    try:
        model = make_model(cfg, env, device, seed)
        model.policy.set_training_mode(False)
        obs = env.reset()
        assert isinstance(obs, np.ndarray)  # flat observations (SB3 also types dict ones)

        def step() -> int:
            nonlocal obs
            with th.no_grad():
                actions, _, _ = model.policy(obs_as_tensor(obs, model.device))
            new_obs, _, _, _ = env.step(actions.cpu().numpy())
            assert isinstance(new_obs, np.ndarray)
            obs = new_obs
            return num_envs

        steps, wall = run_for(seconds, step)
    finally:
        env.close()
    return _result(steps, wall, f"training vec env, {vec_env_detail(env)}, policy inference on {device}")


def vec_env_detail(venv: VecEnv) -> str:
    """``"32 slots in 2 self-play workers"`` or ``"8 SubprocVecEnv workers"``."""
    plans = getattr(venv.unwrapped, "plans", None)
    if plans is not None:
        return f"{venv.num_envs} slots in {len(plans)} self-play workers"
    return f"{venv.num_envs} SubprocVecEnv workers"


def make_iteration_clock(seconds: float, on_mark: Optional[Callable[[int, bool], None]] = None) -> Any:
    """An SB3 callback that timestamps every rollout start and stops ``learn`` once enough is measured.

    ``marks[i]`` is (``perf_counter`` seconds, ``num_timesteps``) when rollout ``i`` starts, i.e. after the
    previous iteration's ``train()``. Mark 0 starts the warm-up iteration and mark 1 the measured window; at
    the first mark at least ``seconds`` after mark 1 (and after at least one measured iteration) ``stop`` is
    set and the next env step's ``on_step`` ends ``learn``. So ``marks[1]`` .. ``marks[-1]`` span
    ``len(marks) - 2`` whole iterations (collection + ``dump_logs`` + ``train()``).

    :param on_mark: called with (mark index, stopping) right after each mark is taken.
    """
    from stable_baselines3.common.callbacks import BaseCallback

    class IterationClock(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.marks: list[tuple[float, int]] = []
            self.stop = False

        def _on_rollout_start(self) -> None:
            self.marks.append((time.perf_counter(), self.model.num_timesteps))
            index = len(self.marks) - 1
            self.stop = index >= 2 and self.marks[-1][0] - self.marks[1][0] >= seconds
            if on_mark is not None:
                on_mark(index, self.stop)

        def _on_step(self) -> bool:
            return not self.stop

    return IterationClock()


def run_train_stage(cfg: Config, seconds: float, num_envs: int, device: th.device,
                    probe: Optional[Callable[[VecEnv], dict[str, Any]]] = None) -> StageResult:
    """Stage ``train``: ``PPO.learn`` end to end after one warm-up iteration; then ``probe(env)``, if given,
    measures more on the same env (the Ray link: one Ray start instead of two) into ``extra``.

    The rate is the ``num_timesteps`` gained over whole iterations (collection + ``dump_logs`` + ``train()``,
    the PPO update) divided by their wall time, measured by :func:`make_iteration_clock` for at least
    ``seconds`` and at least one iteration. Of the trainer's callbacks only the torch-threads one is attached
    (it sets the update's speed); progress bar, reward logging, checkpoints and evaluation are not.
    """
    from stable_baselines3.common.callbacks import CallbackList
    from callbacks.torch_threads import make_threads_callback
    from training.setup import make_model, make_training_env

    seed = cfg.training.seed
    train = cfg.training
    env = make_training_env(cfg, num_envs, seed)
    league_dir = tempfile.TemporaryDirectory(prefix="bench-league-")
    try:
        model = make_model(cfg, env, device, seed)
        pool = attach_full_league(cfg, model, env, Path(league_dir.name))
        clock = make_iteration_clock(seconds)
        model.learn(total_timesteps=2**62, callback=CallbackList([make_threads_callback(train), clock]),
                    log_interval=cfg.logging.log_interval)
        extra = probe(env.unwrapped) if probe else {}
    finally:
        env.close()
        league_dir.cleanup()
    (t0, n0), (t1, n1) = clock.marks[1], clock.marks[-1]
    iterations = len(clock.marks) - 2
    league = f", league with {pool} past versions" if pool else ", no league"
    return _result(n1 - n0, t1 - t0, f"PPO.learn, {iterations} iterations of {num_envs} x {train.n_steps} steps, "
                                     f"{train.n_epochs} epochs of minibatch {model.batch_size}{league}", extra)


def attach_full_league(cfg: Config, model: PPO, env: VecNormalize, folder: Path) -> int:
    """Give the vec env's league matches their trainer-side league, its pool already full (``pool_size``
    snapshots: the most opponent versions, so the most inference batches per step, a long run ever has).
    Returns the pool size (0: the config has no league matches)."""
    from envs.components import team_sizes
    from league.league import League
    from config import league_match_counts
    from vecenv.base import MatchesVecEnv

    sizes = team_sizes(league_match_counts(cfg))
    if not sizes:
        return 0
    league = League(cfg.league, folder, len(sizes), cfg.training.seed)
    league.bind(model, env)
    for steps in range(cfg.league.pool_size):
        model.num_timesteps = steps  # distinct names; every version is a separate network copy
        league.snapshot()
    model.num_timesteps = 0
    base = env.unwrapped
    assert isinstance(base, MatchesVecEnv)  # league matches run in the self-play vec env
    base.set_opponents(league)
    return len(league.pool)


def without_league(cfg: Config) -> Config:
    """The same config in pure self-play with the same number of learning cars: every two league matches of a
    size become one self-play match of that size (an odd league count rounds up: one more slot)."""
    out = cfg.model_copy(deep=True)
    out.environment.selfplay.matches = {name: count + (cfg.league.matches[name] + 1) // 2
                                        for name, count in cfg.environment.selfplay.matches.items()}
    out.league.matches = {name: 0 for name in cfg.league.matches}
    return out


def on_ray(cfg: Config, cores: int) -> Config:
    """The same config on the Ray backend, on this machine: a local Ray over every core, with the config's actor
    layout (default: two actors, each with half the cores)."""
    out = cfg.model_copy(deep=True)
    out.environment.selfplay.backend = "ray"
    out.ray.address, out.ray.num_cpus = "local", cores
    return out


def measure_ray_link(env: VecEnv, calls: int = 50) -> dict[str, float]:
    """What one trainer <-> actor step costs on the wire, on a :class:`vecenv.ray_backend.RayVecEnv` (the
    ``train_ray`` stage's, see :func:`on_ray`): the median round trip of an empty actor call (ms) and the
    pickled bytes of one step's request and reply."""
    import pickle
    import time

    import numpy as np

    from vecenv.ray_backend import RayVecEnv

    assert isinstance(env, RayVecEnv)
    env.reset()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        env.ray.get(env._actors[0].handle.node.remote())
        times.append(time.perf_counter() - start)
    request_bytes = reply_bytes = 0
    for index, actor in enumerate(env._actors):  # one step of every actor, as the env sends it
        league, opp = env._league_rows[index]
        request = (np.zeros(actor.plan.slots.stop - actor.plan.slots.start, dtype=np.int64),
                   np.zeros(opp.stop - opp.start, dtype=np.int64), env.opp_kind[league].copy())
        reply = env.ray.get(actor.handle.step.remote(*request))
        request_bytes += len(pickle.dumps(request))
        reply_bytes += len(pickle.dumps(reply))
    return {"round_trip_ms": float(np.median(times)) * 1000, "request_bytes": request_bytes,
            "reply_bytes": reply_bytes, "slots": env.num_envs, "actors": len(env._actors)}

