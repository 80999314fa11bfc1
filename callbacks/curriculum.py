"""The curriculum during training: feed it the league's ended games, log its gate, advance the stage."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stable_baselines3.common.callbacks import BaseCallback
from tqdm import tqdm

from curriculum.curriculum import Curriculum

if TYPE_CHECKING:
    from league.league import League
    from training.stages import StageSwitch


class CurriculumCallback(BaseCallback):
    """After every rollout: the league games that ended during it go to the curriculum, whose gate is checked;
    when it holds, ``switch`` (:class:`training.stages.StageSwitch`) puts the run into the next stage before the
    update. Every stage change is printed and logged.

    TensorBoard: ``curriculum/stage`` (0-based index), ``curriculum/gate_touch`` / ``gate_goal`` (rates over the
    gate's window), ``curriculum/gate_games`` (games in the window), ``curriculum/gate_held`` (checks in a row the
    gate held), ``curriculum/mix/<past|scripted|self>`` (the league's kind shares) and
    ``curriculum/mix/scripted_<bot>`` (the scripted bots' weights, normalized), ``curriculum/league_car_share``
    (share of the learning cars playing league matches).

    :param league: the run's league (its ``finished`` games are read and cleared).
    :param switch: puts the run into the stage (``switch(model)``) and tells ``league_car_share()``.
    """

    def __init__(self, curriculum: Curriculum, league: League, switch: StageSwitch):
        super().__init__()
        self.curriculum, self.league, self.switch = curriculum, league, switch

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        cur = self.curriculum
        while self.league.finished:
            opponent, touched, outcome = self.league.finished.popleft()
            cur.record(opponent, touched, outcome)
        reading_before = cur.reading()
        if cur.check():
            previous = cur.cfg.stages[cur.index - 1]
            # check() advanced through the previous stage's gate, read just before
            assert previous.advance is not None and reading_before is not None
            self.switch.switch(self.model)
            tqdm.write(f"Curriculum: stage '{previous.name}' -> '{cur.stage.name}' at {self.num_timesteps:,} steps "
                       f"(gate against {previous.advance.opponent}: touch {reading_before.touch:.0%}, goal "
                       f"{reading_before.goal:.0%} over {reading_before.games} games)")
        self._log()

    def _log(self) -> None:
        cur, record = self.curriculum, self.logger.record
        record("curriculum/stage", cur.index)
        reading = cur.reading()
        if reading is not None:
            record("curriculum/gate_touch", reading.touch)
            record("curriculum/gate_goal", reading.goal)
            record("curriculum/gate_games", reading.games)
            record("curriculum/gate_held", reading.held)
        shares = self.league.kind_p
        for kind, share in zip(("past", "scripted", "self"), shares):
            record(f"curriculum/mix/{kind}", float(share))
        total = sum(self.league.scripted_weights.values()) or 1.0
        for name, weight in self.league.scripted_weights.items():
            record(f"curriculum/mix/scripted_{name}", weight / total)
        record("curriculum/league_car_share", self.switch.league_car_share())
