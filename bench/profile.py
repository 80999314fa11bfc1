"""``--profile``: where one PPO training iteration's wall time goes.

Method (timers, no sampling profiler):

1. **Main process.** ``make_training_env`` + ``make_model``; ``PPO.learn`` runs one warm-up iteration and then
   whole iterations for at least ``--seconds`` (at least one), timed from rollout start to rollout start
   (:func:`bench.stages.make_iteration_clock`). Instance-level timers wrap, in the trainer process:

   * the ``SubprocVecEnv``'s ``step_async`` + ``step_wait`` -> *env wait*: sending actions, the workers'
     work, and receiving results;
   * the outer ``VecNormalize``'s ``step_async`` + ``step_wait`` minus the env wait -> **VecNormalize +
     VecMonitor** (normalizing obs and rewards, episode statistics);
   * ``rollout_buffer.add`` + ``compute_returns_and_advantage`` -> **rollout buffer + GAE**;
   * ``policy.forward`` + ``policy.predict_values`` -> **policy inference** (``collect_rollouts`` only; the
     update uses ``evaluate_actions``);
   * ``model.train`` -> **PPO update**;
   * the rest -> **other** (obs -> tensor, actions -> numpy, info buffer, callbacks, ``dump_logs``).

2. **Inside the workers.** The work of a worker is measured on the ``env`` stage's in-process env (self-play:
   all the config's matches in the workers' match groups, stepped here; subproc: one ``RocketLeagueEnv``;
   random actions, resets on episode end) with timers: the arena's ``step`` (**simulation**, a proxy around
   ``RocketSim.Arena``), the rest of the engine step (**engine glue**: ``CarControls``, copying RocketSim state
   into a ``GameState``, and on the batched path reading those into arrays), the obs builder (**obs
   building**), the reward (**reward**), the action parser or the worker's per-car actions (**action
   parsing**), the done conditions (**done conditions**); everything else (writes to the shared arrays,
   resets, ``env.step`` wrapper) is **env wrapper + resets**. This gives seconds per agent-step for each part.

3. **Apportioning.** The workers' compute per vec step is estimated as
   ``per_agent_step_cost * num_envs / min(worker processes, cores)`` (workers run in parallel on the cores;
   the trainer process is blocked while it waits). That estimate, capped at the measured env wait, is split between the
   worker parts in the in-process proportions; what remains of the env wait is
   **IPC transfer / waiting** (pickling or shared-memory copies, pipes, scheduling, waiting for the slowest
   worker).

All parts are reported as seconds per iteration and as shares that add up to 100 %.
"""

from __future__ import annotations

import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from config.schema import Config

if TYPE_CHECKING:
    import torch as th
    from rlgym.api import RLGym

#: (key, label) of every part, in report order. Worker-side parts first.
PARTS: tuple[tuple[str, str], ...] = (
    ("simulation", "simulation (RocketSim arena.step)"),
    ("engine_glue", "engine glue (controls, GameState copy)"),
    ("obs", "obs building"),
    ("reward", "reward"),
    ("action_parsing", "action parsing"),
    ("done_conditions", "done conditions"),
    ("env_wrapper_reset", "env wrapper + resets"),
    ("transfer_wait", "IPC transfer / waiting"),
    ("policy_inference", "policy inference"),
    ("league_inference", "league opponents' inference"),
    ("ppo_update", "PPO update (train)"),
    ("vec_wrappers", "VecNormalize + VecMonitor"),
    ("rollout_buffer", "rollout buffer + GAE"),
    ("other", "other (obs->tensor, callbacks, logs)"),
)
WORKER_PARTS = ("simulation", "engine_glue", "obs", "reward", "action_parsing", "done_conditions",
                "env_wrapper_reset")


class Timers:
    """Accumulated wall seconds per key (``time.perf_counter``)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def wrap(self, fn: Callable[..., Any], key: str) -> Callable[..., Any]:
        """``fn`` with its wall time added to ``key`` on every call."""
        seconds = self.seconds

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                seconds[key] += time.perf_counter() - start

        return timed

    def patch(self, obj: object, method: str, key: str) -> None:
        """Replace ``obj.method`` (on this instance only) by a timed version."""
        setattr(obj, method, self.wrap(getattr(obj, method), key))

    def clear(self) -> None:
        self.seconds.clear()


class TimedArena:
    """Proxy of a ``RocketSim.Arena`` whose ``step`` is timed; every other attribute is the arena's."""

    def __init__(self, arena: Any, timers: Timers, key: str) -> None:
        self._arena = arena
        self.step = timers.wrap(arena.step, key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._arena, name)


