"""Worker side of :class:`vecenv.selfplay.SelfPlayVecEnv`: one process stepping several self-play matches.

The trainer and its workers share one set of per-slot arrays (:class:`SharedArrays`, allocated by the
trainer in shared memory). Each worker owns a contiguous range of slots (the cars of its matches): on a
``"step"`` command it reads those slots' actions, steps each of its matches, writes observations, rewards,
reward parts and episode flags into the same slots and answers with one tiny pipe message. So a vec step costs
one small message per worker in each direction instead of one pickled ``(obs, reward, done, info)`` per env
(SB3's ``SubprocVecEnv``).

Slot layout of a self-play match with ``n`` cars per team: ``blue-0 .. blue-(n-1)``, then ``orange-0 ..
orange-(n-1)``. Each car sees the match from its own side (rlgym's obs builders mirror the field for orange).

League matches (after the self-play ones) have ``n`` slots: the learning team's cars, on a side drawn at every
reset (``learner_team``). The other team's cars are *opponent rows* (``opp_obs`` / ``opp_actions``), not slots:
per league match, ``opp_kind`` (set by the trainer before each step) says who drives them: ``0`` the trainer
(actions it wrote to ``opp_actions``, e.g. from a past version of the policy), or a scripted driver run here
from the game state (``1 + index`` in :data:`envs.scripted.SCRIPTED_NAMES`). When a league episode ends,
``outcome`` holds +1 (the learning team scored), -1 (it conceded) or 0 (time limit / no-touch timeout).

After the physics, a worker computes the observations, rewards and done flags of all its matches at once
(:mod:`vecenv.batched`, equal to rlgym's components, tested); configs it does not cover (e.g. the ``relative``
observation) step each match through its own ``RLGym.step``. Resets always go through rlgym.

Seeds: match ``i`` of a run seeded ``s`` draws from ``SeedSequence([s, i, generation])`` (``generation`` counts
restarts of its worker), so a match plays the same way whichever worker runs it and how many matches that
worker has. rlgym's mutators draw from the process-global ``random`` / ``np.random``; each match keeps its own
state of both and installs it around its resets.
"""

from __future__ import annotations

import ctypes
import os
import random
import sys
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from typing import TYPE_CHECKING, Any, Optional, Sequence, TypedDict

import numpy as np

from envs.schema import EnvironmentConfig, Rewards

if TYPE_CHECKING:
    from rlgym.api import StateMutator
    from rlgym.rocket_league.api import GameState

    from vecenv.batched import BatchedStep, FallbackPart, ObsLayout

#: Shared arrays: name -> (dtype, what indexes the rows, width of a row: ``obs_size`` / ``n_parts`` or one value).
ARRAY_FIELDS: dict[str, tuple[type[np.generic], str, Optional[str]]] = {
    "obs": (np.float32, "n_slots", "obs_size"),           # observation after the step (after the reset if it ended)
    "terminal_obs": (np.float32, "n_slots", "obs_size"),  # last observation of an ended episode (valid where done)
    "actions": (np.int64, "n_slots", None),               # lookup-table index chosen by the policy
    "rewards": (np.float32, "n_slots", None),
    "parts": (np.float32, "n_slots", "n_parts"),          # weighted reward parts, in ``part_names`` order
    "terminated": (np.bool_, "n_slots", None),            # a goal (or a terminal no-touch timeout) ended the match
    "truncated": (np.bool_, "n_slots", None),             # time limit / no-touch timeout ended it (not terminated)
    "touched": (np.bool_, "n_slots", None),               # the car touched the ball during the step
    "goal": (np.int8, "n_slots", None),                   # +1 its team scored this step, -1 conceded, 0 no goal
    "opp_obs": (np.float32, "n_opp", "obs_size"),         # league opponents' observations (current state)
    "opp_actions": (np.int64, "n_opp", None),             # their actions when the trainer drives them
    "opp_kind": (np.int8, "n_league", None),              # per league match: 0 trainer-driven, 1+i scripted i
    "learner_team": (np.int8, "n_league", None),          # per league match: the learning team's side this episode
    "outcome": (np.int8, "n_league", None),               # per league match: result of the episode that just ended
}
#: ``opp_kind`` value for opponents whose actions the trainer writes to ``opp_actions``.
TRAINER_DRIVEN = 0


