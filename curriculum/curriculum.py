"""Which stage a run plays, read from the league games of training itself.

Each league game that ends reaches :meth:`Curriculum.record` (opponent, whether the learning team touched the
ball, the result). The gate of the current stage averages the last ``window`` games against its opponent played
*in this stage*; when the gate holds at ``hold`` checks in a row (one check per rollout) with a full window, the
run advances. Stages only go forward: a run never moves back because of a bad stretch (the hysteresis is the full
window plus the ``hold`` checks before advancing, and none at all backwards).
"""

from __future__ import annotations

import warnings
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Optional

from config.schema import CurriculumConfig, Stage



@dataclass(frozen=True)
class GateReading:
    """The current stage's gate over its window: touch and goal (win) rates and how many games it holds."""

    touch: float
    goal: float
    games: int
    held: int


class Curriculum:
    """The stage state machine of one run (module docstring).

    :param section: the config's ``curriculum`` section.
    :param start: index of the stage to start in (a resumed run's saved stage, or the pinned one).
    """

    def __init__(self, section: CurriculumConfig, start: int = 0):
        self.cfg = section
        self.index = start
        self.pinned = self.cfg.pin is not None
        self._windows: dict[str, deque] = defaultdict(lambda: deque(maxlen=self.cfg.window))
        self._held = 0

    @classmethod
    def resume(cls, section: CurriculumConfig, saved: Optional[str]) -> "Curriculum":
        """The curriculum of a run: the pinned stage, else the saved stage's (``saved``: the name stored in the
        model file), else the first, with a warning when the saved name is missing or unknown."""
        cfg = section
        names = [stage.name for stage in cfg.stages]
        if cfg.pin is not None:
            return cls(section, names.index(cfg.pin))
        if saved is None:
            return cls(section, 0)
        if saved not in names:
            warnings.warn(f"curriculum: the model was saved in stage '{saved}', which curriculum.stages does not "
                          f"have ({', '.join(names)}); starting at the first stage '{names[0]}'. Pin a stage with "
                          "--set curriculum.pin=NAME to start elsewhere.", RuntimeWarning, stacklevel=2)
            return cls(section, 0)
        return cls(section, names.index(saved))

    @property
    def stage(self) -> Stage:
        return self.cfg.stages[self.index]

    @property
    def final(self) -> bool:
        return self.index == len(self.cfg.stages) - 1

    def record(self, opponent: str, touched: bool, outcome: int) -> None:
        """A league game of this stage ended. ``opponent``: a scripted bot's name or ``past``; ``outcome``: +1 the
        learning team scored, 0 no goal, -1 it conceded."""
        self._windows[opponent].append((bool(touched), outcome > 0))

    def reading(self) -> Optional[GateReading]:
        """The gate's values now (None: this stage has no gate)."""
        gate = self.stage.advance
        if gate is None:
            return None
        games = self._windows[gate.opponent]
        if not games:
            return GateReading(0.0, 0.0, 0, self._held)
        return GateReading(sum(t for t, _ in games) / len(games), sum(g for _, g in games) / len(games), len(games),
                           self._held)

    def check(self) -> bool:
        """One check (after each rollout): True when the run advanced to the next stage."""
        gate, reading = self.stage.advance, self.reading()
        if self.pinned or gate is None or reading is None:
            return False
        if reading.games >= self.cfg.window and reading.touch >= gate.touch and reading.goal >= gate.goal:
            self._held += 1
        else:
            self._held = 0
        if self._held < self.cfg.hold:
            return False
        self.index += 1
        self._held = 0
        self._windows.clear()
        return True
