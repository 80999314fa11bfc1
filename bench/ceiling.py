"""Stage ``ceiling``: what raw RocketSim can simulate on this machine, with no Python RL machinery.

One process per core (``spawn`` start, ``OMP_NUM_THREADS=1`` and friends set while they start), each
owning one soccar arena with the benchmarked match's cars (:func:`bench_team_sizes`). Every decision each
car gets fresh random ``CarControls`` (analog inputs uniform in [-1, 1], buttons 50/50) and the arena is
stepped ``tick_skip`` ticks. The arena is reset to a random kickoff after a goal and every
``min(episode_seconds, no_touch_timeout_seconds)`` game seconds, like the env's episodes, so the cars and
ball never settle into an unusual state.

Units: one car's decision is one agent-step, so an arena decision counts ``max(1, cars)`` agent-steps.
The stage's rate is the sum over processes of (agent-steps / wall seconds), all processes released
together by a barrier.

Only the standard library is imported at top level: the workers import ``RocketSim`` and ``numpy`` and
nothing else (no torch, no SB3).
"""

from __future__ import annotations

import importlib.util
import multiprocessing as mp
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from config.schema import EnvironmentConfig

if TYPE_CHECKING:
    from multiprocessing.queues import Queue
    from multiprocessing.synchronize import Barrier

TICKS_PER_SECOND = 120
#: Random controls drawn per numpy call (drawing one decision at a time would cost more than the sim).
RANDOM_BATCH = 1024
#: Seconds a worker may take to start (import RocketSim, load meshes) before the stage is abandoned.
START_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class CeilingSpec:
    """What each ceiling worker simulates.

    :param meshes: folder holding ``soccar/mesh_*.cmf``.
    :param blue: blue cars. :param orange: orange cars.
    :param tick_skip: physics ticks per decision.
    :param reset_every: decisions between kickoff resets (also reset on every goal).
    :param seconds: wall seconds each worker measures for.
    """

    meshes: str
    blue: int
    orange: int
    tick_skip: int
    reset_every: int
    seconds: float


def meshes_folder(meshes_path: Optional[str]) -> str:
    """The configured meshes folder, or the soccar meshes shipped with rlgym-rocket-league (as its engine uses)."""
    if meshes_path is not None:
        return str(Path(meshes_path).expanduser())
    spec = importlib.util.find_spec("rlgym.rocket_league.sim")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("rlgym.rocket_league.sim not found: is rlgym-rocket-league installed?")
    return str(Path(list(spec.submodule_search_locations)[0]) / "collision_meshes")


def bench_team_sizes(env_cfg: EnvironmentConfig) -> tuple[int, int]:
    """(blue, orange) cars of the match the single-arena stages use: in self-play the team size with the most
    matches (the smaller on a tie, e.g. 1v1 for the default 16 x 1v1); in subproc mode ``blue_size`` /
    ``orange_size``."""
    if env_cfg.vec_env != "selfplay":
        return env_cfg.blue_size, env_cfg.orange_size
    from config.schema import MATCH_SIZES

    counts = {MATCH_SIZES[name]: count for name, count in env_cfg.selfplay.matches.items()}
    size = max(sorted(counts), key=lambda s: counts[s])
    return size, size


def spec_from_config(env_cfg: EnvironmentConfig, seconds: float) -> CeilingSpec:
    """Build the worker spec from the config's ``environment`` section."""
    episode_s = min(env_cfg.episode_seconds, env_cfg.no_touch_timeout_seconds)
    reset_every = max(1, round(episode_s * TICKS_PER_SECOND / env_cfg.tick_skip))
    blue, orange = bench_team_sizes(env_cfg)
    return CeilingSpec(meshes_folder(env_cfg.meshes_path), blue, orange, env_cfg.tick_skip, reset_every, seconds)


def simulate(spec: CeilingSpec, seed: int, barrier: Optional[Barrier] = None) -> tuple[int, float]:
    """Run one arena for ``spec.seconds`` wall seconds; return (agent-steps, wall seconds measured)."""
    import numpy as np
    import RocketSim as rsim

    try:
        rsim.init(spec.meshes)
    except RuntimeError as exc:  # this process already loaded the meshes (an rlgym engine did, say): keep them
        if "already" not in str(exc).lower():
            raise
    arena = rsim.Arena(rsim.GameMode.SOCCAR)
    cars = [arena.add_car(team, rsim.CarConfig(rsim.CarConfig.OCTANE))
            for team in [0] * spec.blue + [1] * spec.orange]
    arena.reset_kickoff(seed)
    rng = np.random.default_rng(seed)
    n_cars = len(cars)
    goals = arena.blue_score + arena.orange_score
    decisions = since_reset = 0
    if barrier is not None:
        barrier.wait(timeout=START_TIMEOUT_S)
    start = time.perf_counter()
    deadline = start + spec.seconds
    now = start
    while now < deadline:
        analog = rng.uniform(-1.0, 1.0, (RANDOM_BATCH, n_cars, 5)).tolist()
        buttons = (rng.random((RANDOM_BATCH, n_cars, 3)) < 0.5).tolist()
        for i in range(RANDOM_BATCH):
            for car, (throttle, steer, pitch, yaw, roll), (jump, boost, handbrake) in zip(cars, analog[i], buttons[i]):
                car.set_controls(rsim.CarControls(throttle=throttle, steer=steer, pitch=pitch, yaw=yaw, roll=roll,
                                                  jump=jump, boost=boost, handbrake=handbrake))
            arena.step(spec.tick_skip)
            decisions += 1
            since_reset += 1
            score = arena.blue_score + arena.orange_score
            if score != goals or since_reset >= spec.reset_every:
                arena.reset_kickoff()
                goals, since_reset = score, 0
            now = time.perf_counter()
            if now >= deadline:
                break
    return decisions * max(1, n_cars), now - start


def _worker(spec: CeilingSpec, seed: int, barrier: Barrier, results: Queue[tuple[str, object, float]]) -> None:
    try:
        results.put(("ok", *simulate(spec, seed, barrier)))
    except BaseException:  # report it: the parent would otherwise wait for a result that never comes
        barrier.abort()  # release the other workers at once instead of after START_TIMEOUT_S
        results.put(("error", traceback.format_exc(), 0.0))


def run_ceiling(env_cfg: EnvironmentConfig, seconds: float, processes: int, seed: int = 0) -> tuple[int, float, float]:
    """Run ``processes`` ceiling workers at once; every one is joined before returning.

    :return: (total agent-steps, summed rate in agent-steps per second, longest wall seconds measured).
    :raises RuntimeError: a worker failed (its traceback is in the message).
    """
    from vecenv.subproc import single_threaded_children

    spec = spec_from_config(env_cfg, seconds)
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(processes)
    results = ctx.Queue()
    with single_threaded_children():
        procs = [ctx.Process(target=_worker, args=(spec, seed + i, barrier, results), daemon=True)
                 for i in range(processes)]
        for proc in procs:
            proc.start()
    try:
        outcomes = [results.get(timeout=START_TIMEOUT_S + seconds + 30) for _ in procs]
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
                proc.join()
        results.close()
    errors = [detail for status, detail, _ in outcomes if status != "ok"]
    if errors:
        raise RuntimeError("ceiling worker failed:\n" + errors[0])
    steps = sum(int(s) for _, s, _ in outcomes)
    rate = sum(s / e for _, s, e in outcomes if e > 0)
    return steps, rate, max(e for _, _, e in outcomes)
