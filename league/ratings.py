"""Skill ratings of the league: the current policy, its past versions and the scripted anchors (openskill).

Ratings use openskill's Plackett-Luce model (``ordinal() = mu - 3 sigma``, the conservative skill shown in
TensorBoard and the ladder). The scripted opponents are **anchors**: their ratings are fixed constants, never
updated, so the scale means the same in every run (a bot at ordinal 20 beats the ball-chaser about as often in
any run). Goals decide a game: a win, a loss, or a draw when the episode ended without a goal. Only decided games
move the ratings; draws are counted in the records but rate nobody. Why: early in a run most league games end
without a goal, and openskill rates a draw as "equally strong", so a bot that beat the idle car in 20% of its games
and drew the rest was pulled down to idle's rating, the even-games pick then saw every opponent as even, and the
curriculum-free league never moved on to harder ones (``tests/test_league.py`` measures both).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from openskill.models import PlackettLuce

#: Fixed (mu, sigma) of the scripted anchors. idle < random < chaser, one openskill "default sigma" apart.
ANCHORS = {"idle": (0.0, 1.0), "random": (8.0, 1.0), "chaser": (25.0, 1.0)}
#: Where the current policy starts: a fresh policy acts almost at random.
START_MU, START_SIGMA = 8.0, 25.0 / 3
CURRENT = "current"


@dataclass
class Record:
    """One ladder entry. ``kind``: "current", "past" or "scripted"; ``steps``: training steps of a past version."""

    name: str
    kind: str
    mu: float
    sigma: float
    steps: Optional[int] = None
    wins: int = 0
    draws: int = 0
    losses: int = 0

    @property
    def ordinal(self) -> float:
        return self.mu - 3 * self.sigma

    @property
    def games(self) -> int:
        return self.wins + self.draws + self.losses


@dataclass
class Ratings:
    """Every rated player by name: ``current``, the past versions (``past_<steps>``) and the anchors."""

    records: dict[str, Record] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.model = PlackettLuce()
        self.records.setdefault(CURRENT, Record(CURRENT, "current", START_MU, START_SIGMA))
        for name, (mu, sigma) in ANCHORS.items():
            self.records.setdefault(name, Record(name, "scripted", mu, sigma))

    @property
    def current(self) -> Record:
        return self.records[CURRENT]

    def add_past(self, name: str, steps: int) -> Record:
        """A snapshot of the current policy: it starts with the current policy's rating."""
        current = self.current
        self.records[name] = Record(name, "past", current.mu, current.sigma, steps)
        return self.records[name]

    def remove(self, name: str) -> None:
        self.records.pop(name, None)

    def _rating(self, record: Record):
        return self.model.rating(mu=record.mu, sigma=record.sigma, name=record.name)

    def win_probability(self, opponent: str) -> float:
        """Probability that the current policy beats ``opponent`` (openskill ``predict_win``)."""
        teams = [[self._rating(self.current)], [self._rating(self.records[opponent])]]
        return float(self.model.predict_win(teams)[0])

    def record_game(self, opponent: str, outcome: int) -> None:
        """The current policy played ``opponent``: +1 won, 0 drew, -1 lost. Anchors keep their rating; a draw is
        only counted (module docstring)."""
        me, them = self.current, self.records[opponent]
        if outcome != 0:
            ranks: list[float] = [0, 1] if outcome > 0 else [1, 0]
            [[mine], [theirs]] = self.model.rate([[self._rating(me)], [self._rating(them)]], ranks=ranks)
            me.mu, me.sigma = mine.mu, mine.sigma
            if them.kind != "scripted":
                them.mu, them.sigma = theirs.mu, theirs.sigma
        for record, result in ((me, outcome), (them, -outcome)):
            record.wins += result > 0
            record.draws += result == 0
            record.losses += result < 0

    def ladder(self) -> list[Record]:
        """Every record, best conservative skill (ordinal) first."""
        return sorted(self.records.values(), key=lambda r: r.ordinal, reverse=True)

    def to_json(self) -> list[dict]:
        return [{"name": r.name, "kind": r.kind, "mu": r.mu, "sigma": r.sigma, "ordinal": r.ordinal, "steps": r.steps,
                 "wins": r.wins, "draws": r.draws, "losses": r.losses} for r in self.ladder()]

    @classmethod
    def from_json(cls, rows: list[dict]) -> "Ratings":
        records = {row["name"]: Record(row["name"], row["kind"], row["mu"], row["sigma"], row.get("steps"),
                                       row.get("wins", 0), row.get("draws", 0), row.get("losses", 0))
                   for row in rows}
        for name, (mu, sigma) in ANCHORS.items():  # anchors are constants, whatever the file says
            if name in records:
                records[name].mu, records[name].sigma = mu, sigma
        return cls(records)