@dataclass
class Breakdown:
    """Where one iteration's wall time goes.

    :param iteration_seconds: mean wall seconds of one PPO iteration (collection + update).
    :param iterations: iterations measured.
    :param parts: key (see :data:`PARTS`) -> wall seconds per iteration; they add up to ``iteration_seconds``.
    :param env_step_seconds: in-process cost of one env step by worker part (seconds per step).
    """

    iteration_seconds: float
    iterations: int
    parts: dict[str, float]
    env_step_seconds: dict[str, float] = field(default_factory=dict)

    def shares(self) -> dict[str, float]:
        """Percent of the iteration per part (sums to 100)."""
        total = sum(self.parts.values()) or 1.0
        return {key: 100.0 * value / total for key, value in self.parts.items()}

    def to_json(self) -> dict[str, Any]:
        shares = self.shares()
        return {
            "iteration_seconds": self.iteration_seconds,
            "iterations": self.iterations,
            "parts": {key: {"seconds": self.parts[key], "share": shares[key]} for key, _ in PARTS},
            "env_step_us": {key: 1e6 * value for key, value in self.env_step_seconds.items()},
        }

    def table(self) -> str:
        shares = self.shares()
        width = max(len(label) for _, label in PARTS) + 8
        lines = [f"Breakdown of one PPO iteration ({self.iteration_seconds:.3f} s wall, mean of {self.iterations}):",
                 f"  {'where   part':<{width}}{'s/iter':>9}{'share':>9}"]
        for key, label in PARTS:
            side = "worker" if key in WORKER_PARTS else "main"
            lines.append(f"  {side:<8}{label:<{width - 8}}{self.parts[key]:>9.3f}{shares[key]:>8.1f}%")
        lines.append(f"  {'total':<{width}}{sum(self.parts.values()):>9.3f}{sum(shares.values()):>8.1f}%")
        return "\n".join(lines)


def _patch_match(match: RLGym, timers: Timers, components: bool) -> None:
    """Time an RLGym match's physics and engine step; with ``components``, also its obs builder, reward, action
    parser and done conditions (the per-match ``RLGym.step`` path)."""
    engine = match.transition_engine
    engine._arena = TimedArena(engine._arena, timers, "simulation")
    if components:
        timers.patch(engine, "step", "engine")
    else:  # the batched worker calls step_controls directly (RepeatedActionEngine.step calls it too)
        timers.patch(engine, "step_controls", "engine")
    if components:
        timers.patch(match.obs_builder, "build_obs", "obs")
        timers.patch(match.reward_fn, "get_rewards", "reward")
        timers.patch(match.action_parser, "parse_actions", "action_parsing")
        for cond in (match.termination_cond, match.truncation_cond):
            if cond is not None:
                timers.patch(cond, "is_done", "done_conditions")


def measure_env_parts(cfg: Config, seconds: float) -> dict[str, float]:
    """Seconds per agent-step of each worker part (:data:`WORKER_PARTS`), on the ``env`` stage's in-process
    env (:func:`bench.stages.in_process_env`: self-play, the workers' match groups; subproc, one env).

    Self-play with the batched path (``vecenv/batched.py``): reading the ``GameState`` objects into arrays counts as
    engine glue, the actions of every car (lookup table, league opponents) as action parsing, the writes to the
    shared arrays and the resets as env wrapper + resets."""
    import vecenv.batched
    from bench.stages import in_process_env, run_for

    env = in_process_env(cfg)
    timers = Timers()
    state_arrays = vecenv.batched.StateArrays
    if env.match is not None:
        _patch_match(env.match, timers, components=True)
    for group in env.groups:
        for match in group.matches:
            _patch_match(match.env, timers, components=group.batched is None)
        if group.batched is not None:
            timers.patch(group.batched.obs, "build", "obs")
            timers.patch(group.batched, "rewards", "reward")
            timers.patch(group.batched, "dones", "done_conditions")
            timers.patch(group, "_actions", "action_parsing")
        setattr(vecenv.batched, "StateArrays", timers.wrap(state_arrays, "gather"))  # a timed class, until restored
    step = timers.wrap(env.step, "env_total")
    try:
        run_for(0.0, step)  # warm-up
        timers.clear()
        steps, _ = run_for(seconds, step, warmup=0)
    finally:
        setattr(vecenv.batched, "StateArrays", state_arrays)
        env.close()
    t = timers.seconds
    parts = {
        "simulation": t["simulation"],
        "engine_glue": max(0.0, t["engine"] - t["simulation"]) + t["gather"],
        "obs": t["obs"],
        "reward": t["reward"],
        "action_parsing": t["action_parsing"],
        "done_conditions": t["done_conditions"],
    }
    parts["env_wrapper_reset"] = max(0.0, t["env_total"] - t["engine"] - sum(
        parts[k] for k in ("obs", "reward", "action_parsing", "done_conditions")) - t["gather"])
    return {key: value / steps for key, value in parts.items()}


