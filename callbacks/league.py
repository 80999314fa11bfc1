"""League bookkeeping during training: snapshots into the pool, ratings and win rates in TensorBoard, the ladder."""

from __future__ import annotations

import sys

from stable_baselines3.common.callbacks import BaseCallback
from tqdm import tqdm

from league.league import League


class LeagueCallback(BaseCallback):
    """Every ``league.snapshot_every`` steps the current policy joins the pool; after each rollout the league's
    numbers go to TensorBoard and ``ladder.json`` is rewritten (so an interrupted run keeps its ratings).

    TensorBoard: ``league/rating`` (the current policy's mu - 3 sigma), ``league/mu``, ``league/sigma``,
    ``league/pool_size``, ``league/games`` (rated or not, since the run started this session), and
    ``league/win_rate/<kind>`` / ``league/draw_rate/<kind>`` over the last 100 games per opponent kind (past,
    scripted, self) and per scripted bot (idle, random, chaser).

    :param snapshot_every: environment steps between two snapshots.
    """

    def __init__(self, league: League, snapshot_every: int):
        super().__init__()
        self.league = league
        self.snapshot_every = snapshot_every
        self.next_snapshot = snapshot_every

    def _on_training_start(self) -> None:
        self.next_snapshot = (self.num_timesteps // self.snapshot_every + 1) * self.snapshot_every

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.next_snapshot:
            self.next_snapshot += self.snapshot_every
            try:
                name = self.league.snapshot()
            except OSError as exc:  # disk full: the pool stays as it is, training goes on
                tqdm.write(f"Warning: league snapshot not saved ({exc.strerror or exc}); the pool keeps its "
                           f"{len(self.league.pool)} past versions and training goes on.", file=sys.stderr)
                return True
            tqdm.write(f"League: {name} joined the pool ({len(self.league.pool)} past versions, rating "
                       f"{self.league.ratings.current.ordinal:.1f})")
        return True

    def _on_rollout_end(self) -> None:
        current = self.league.ratings.current
        self.logger.record("league/rating", current.ordinal)
        self.logger.record("league/mu", current.mu)
        self.logger.record("league/sigma", current.sigma)
        self.logger.record("league/pool_size", len(self.league.pool))
        self.logger.record("league/games", self.league.games)
        for key, (wins, draws) in self.league.win_rates().items():
            self.logger.record(f"league/win_rate/{key}", wins)
            self.logger.record(f"league/draw_rate/{key}", draws)
        self.league.save()
