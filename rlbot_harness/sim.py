"""A RocketSim engine that also emits the RLBot packet of every tick, for exported bots playing in the simulator.

Timing, the same as rlgym's ``RocketSimEngine`` with its default RLBot delay (one tick on the previous controls at
the start of every decision). In RLBot terms: the controls a bot sends in reply to the packet of frame F drive
the tick from F to F+1; a kickoff is preceded by ``COUNTDOWN_TICKS`` countdown packets with the cars frozen, and
its first tick runs on neutral controls (RocketSimEngine's no-op first tick), so it has no packet of its own.
With this numbering an exported bot (``StepOffset(-1, ACTION_END)``) decides on exactly the states the training
env observed: ``tests/test_rlbot_export.py`` checks observations and actions against training.
"""

from __future__ import annotations

from typing import Any, Dict

import numpy as np
from rlbot import flat
from rlgym.api import AgentID
from rlgym.rocket_league.api import GameState
from rlgym.rocket_league.sim import RocketSimEngine

from rlbot_harness import packets


class PacketEngine(RocketSimEngine):
    """rlgym's ``RocketSimEngine`` (per-tick loop) handing every tick's ``flat.GamePacket`` to subscribers.

    Players are numbered in the order of the game state's cars (RLBot player index); player ids are index + 1.
    """

    def __init__(self) -> None:
        super().__init__(rlbot_delay=True)
        self.frame = 0
        self._queues: list[list[flat.GamePacket]] = []
        self._kickoff_tick_pending = False
        self._episodes = 0

    def subscribe(self) -> list[flat.GamePacket]:
        """A list every new packet is appended to (the subscriber empties it as it reads)."""
        queue: list[flat.GamePacket] = []
        self._queues.append(queue)
        return queue

    # --- what the core tells a bot at start -------------------------------------------------------------------
    def agent_order(self) -> list[AgentID]:
        return list(self._cars)

    def field_info(self) -> flat.FieldInfo:
        return packets.field_info(self._arena)

    def match_configuration(self, agent_prefix: str = "trainer/exported") -> flat.MatchConfiguration:
        agents = self.agent_order()
        return packets.match_configuration([str(a) for a in agents], [self._cars[a].team for a in agents],
                                           [i + 1 for i in range(len(agents))], [agent_prefix] * len(agents))

    def controllable(self, agent: AgentID) -> flat.ControllableTeamInfo:
        index = self.agent_order().index(agent)
        return packets.controllable(self._cars[agent].team, index, index + 1)

    # --- engine -----------------------------------------------------------------------------------------------
    def _emit(self, phase: flat.MatchPhase) -> None:
        self.frame += 1
        agents = self.agent_order()
        packet = packets.game_packet(self._arena, [self._cars[a] for a in agents], [i + 1 for i in range(len(agents))],
                                     [str(a) for a in agents], self.frame, phase)
        for queue in self._queues:
            queue.append(packet)

    def set_state(self, desired_state: GameState, shared_info: Dict[str, Any]) -> GameState:
        state = super().set_state(desired_state, shared_info)
        if self._episodes:  # a new kickoff after a goal or a time-out: the game shows a replay, then a countdown
            self._emit(flat.MatchPhase.Replay)
        self._episodes += 1
        for _ in range(packets.COUNTDOWN_TICKS):
            self._emit(flat.MatchPhase.Countdown)
        self._kickoff_tick_pending = True
        return state

    def step(self, actions: Dict[AgentID, np.ndarray], shared_info: Dict[str, Any]) -> GameState:
        if len(actions) != len(self._cars):
            raise KeyError(f"Expected actions for {len(self._cars)} agents but received {len(actions)}.")
        rows = {agent: np.asarray(action) for agent, action in actions.items()}
        for tick in range(next(iter(rows.values())).shape[0]):
            self._arena.step(1)  # this tick runs on the controls set before it (RLBot delay)
            if self._kickoff_tick_pending:
                self._kickoff_tick_pending = False
            else:
                ball_still = not np.any(self._arena.ball.get_state().vel.as_numpy())
                self._emit(flat.MatchPhase.Kickoff if ball_still else flat.MatchPhase.Active)
            for agent, action in rows.items():
                packets.apply_controls(self._cars[agent], _controller(action[tick]))
            self._tick_count += 1
        return self._get_state()


def _controller(row: np.ndarray) -> flat.ControllerState:
    return flat.ControllerState(throttle=float(row[0]), steer=float(row[1]), pitch=float(row[2]), yaw=float(row[3]),
                                roll=float(row[4]), jump=bool(row[5]), boost=bool(row[6]), handbrake=bool(row[7]))