class SharedArrays:
    """Per-slot numpy arrays backed by ``multiprocessing`` shared memory (``RawArray``).

    The trainer allocates them; they are handed to each worker when it starts (``spawn`` duplicates the
    file descriptor). The backing file is unlinked as soon as it is created, so nothing is ever left in
    ``/dev/shm``, whatever way the processes end.

    Shapes: ``obs`` / ``terminal_obs`` ``[n_slots, obs_size]``, ``parts`` ``[n_slots, n_parts]``, ``opp_obs``
    ``[n_opp, obs_size]``, ``opp_actions`` ``[n_opp]``, the league fields ``[n_league]``, the others ``[n_slots]``.
    """

    def __init__(self, ctx: BaseContext, n_slots: int, obs_size: int, n_parts: int, n_opp: int = 0,
                 n_league: int = 0):
        self.sizes = {"n_slots": n_slots, "obs_size": obs_size, "n_parts": n_parts, "n_opp": n_opp,
                      "n_league": n_league}
        self._raw = {}
        for name, (dtype, rows, width) in ARRAY_FIELDS.items():
            count = self.sizes[rows] * (self.sizes[width] if width else 1)
            self._raw[name] = ctx.RawArray(ctypes.c_uint8, max(1, count * np.dtype(dtype).itemsize))
        self._map()

    def _map(self) -> None:
        for name, (dtype, rows, width) in ARRAY_FIELDS.items():
            shape = (self.sizes[rows], self.sizes[width]) if width else (self.sizes[rows],)
            count = int(np.prod(shape))
            # numpy's stubs leave out ctypes arrays, which export the buffer protocol frombuffer reads
            raw = self._raw[name]
            view = np.frombuffer(raw, dtype=np.uint8)[: count * np.dtype(dtype).itemsize]  # type: ignore[call-overload]
            setattr(self, name, view.view(dtype).reshape(shape))

    def __getstate__(self) -> dict:
        return {"sizes": self.sizes, "_raw": self._raw}

    def __setstate__(self, state: dict) -> None:
        self.sizes, self._raw = state["sizes"], state["_raw"]
        self._map()

    # Attributes set by _map (for type checkers and readers).
    obs: np.ndarray
    terminal_obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    parts: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    touched: np.ndarray
    goal: np.ndarray
    opp_obs: np.ndarray
    opp_actions: np.ndarray
    opp_kind: np.ndarray
    learner_team: np.ndarray
    outcome: np.ndarray


@dataclass(frozen=True)
class MatchPlan:
    """One match: ``index`` in the run (seeds depend on it), cars per team, and the slot of its first learning
    car. A league match also has ``league_index`` (its row in the per-league-match arrays) and ``first_opp`` (the
    row of its first opponent car in ``opp_obs`` / ``opp_actions``)."""

    index: int
    team_size: int
    first_slot: int
    league_index: Optional[int] = None
    first_opp: int = 0

    @property
    def learning_cars(self) -> int:
        return self.team_size if self.league_index is not None else 2 * self.team_size

    @property
    def stop_slot(self) -> int:
        return self.first_slot + self.learning_cars


@dataclass(frozen=True)
class WorkerPlan:
    """The matches one worker runs; their slots are contiguous."""

    matches: tuple[MatchPlan, ...]

    @property
    def slots(self) -> slice:
        return slice(self.matches[0].first_slot, self.matches[-1].stop_slot)

    @property
    def league_matches(self) -> list[int]:
        return [m.league_index for m in self.matches if m.league_index is not None]