def measure_iteration(cfg: Config, num_envs: int, device: th.device,
                      seconds: float) -> tuple[float, int, dict[str, float], int]:
    """Run ``learn`` with main-process timers (module docstring) over one warm-up iteration and then whole
    iterations for at least ``seconds`` (at least one), timed by :func:`bench.stages.make_iteration_clock`.

    :return: (wall seconds of the measured iterations, their number, seconds by key over them: env_wait,
        vec_step (the outer wrappers' step, env wait included), policy_inference, ppo_update, rollout_buffer;
        worker processes).
    """
    from stable_baselines3.common.callbacks import CallbackList

    from bench.stages import attach_full_league, make_iteration_clock
    from callbacks.torch_threads import make_threads_callback
    from training.setup import make_model, make_training_env

    seed = cfg.training.seed
    timers = Timers()
    measured: dict[str, float] = {}

    def on_mark(index: int, stopping: bool) -> None:
        if index == 1:
            timers.clear()  # the warm-up iteration is not counted
        if stopping:
            measured.update(timers.seconds)  # before the aborted next rollout's first step

    import training.pipeline

    sample_actions = training.pipeline.sample_actions  # the pipelined loop's inference (timed below)
    group_apply = training.pipeline.GroupWrappers.apply
    env = make_training_env(cfg, num_envs, seed)
    league_dir = tempfile.TemporaryDirectory(prefix="bench-league-")
    try:
        model = make_model(cfg, env, device, seed)
        attach_full_league(cfg, model, env, Path(league_dir.name))  # as the train stage runs it
        workers = env.unwrapped
        processes = len(getattr(workers, "plans", ())) or num_envs  # self-play workers, or one per subproc env
        timers.patch(workers, "step_async", "env_wait")
        timers.patch(workers, "step_wait", "env_wait")
        if hasattr(workers, "_opponent_actions"):  # inside the step calls above: subtracted from env_wait
            timers.patch(workers, "_opponent_actions", "league_inference")
        if hasattr(workers, "step_group_wait"):  # the pipelined loop (training/pipeline.py) steps groups
            timers.patch(workers, "step_group_async", "env_wait")
            timers.patch(workers, "step_group_wait", "env_wait")
            setattr(training.pipeline.GroupWrappers, "apply", timers.wrap(group_apply, "group_wrappers"))
        timers.patch(env, "step_async", "vec_step")
        timers.patch(env, "step_wait", "vec_step")
        timers.patch(model.policy, "forward", "policy_inference")
        timers.patch(model.policy, "predict_values", "policy_inference")
        training.pipeline.sample_actions = timers.wrap(sample_actions, "policy_inference")
        timers.patch(model, "train", "ppo_update")
        timers.patch(model.rollout_buffer, "add", "rollout_buffer")
        timers.patch(model.rollout_buffer, "compute_returns_and_advantage", "rollout_buffer")
        clock = make_iteration_clock(seconds, on_mark)
        model.learn(total_timesteps=2**62, callback=CallbackList([make_threads_callback(cfg.training), clock]),
                    log_interval=cfg.logging.log_interval)
    finally:
        env.close()
        league_dir.cleanup()
        training.pipeline.sample_actions = sample_actions
        setattr(training.pipeline.GroupWrappers, "apply", group_apply)
    return clock.marks[-1][0] - clock.marks[1][0], len(clock.marks) - 2, measured, processes


def profile_iteration(cfg: Config, num_envs: int, device: th.device, cores: int, seconds: float) -> Breakdown:
    """Breakdown of one training iteration (module docstring: method).

    :param cores: cores the workers share.
    :param seconds: wall seconds of the in-process env measurement, and the least measured iteration time.
    """
    per_step = measure_env_parts(cfg, seconds)
    wall, iterations, main, processes = measure_iteration(cfg, num_envs, device, seconds)
    vec_steps = iterations * cfg.training.n_steps
    league = main.get("league_inference", 0.0)
    env_wait = main.get("env_wait", 0.0) - league
    worker_estimate = vec_steps * sum(per_step.values()) * num_envs / max(1, min(processes, cores))
    worker = min(env_wait, worker_estimate)
    scale = worker / (sum(per_step.values()) or 1.0)
    parts = {key: per_step[key] * scale for key in WORKER_PARTS}
    parts["transfer_wait"] = env_wait - worker
    parts["policy_inference"] = main.get("policy_inference", 0.0)
    parts["league_inference"] = league
    parts["ppo_update"] = main.get("ppo_update", 0.0)
    parts["vec_wrappers"] = max(0.0, main.get("vec_step", 0.0) - env_wait) + main.get("group_wrappers", 0.0)
    parts["rollout_buffer"] = main.get("rollout_buffer", 0.0)
    parts["other"] = max(0.0, wall - env_wait - sum(parts[key] for key in (
        "policy_inference", "league_inference", "ppo_update", "vec_wrappers", "rollout_buffer")))
    per_iteration = {key: parts[key] / iterations for key, _ in PARTS}
    return Breakdown(sum(per_iteration.values()), iterations, per_iteration, per_step)
