"""The league: who drives the opponent team of every league match, the pool of past versions, and the ratings.

:class:`League` is the trainer-side :class:`vecenv.selfplay.Opponents` of the self-play vec env. At every
league episode's start it draws the opponent kind by ``league.shares`` (past version, scripted bot, current
policy) and, within the kind, the opponent that makes the game most even (weight ``p(1-p)``, ``p`` the current
policy's win probability from the ratings, floored at ``min_pick_weight`` of the largest weight). Opponent
actions of trainer-driven cars are computed here on the trainer's device, in one batch for the current policy
and one for all past versions (``league/stacked.py``). Files live in the run folder's ``league/``: past versions
as ``model_past_<steps>.zip`` + ``vecnormalize_past_<steps>.pkl`` (ordinary ``PPO.load`` pairs) and
``ladder.json`` (ratings and records).
"""

from __future__ import annotations

import copy
import json
import sys
from collections import defaultdict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np
import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.vec_env import VecNormalize

from config.schema import LeagueConfig, ScriptedName, Shares
from envs.scripted import SCRIPTED_NAMES
from vecenv.base import TRAINER_DRIVEN
from league.ratings import CURRENT, Ratings
from league.stacked import StackedActors, can_stack
from training.actor import actor_logits
from training.flat_obs import normalize_obs
from training.model_files import BadModelFile, inspect_pair, read_normalizer
from training.saving import atomic_write_text, named_paths, save_pair

LEAGUE_DIR = "league"
LADDER_NAME = "ladder.json"
#: Opponent kinds, as named in ``league.shares``.
KINDS = ("past", "scripted", "self")
#: League games per opponent kind (and per scripted bot) that the win rates in TensorBoard average over.
RECENT_GAMES = 100
#: Ended games kept for the curriculum between two of its reads (one read per rollout).
FINISHED_KEPT = 100_000


def sample_actions(policy: ActorCriticPolicy, obs: np.ndarray) -> np.ndarray:
    """Sampled lookup-table actions ``[n]`` for observations ``[n, obs_size]`` (already normalized).

    Runs only the actor half of SB3's ``ActorCriticPolicy`` (features -> actor MLP -> logits -> sample): an
    opponent needs no value and no log-probability. Measured on 2 cores for a batch of 2 with the 2x256
    networks: 161 us, against 374 us for ``policy.predict``; the league calls it once per opponent version
    per step.
    """
    with th.no_grad():
        logits = actor_logits(policy, th.as_tensor(obs, device=policy.device))
        return th.multinomial(th.softmax(logits, dim=-1), 1).reshape(-1).cpu().numpy()


@dataclass
class FrozenPolicy:
    """A past version: its own copy of the policy network and of the observation statistics it was trained
    with. Training the current policy changes neither."""

    policy: ActorCriticPolicy
    normalizer: Optional[VecNormalize]

    def act(self, obs: np.ndarray) -> np.ndarray:
        if self.normalizer is not None:
            obs = normalize_obs(self.normalizer, obs)
        return sample_actions(self.policy, obs)


def frozen_normalizer(vec_normalize: Optional[VecNormalize]) -> Optional[VecNormalize]:
    """A copy of a normalizer's statistics without its env (``VecNormalize`` pickles without it), with
    ``training=False``: ``normalize_obs`` never updates it."""
    if vec_normalize is None:
        return None
    frozen = copy.deepcopy(vec_normalize)
    frozen.training = False
    return frozen


def frozen_copy(policy: ActorCriticPolicy) -> ActorCriticPolicy:
    """A new policy with the same constructor arguments and a copy of the weights, in eval mode (SB3 rebuilds
    policies this way on load; ``deepcopy`` fails once a forward pass left its last distribution attached)."""
    frozen = policy.__class__(**policy._get_constructor_parameters()).to(policy.device)
    frozen.load_state_dict(policy.state_dict())
    frozen.set_training_mode(False)
    for param in frozen.parameters():
        param.requires_grad_(False)
    return frozen


def past_name(steps: int) -> str:
    return f"past_{steps}"