def league_match_plans(plans: Sequence[WorkerPlan]) -> list[MatchPlan]:
    """The league matches of ``plans``, by ``league_index``."""
    indexed = [(m.league_index, m) for plan in plans for m in plan.matches if m.league_index is not None]
    return [m for _, m in sorted(indexed, key=lambda pair: pair[0])]


def plan_workers(team_sizes: Sequence[int], num_workers: int, league_sizes: Sequence[int] = (),
                 first_match: int = 0) -> list[WorkerPlan]:
    """Split the matches, in order, into ``min(num_workers, matches)`` contiguous groups of about equal car count.

    :param team_sizes: cars per team of each self-play match (slot order).
    :param league_sizes: cars per team of each league match; they come after the self-play matches.
    :param first_match: run-wide index of the first match (seeds depend on it): a Ray actor running a share of
        the run's matches (:mod:`vecenv.ray_backend`) numbers them as the whole run does.
    """
    kinds = [(size, None) for size in team_sizes] + [(size, i) for i, size in enumerate(league_sizes)]
    n_workers = max(1, min(num_workers, len(kinds)))
    total_cars = 2 * sum(size for size, _ in kinds)
    plans: list[WorkerPlan] = []
    current: list[MatchPlan] = []
    slot = opp = cars = 0
    for index, (size, league_index) in enumerate(kinds):
        current.append(MatchPlan(first_match + index, size, slot, league_index, opp))
        slot += current[-1].learning_cars
        opp += size if league_index is not None else 0
        cars += 2 * size
        workers_left = n_workers - len(plans) - 1
        matches_left = len(kinds) - index - 1
        share_reached = cars >= total_cars * (len(plans) + 1) / n_workers
        if workers_left > 0 and (share_reached or matches_left == workers_left):
            plans.append(WorkerPlan(tuple(current)))
            current = []
    plans.append(WorkerPlan(tuple(current)))
    return plans


def match_seed(seed: int, index: int, generation: int) -> int:
    """32-bit seed of match ``index`` in a run seeded ``seed``, after ``generation`` restarts of its worker."""
    return int(np.random.SeedSequence([seed, index, generation]).generate_state(1)[0])


class _Match:
    """One RLGym match and where its cars live in the shared arrays.

    ``agents`` are the cars in slot order: all cars of a self-play match (blue, then orange); the learning
    team's cars of a league match, whose other cars are ``opponents`` (``learner_team`` drawn at each reset).
    """

    def __init__(self, plan: MatchPlan, env_cfg: EnvironmentConfig, reward_weights: Rewards,
                 state_mutator: Optional[StateMutator] = None):
        from envs.components import build_match
        from envs.scripted import SCRIPTED_NAMES, ScriptedDriver

        self.plan = plan
        self.env, self.reward_fn = build_match(env_cfg, reward_weights, state_mutator,
                                               team_sizes=(plan.team_size,) * 2)
        self.agents: list[str] = []
        self.opponents: list[str] = []
        self.learner_team = 0
        self._py_state: Any = None
        self._np_state: Any = None
        self._rng = np.random.default_rng(0)
        table = self.env.action_parser.parser._lookup_table
        #: ``opp_kind`` value -> scripted driver (league matches only); ``_rng`` is reseeded with the match.
        self.scripted = {1 + i: ScriptedDriver(name, table, self._rng) for i, name in enumerate(SCRIPTED_NAMES)}

    def seed(self, seed: int) -> None:
        self._py_state = random.Random(seed).getstate()
        self._np_state = np.random.RandomState(seed).get_state()
        self._rng.bit_generator.state = np.random.default_rng(seed).bit_generator.state

    def reset(self) -> dict[str, np.ndarray]:
        """Reset with this match's own random state installed in ``random`` / ``np.random``."""
        random.setstate(self._py_state)
        np.random.set_state(self._np_state)
        obs = self.env.reset()
        self._py_state = random.getstate()
        self._np_state = np.random.get_state()
        cars = self.env.state.cars
        ordered = sorted(obs, key=lambda agent: (cars[agent].team_num, agent))
        if self.plan.league_index is None:
            self.agents = ordered
        else:
            self.learner_team = int(self._rng.integers(2))
            self.agents = [a for a in ordered if cars[a].team_num == self.learner_team]
            self.opponents = [a for a in ordered if cars[a].team_num != self.learner_team]
        return obs


