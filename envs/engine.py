"""RocketSim transition engine with a faster step for repeated actions."""

from __future__ import annotations

from typing import Any, Dict

import numpy as np
import RocketSim as rsim
from rlgym.api import AgentID
from rlgym.rocket_league.api import GameState
from rlgym.rocket_league.sim import RocketSimEngine


class RepeatedActionEngine(RocketSimEngine):
    """rlgym's ``RocketSimEngine``, stepping a decision whose rows are all identical in one go.

    Why: ``RepeatAction(tick_skip)`` hands the engine ``tick_skip`` identical control rows per car, and the
    stock engine builds a ``CarControls`` for every car and calls ``arena.step(1)`` on every tick. With
    tick_skip 8 that Python loop costs more than the physics itself. When every car's rows are identical,
    this engine sets each car's controls once and steps the arena in at most two calls, keeping the stock
    order of events: with ``rlbot_delay`` (the default) one tick runs on the previous controls, then the new
    controls apply for the remaining ticks. The ticks simulated, the ball-touch callbacks (called by RocketSim
    on every tick) and the resulting state are the same; ``tests/test_selfplay.py`` compares both engines
    state for state. Any other action (rows that differ) goes through the stock loop.
    """

    def step(self, actions: Dict[AgentID, np.ndarray], shared_info: Dict[str, Any]) -> GameState:
        if not self._cars or len(actions) != len(self._cars):
            return super().step(actions, shared_info)
        rows = list(actions.values())
        if any(a.ndim != 2 or not (a == a[0]).all() for a in rows):
            return super().step(actions, shared_info)
        return self.step_controls({agent: action[0] for agent, action in actions.items()}, rows[0].shape[0])

    def step_controls(self, controls: Dict[AgentID, np.ndarray], ticks: int) -> GameState:
        """One decision: every car holds its 8 controls (``controls[agent]``, shape (8,), rlgym's order: throttle,
        steer, pitch, yaw, roll, jump, boost, handbrake) for ``ticks`` physics ticks. Same as :meth:`step` with
        ``ticks`` identical rows per car; the self-play worker calls it directly (``envs/batched.py``)."""
        if self._rlbot_delay:
            self._arena.step(1)
        for agent_id, row in controls.items():
            self._cars[agent_id].set_controls(rsim.CarControls(
                throttle=row[0], steer=row[1], pitch=row[2], yaw=row[3], roll=row[4],
                jump=bool(row[5]), boost=bool(row[6]), handbrake=bool(row[7])))
        remaining = ticks - 1 if self._rlbot_delay else ticks
        if remaining > 0:
            self._arena.step(remaining)
        self._tick_count += ticks
        return self._get_state()