class League:
    """Opponents, pool and ratings of one run (module docstring).

    :param league_cfg: the config's ``league`` section.
    :param run_dir: the run's folder; the league keeps its files in ``run_dir/league/``.
    :param n_matches: league matches in the vec env.
    :param seed: seed of the opponent draws.
    """

    def __init__(self, league_cfg: LeagueConfig, run_dir: Path, n_matches: int, seed: int):
        self.cfg = league_cfg
        self.folder = Path(run_dir) / LEAGUE_DIR
        self.rng = np.random.default_rng(seed)
        self.ratings = Ratings()
        self.pool: dict[str, FrozenPolicy] = {}
        self.first_snapshot: Optional[str] = None
        self.assigned: list[str] = [CURRENT] * n_matches
        #: Outcomes (+1/0/-1) of the current policy's last games, per opponent kind and per scripted bot.
        self.recent: dict[str, deque] = defaultdict(lambda: deque(maxlen=RECENT_GAMES))
        self.games = 0
        #: Ended games not yet read by the curriculum: (opponent: a scripted bot's name or its kind, touched,
        #: outcome). Bounded: a run without a curriculum never reads it.
        self.finished: deque = deque(maxlen=FINISHED_KEPT)
        #: Weight of each scripted bot in the even-games pick (the curriculum stage's; 1 each by default).
        self.scripted_weights: dict[ScriptedName, float] = {name: 1.0 for name in league_cfg.scripted}
        self.model: Optional[PPO] = None
        self.vec_normalize: Optional[VecNormalize] = None
        #: (pool name -> row of the stack, the pool's actors as one network); None until built or after the pool
        #: changed.
        self._stacked: Optional[tuple[dict[str, int], Optional[StackedActors]]] = None
        shares = np.array([getattr(league_cfg.shares, kind) for kind in KINDS], dtype=np.float64)
        self.kind_p = shares / shares.sum()

    # ---------------------------------------------------------------------------------------- set up
    def bind(self, model: PPO, vec_normalize: Optional[VecNormalize]) -> None:
        """The current policy and the training normalizer (for "self" opponents and snapshots)."""
        self.model, self.vec_normalize = model, vec_normalize

    @property
    def ladder_path(self) -> Path:
        return self.folder / LADDER_NAME

    def load(self, device: th.device | str) -> None:
        """Restore ratings and pool from ``ladder.json`` and the past-version pairs (a resumed run). A past
        version whose files are missing or unreadable is dropped with a warning."""
        if not self.ladder_path.is_file():
            return
        state = json.loads(self.ladder_path.read_text())
        self.ratings = Ratings.from_json(state["ratings"])
        self.first_snapshot = state.get("first_snapshot")
        for name in state.get("pool", []):
            self._stacked = None
            try:
                self.pool[name] = self._load_past(name, device)
            except (BadModelFile, FileNotFoundError) as exc:
                print(f"warning: league: dropping past version {name}: {exc}", file=sys.stderr)
                self.ratings.remove(name)

    def _paths(self, name: str) -> tuple[Path, Path]:
        return named_paths(self.folder, name)

    def _load_past(self, name: str, device: th.device | str) -> FrozenPolicy:
        model_path, norm_path = self._paths(name)
        inspect_pair(model_path, norm_path)
        normalizer = read_normalizer(norm_path)
        normalizer.training = False
        return FrozenPolicy(PPO.load(model_path, device=device).policy, normalizer)

    def set_mix(self, shares: Shares, scripted_weights: Mapping[ScriptedName, float]) -> None:
        """Opponent kinds' shares and the scripted bots' weights from the next draw on (a curriculum stage)."""
        kind_shares = np.array([getattr(shares, kind) for kind in KINDS], dtype=np.float64)
        self.kind_p = kind_shares / kind_shares.sum()
        self.scripted_weights = dict(scripted_weights)

    def resize(self, n_matches: int) -> None:
        """The vec env was rebuilt with ``n_matches`` league matches (a curriculum stage change): every match starts
        a new episode, so no game in progress is rated."""
        self.assigned = [CURRENT] * n_matches

    # ---------------------------------------------------------------------------------------- pool
    def snapshot(self) -> str:
        """The current policy and normalizer join the pool (saved as a pair in ``league/``); beyond ``pool_size``
        the oldest past versions are dropped, never the run's first snapshot nor the one just taken."""
        assert self.model is not None, "League.bind() comes before snapshots"
        steps = self.model.num_timesteps
        name = past_name(steps)
        save_pair(self.model, self.vec_normalize, *self._paths(name))
        self.pool[name] = FrozenPolicy(frozen_copy(self.model.policy), frozen_normalizer(self.vec_normalize))
        self._stacked = None
        self.ratings.add_past(name, steps)
        self.first_snapshot = self.first_snapshot or name
        droppable = [n for n in self.pool if n not in (self.first_snapshot, name)]
        while len(self.pool) > self.cfg.pool_size and droppable:
            self.drop(droppable.pop(0))
        self.save()
        return name

    def drop(self, name: str) -> None:
        """Remove a past version (pool, ratings, files). Matches playing it finish their episode against the
        current policy (both are trainer-driven; that game is not rated)."""
        self.assigned = [CURRENT if assigned == name else assigned for assigned in self.assigned]
        self.pool.pop(name, None)
        self._stacked = None
        self.ratings.remove(name)
        for path in self._paths(name):
            path.unlink(missing_ok=True)

    def save(self) -> None:
        """Write ``ladder.json`` atomically: ratings, records, the pool and the first snapshot."""
        self.folder.mkdir(parents=True, exist_ok=True)
        state = {"steps": self.model.num_timesteps if self.model else 0, "pool": list(self.pool),
                 "first_snapshot": self.first_snapshot, "ratings": self.ratings.to_json()}
        atomic_write_text(self.ladder_path, json.dumps(state, indent=1))

    # ---------------------------------------------------------------------------------------- opponents
    def _pick(self, candidates: Sequence[str], prior: Optional[list[float]] = None) -> str:
        """The candidate making the most even game: weight p(1-p), floored at min_pick_weight of the best, times
        ``prior`` (the curriculum stage's weights of scripted bots)."""
        p = np.array([self.ratings.win_probability(name) for name in candidates])
        weights = p * (1 - p)
        weights = np.maximum(weights, self.cfg.min_pick_weight * weights.max()) + 1e-12
        if prior is not None:
            weights = weights * np.asarray(prior, dtype=np.float64)
        return candidates[int(self.rng.choice(len(candidates), p=weights / weights.sum()))]

    def assign(self, match: int) -> int:
        """Draw the opponent of ``match``'s next episode; returns its ``opp_kind`` for the workers."""
        kind = KINDS[int(self.rng.choice(len(KINDS), p=self.kind_p))]
        if kind == "past" and not self.pool:
            kind = "self"
        if kind == "past":
            name = self._pick(list(self.pool))
        elif kind == "scripted":
            names = list(self.scripted_weights)
            name = self._pick(names, [self.scripted_weights[n] for n in names])
        else:
            name = CURRENT
        self.assigned[match] = name
        return 1 + SCRIPTED_NAMES.index(name) if name in SCRIPTED_NAMES else TRAINER_DRIVEN

    def result(self, match: int, outcome: Optional[int], touched: bool = False) -> None:
        """Rate the finished game (not games against the current policy itself: a mirror says nothing).
        ``touched``: the learning team touched the ball in it."""
        opponent = self.assigned[match]
        if outcome is None or (opponent != CURRENT and opponent not in self.ratings.records):
            return  # a game lost with a restarted worker, or against a version dropped from the pool meanwhile
        self.games += 1
        kind = "self" if opponent == CURRENT else self.ratings.records[opponent].kind
        self.finished.append((opponent if kind == "scripted" else kind, bool(touched), int(outcome)))
        self.recent[kind].append(outcome)
        if kind == "scripted":
            self.recent[opponent].append(outcome)
        if opponent != CURRENT:
            self.ratings.record_game(opponent, outcome)

    def act(self, obs: np.ndarray, matches: np.ndarray) -> np.ndarray:
        """Sampled actions of the trainer-driven opponent cars: one forward pass for the current policy's cars and
        one for all past versions' cars together (:class:`league.stacked.StackedActors`)."""
        actions = np.zeros(len(obs), dtype=np.int64)
        names = np.array([self.assigned[m] for m in matches])
        current = names == CURRENT
        if current.any():
            assert self.model is not None, "League.bind() comes before the vec env steps"
            rows = np.flatnonzero(current)
            batch = obs[rows] if self.vec_normalize is None else normalize_obs(self.vec_normalize, obs[rows])
            actions[rows] = sample_actions(self.model.policy, batch)
        if current.all():
            return actions
        rows = np.flatnonzero(~current)
        stacked = self._stacked_pool()
        if stacked is not None:
            assert self._stacked is not None  # _stacked_pool() built it
            index = self._stacked[0]
            actions[rows] = stacked.act(obs[rows], np.array([index[name] for name in names[rows]]))
        else:  # versions of different shapes: one pass each
            for name in np.unique(names[rows]):
                own = rows[names[rows] == name]
                actions[own] = self.pool[name].act(obs[own])
        return actions

    def _stacked_pool(self) -> Optional[StackedActors]:
        """The pool's actors as one network, built once per pool (None: versions of different shapes)."""
        if self._stacked is None:
            names = list(self.pool)
            policies = [self.pool[name].policy for name in names]
            stacked = StackedActors(policies, [self.pool[n].normalizer for n in names]) if can_stack(policies) else None
            self._stacked = ({name: i for i, name in enumerate(names)}, stacked)
        return self._stacked[1]

    def win_rates(self) -> dict[str, tuple[float, float]]:
        """(win rate, draw rate) of the current policy over its last games, per opponent kind and scripted bot."""
        return {key: (float(np.mean(np.array(games) > 0)), float(np.mean(np.array(games) == 0)))
                for key, games in self.recent.items() if games}
