"""The games the learning benchmark plays with one saved model, and their per-game records.

Against each opponent the model plays, from both sides of the field (half its games as blue, half as orange):

* ``stochastic``: ``stochastic`` games, actions sampled as in training, from the run's start states;
* ``deterministic``: ``exact`` games from rlgym's exact kickoff spots (against a deterministic opponent they repeat:
  five spots, two sides) plus ``jittered`` games from kickoffs moved a little (``environment.kickoff_jitter``), so a
  deterministic bot plays many different games.

Games are played by :mod:`play.match` (the code ``evaluate.py`` uses). Each game is kept as a record (touched,
goals for and against) so that :mod:`bench.stats` can put intervals over seeds and games.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

from config.schema import EnvironmentConfig, Rewards
from play.match import (Driver, MatchEpisode, PolicyDriver, load_policy_driver, lookup_table, make_driver,
                        play_episodes)


@dataclass(frozen=True)
class GameRecord:
    """One game from the model's side: did its team touch the ball, goals for and against, how it started
    (``jittered``: from a moved kickoff), and the model's first car's start spot (x, y in uu, rounded)."""

    touched: bool
    goals_for: int
    goals_against: int
    jittered: bool
    start: tuple[int, int]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> "GameRecord":
        return cls(bool(row["touched"]), int(row["goals_for"]), int(row["goals_against"]), bool(row["jittered"]),
                   tuple(row["start"]))


@dataclass(frozen=True)
class GameCounts:
    """How many games of each kind are played per opponent (both sides together)."""

    stochastic: int
    exact: int
    jittered: int


def _records(results: Sequence[MatchEpisode], as_blue: bool, jittered: bool) -> list[GameRecord]:
    out = []
    for r in results:
        if as_blue:
            out.append(GameRecord(r.blue_touched, r.blue_goals, r.orange_goals, jittered, r.blue_start))
        else:  # the model drove orange: its start is the mirror of blue's (kickoffs are symmetric)
            out.append(GameRecord(r.orange_touched, r.orange_goals, r.blue_goals, jittered,
                                  (-r.blue_start[0], -r.blue_start[1])))
    return out


def play_both_sides(me: Driver, opponent: Driver, env_cfg: EnvironmentConfig, rewards: Rewards, games: int,
                    seed: int, jittered: bool) -> list[GameRecord]:
    """``games`` 1v1 games, the first half with the model as blue, the rest as orange."""
    as_blue = (games + 1) // 2
    records = []
    if as_blue:
        records += _records(play_episodes(me, opponent, env_cfg, rewards, 1, as_blue, seed), True, jittered)
    if games - as_blue:
        records += _records(play_episodes(opponent, me, env_cfg, rewards, 1, games - as_blue, seed + 1), False,
                            jittered)
    return records


def play_model(model: Path, opponents: dict[str, str], env_cfg: EnvironmentConfig, rewards: Rewards,
               counts: GameCounts, seed: int) -> dict[str, dict[str, list[GameRecord]]]:
    """``{opponent label: {"stochastic": [...], "deterministic": [...]}}`` for ``model`` (a ``.zip`` with its
    normalizer beside it). ``opponents``: label -> a scripted bot's name or a saved model's path (played
    stochastically, as in the league)."""
    table = lookup_table(env_cfg)
    exact_cfg = env_cfg.model_copy(update={"random_start_share": 0.0})
    mutators = [m for m in env_cfg.state_mutators if m != "jitter"]
    jitter_cfg = exact_cfg.model_copy(update={"state_mutators": mutators + ["jitter"]})
    loaded = load_policy_driver(model)  # read once; both modes share its network and normalizer
    drivers = {deterministic: PolicyDriver(loaded.model, loaded.normalizer, deterministic)
               for deterministic in (True, False)}
    out: dict[str, dict[str, list[GameRecord]]] = {}
    for label, opponent in opponents.items():
        games: dict[str, list[GameRecord]] = {}
        for mode in ("stochastic", "deterministic"):
            deterministic = mode == "deterministic"
            me = drivers[deterministic]
            other = make_driver(opponent, table, seed, deterministic=False)
            if deterministic:
                games[mode] = (play_both_sides(me, other, exact_cfg, rewards, counts.exact, seed, False)
                               + play_both_sides(me, other, jitter_cfg, rewards, counts.jittered, seed + 2, True))
            else:
                games[mode] = play_both_sides(me, other, exact_cfg, rewards, counts.stochastic, seed + 4, False)
        out[label] = games
    return out