class _Layout(TypedDict):
    """Where the car rows of a batched step go (:meth:`MatchGroup._build_layout`)."""

    car_match: np.ndarray
    agent_orders: list[list[str]]
    obs: ObsLayout
    slot_rows: np.ndarray
    slots: np.ndarray
    opp_rows: np.ndarray
    opps: np.ndarray


class MatchGroup:
    """The matches of one worker, reading actions from and writing results to the shared arrays."""

    def __init__(self, plan: WorkerPlan, arrays: Optional[SharedArrays], env_cfg: EnvironmentConfig,
                 reward_weights: Rewards, state_mutator: Optional[StateMutator] = None, batched: bool = True):
        """``arrays`` None: set ``self.arrays`` before any reset or step (the benchmark sizes them from the
        groups' matches)."""
        from vecenv.batched import BATCHED_PARTS, BatchedStep

        self.arrays: SharedArrays
        if arrays is not None:
            self.arrays = arrays
        self.matches = [_Match(match_plan, env_cfg, reward_weights, state_mutator) for match_plan in plan.matches]
        self.part_names = self.matches[0].reward_fn.names
        #: Obs, rewards and dones of all matches at once (None: this config keeps rlgym's per-match step).
        self.batched: Optional[BatchedStep] = None
        self._layout_key: object = None
        if batched and BatchedStep.supports(env_cfg, [m.plan.team_size for m in self.matches]):
            reward_fn = self.matches[0].reward_fn
            fallback = {name: self._fallback_part(k) for k, name in enumerate(self.part_names)
                        if name not in BATCHED_PARTS or name in reward_fn.custom}
            self.batched = BatchedStep(self.matches[0].env.obs_builder, self.part_names, reward_fn.weights,
                                       env_cfg.episode_seconds, env_cfg.no_touch_timeout_seconds,
                                       env_cfg.no_touch_timeout_terminal, len(self.matches), fallback)
            self._table = self.matches[0].env.action_parser.parser._lookup_table
            self._ticks = env_cfg.tick_skip

    def reset(self, seed: int, generation: int) -> None:
        """Reseed every match from (``seed``, its index, ``generation``), reset it, write its observations."""
        for index, match in enumerate(self.matches):
            match.seed(match_seed(seed, match.plan.index, generation))
            self._reset_match(index)

    def _reset_match(self, index: int) -> None:
        match = self.matches[index]
        self._write_obs(match, match.reset())
        if self.batched is not None:
            self.batched.clocks.reset(index, match.env.state.tick_count)

    def _fallback_part(self, k: int) -> FallbackPart:
        """Reward part ``k`` (no batched version) of match ``m``, from that match's own rlgym reward function."""
        def part(m: int, terminated: bool, truncated: bool) -> dict:
            env = self.matches[m].env
            agents = list(env.state.cars)
            return env.reward_fn.part_rewards(k, agents, env.state, dict.fromkeys(agents, terminated),
                                              dict.fromkeys(agents, truncated), env.shared_info)
        return part

    def _actions(self, match: _Match) -> dict[str, np.ndarray]:
        a, plan = self.arrays, match.plan
        first = plan.first_slot
        actions = {agent: a.actions[first + i: first + i + 1] for i, agent in enumerate(match.agents)}
        if plan.league_index is not None:
            kind = int(a.opp_kind[plan.league_index])
            if kind == TRAINER_DRIVEN:
                chosen = a.opp_actions[plan.first_opp: plan.first_opp + plan.team_size]
            else:
                chosen = match.scripted[kind].act(match.env.state, match.opponents)
            actions.update({agent: chosen[i: i + 1] for i, agent in enumerate(match.opponents)})
        return actions

    def step(self) -> None:
        """One decision of every car; a match that ends is reset at once (its last obs go to ``terminal_obs``)."""
        if self.batched is not None:
            self._step_batched()
        else:
            self._step_each()

    def _step_batched(self) -> None:
        """:meth:`step` with the physics per match and everything after it over all matches (``vecenv/batched.py``)."""
        from vecenv.batched import StateArrays

        assert self.batched is not None  # step() takes this path only then
        a, table, ticks = self.arrays, self._table, self._ticks
        states = []
        for match in self.matches:
            actions = self._actions(match)
            states.append(match.env.transition_engine.step_controls(
                {agent: table[int(index[0])] for agent, index in actions.items()}, ticks))
        key = tuple((tuple(state.cars), match.learner_team) for state, match in zip(states, self.matches))
        if key != self._layout_key:
            self._build_layout(states)
            self._layout_key = key
        lay = self._layout
        s = StateArrays(states, lay["car_match"])
        result = self.batched.step(s, lay["obs"], lay["agent_orders"])
        rows, slots, opp_rows, opps = lay["slot_rows"], lay["slots"], lay["opp_rows"], lay["opps"]
        a.obs[slots] = result.obs[rows]
        a.rewards[slots] = result.rewards[rows]
        a.parts[slots] = result.parts[rows]
        a.touched[slots] = s.touched[rows]
        scorer = s.scoring_team[s.car_match[rows]]
        a.goal[slots] = np.where(scorer < 0, 0, np.where(scorer == s.team[rows], 1, -1))
        terminal = result.terminated[s.car_match[rows]]
        a.terminated[slots] = terminal
        a.truncated[slots] = result.truncated[s.car_match[rows]] & ~terminal
        if len(opps):
            a.opp_obs[opps] = result.obs[opp_rows]
        for index in np.flatnonzero(result.terminated | result.truncated):
            match = self.matches[index]
            slots_of_match = slice(match.plan.first_slot, match.plan.stop_slot)
            a.terminal_obs[slots_of_match] = a.obs[slots_of_match]
            if match.plan.league_index is not None:
                team = int(s.scoring_team[index])
                a.outcome[match.plan.league_index] = 0 if team < 0 else (1 if team == match.learner_team else -1)
            self._reset_match(int(index))

    def _build_layout(self, states: list[GameState]) -> None:
        """Car rows (every match's cars in ``state.cars`` order) -> observation layout, slots and opponent rows."""
        from vecenv.batched import ObsLayout

        assert self.batched is not None  # only the batched path has a layout
        car_match, teams, agent_orders = [], [], []
        slot_rows, slots, opp_rows, opps = [], [], [], []
        row = 0
        for index, (state, match) in enumerate(zip(states, self.matches)):
            order = list(state.cars)
            agent_orders.append(order)
            teams.append([state.cars[agent].team_num for agent in order])
            car_match += [index] * len(order)
            for agent in order:
                if agent in match.agents:
                    slot_rows.append(row)
                    slots.append(match.plan.first_slot + match.agents.index(agent))
                else:
                    opp_rows.append(row)
                    opps.append(match.plan.first_opp + match.opponents.index(agent))
                row += 1
        as_int = lambda values: np.asarray(values, dtype=np.int64)  # noqa: E731
        self._layout: _Layout = {"car_match": as_int(car_match), "agent_orders": agent_orders,
                                 "obs": ObsLayout.build(teams, self.batched.obs.zero_padding),
                                 "slot_rows": as_int(slot_rows), "slots": as_int(slots),
                                 "opp_rows": as_int(opp_rows), "opps": as_int(opps)}

    def _step_each(self) -> None:
        """:meth:`step` through each match's own ``RLGym.step`` (configs the batched path does not cover)."""
        a = self.arrays
        for match in self.matches:
            first = match.plan.first_slot
            obs, rewards, terminated, truncated = match.env.step(self._actions(match))
            state = match.env.state
            parts = match.reward_fn.last_parts
            scorer = state.scoring_team if state.goal_scored else None
            for i, agent in enumerate(match.agents):
                slot = first + i
                a.rewards[slot] = rewards[agent]
                a.parts[slot] = [parts[agent][name] for name in self.part_names]
                car = state.cars[agent]
                a.touched[slot] = car.ball_touches > 0
                a.goal[slot] = 0 if scorer is None else (1 if scorer == car.team_num else -1)
            self._write_obs(match, obs)
            slots = slice(first, match.plan.stop_slot)
            terminal = any(terminated.values())
            a.terminated[slots] = terminal
            a.truncated[slots] = any(truncated.values()) and not terminal
            if a.terminated[first] or a.truncated[first]:
                a.terminal_obs[slots] = a.obs[slots]
                if match.plan.league_index is not None:
                    a.outcome[match.plan.league_index] = 0 if scorer is None else (
                        1 if scorer == match.learner_team else -1)
                self._write_obs(match, match.reset())

    def _write_obs(self, match: _Match, obs: dict[str, np.ndarray]) -> None:
        a, plan = self.arrays, match.plan
        for i, agent in enumerate(match.agents):
            a.obs[plan.first_slot + i] = obs[agent]
        if plan.league_index is not None:
            a.learner_team[plan.league_index] = match.learner_team
            for i, agent in enumerate(match.opponents):
                a.opp_obs[plan.first_opp + i] = obs[agent]

    def close(self) -> None:
        for match in self.matches:
            match.env.close()


def process_info() -> dict[str, Any]:
    """Where this worker runs: pid and thread limits (shown in the trainer's banner, checked by the tests)."""
    torch = sys.modules.get("torch")
    return {
        "pid": os.getpid(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "torch_threads": torch.get_num_threads() if torch is not None else None,
    }


def worker_main(conn: Connection, arrays: SharedArrays, plan: WorkerPlan, env_cfg: EnvironmentConfig,
                reward_weights: Rewards, seed: int, generation: int,
                state_mutator: Optional[StateMutator] = None) -> None:
    """Process entry point. Protocol (pickled tuples on ``conn``), every command answered once:

    * at start: build the matches, reset them with ``seed`` -> ``("ready", process_info)``
    * ``("step", None)`` -> ``("ok", None)`` once every match stepped (results in the shared arrays)
    * ``("reset", seed)`` -> ``("ok", None)`` (matches reseeded, generation 0)
    * ``("info", None)`` -> ``("ok", process_info)``
    * ``("close", None)`` -> the process exits
    * any exception -> ``("error", traceback text)`` and the process exits.

    Stop signals are ignored (:func:`vecenv.subproc.ignore_stop_signals`): they reach only the trainer, which
    saves and then closes its workers.
    """
    from vecenv.subproc import ignore_stop_signals, limit_threads_in_this_process

    ignore_stop_signals()
    limit_threads_in_this_process()
    group: Optional[MatchGroup] = None
    try:
        group = MatchGroup(plan, arrays, env_cfg, reward_weights, state_mutator)
        group.reset(seed, generation)
        conn.send(("ready", process_info()))
        while True:
            command, arg = conn.recv()
            if command == "step":
                group.step()
                conn.send(("ok", None))
            elif command == "reset":
                group.reset(arg, 0)
                conn.send(("ok", None))
            elif command == "info":
                conn.send(("ok", process_info()))
            elif command == "close":
                break
            else:
                raise ValueError(f"unknown command {command!r}")
    except EOFError:  # the trainer is gone: nothing to answer
        pass
    except BaseException:
        try:
            conn.send(("error", traceback.format_exc()))
        except OSError:
            pass
    finally:
        if group is not None:
            group.close()
        conn.close()
