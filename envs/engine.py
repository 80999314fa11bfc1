"""RocketSim transition engine with a faster step for repeated actions."""

from __future__ import annotations

from typing import Any, Dict

import numpy as np
import RocketSim as rsim
from rlgym.api import AgentID
from rlgym.rocket_league.api import Car, GameState, PhysicsObject
from rlgym.rocket_league.common_values import GOAL_THRESHOLD
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
        ``ticks`` identical rows per car; the self-play worker calls it directly (``vecenv/batched.py``)."""
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

    def _get_state(self) -> GameState:
        """rlgym's ``RocketSimEngine._get_state`` (the same ``GameState``, field for field), with less Python per car.

        Why: after the batched obs and rewards (``vecenv/batched.py``), copying RocketSim's state into rlgym's
        objects cost as much as the physics. Here the ``Car`` / ``PhysicsObject`` slots are filled directly
        instead of through their ``__init__`` and property setters, and the arena's boost pads are listed once.
        ``tests/test_selfplay.py`` compares every field with the stock method.
        """
        arena = self._arena
        gs = GameState()
        gs.tick_count = self._tick_count
        gs.config = self._game_config
        gs.ball = ball = _physics(arena.ball.get_state())
        gs.goal_scored = abs(ball.position[1]) > GOAL_THRESHOLD
        cars = {}
        agent_ids, hitboxes, touches = self._agent_ids, self._hitboxes, self._touches
        for agent_id, rsim_car in self._cars.items():
            cs = rsim_car.get_state()
            car_id = rsim_car.id
            car = Car.__new__(Car)
            car.team_num = rsim_car.team
            car.hitbox_type = hitboxes[car_id]
            car.ball_touches = touches[car_id]
            touches[car_id] = 0
            car.bump_victim_id = agent_ids[cs.car_contact_id] if cs.car_contact_cooldown_timer > 0 else None
            car.demo_respawn_timer = cs.demo_respawn_timer
            car.wheels_with_contact = cs.wheels_with_contact
            car.supersonic_time = cs.supersonic_time
            car.boost_amount = cs.boost
            car.boost_active_time = cs.time_spent_boosting
            car.handbrake = cs.handbrake_val
            car.is_jumping = cs.is_jumping
            car.has_jumped = cs.has_jumped
            car.is_holding_jump = cs.last_controls.jump
            car.jump_time = cs.jump_time
            car.has_flipped = cs.has_flipped
            car.has_double_jumped = cs.has_double_jumped
            car.air_time_since_jump = cs.air_time_since_jump
            car.flip_time = cs.flip_time
            car.flip_torque = cs.flip_rel_torque.as_numpy()
            car.is_autoflipping = cs.is_auto_flipping
            car.autoflip_timer = cs.auto_flip_timer
            car.autoflip_direction = cs.auto_flip_torque_scale
            car.physics = _physics(cs)
            car._inverted_physics = None
            cars[agent_id] = car
        gs.cars = cars
        cache = getattr(self, "_pad_cache", None)
        if cache is None or cache[0] is not arena:
            cache = self._pad_cache = (arena, arena.get_boost_pads())
        pads = cache[1]
        gs.boost_pad_timers = np.fromiter((pad.get_state().cooldown for pad in pads), dtype=np.float32,
                                          count=len(pads))
        self._state = gs
        return gs


def _physics(state: Any) -> PhysicsObject:
    """A ``PhysicsObject`` from a RocketSim ball or car state, as ``RocketSimEngine._get_state`` builds it."""
    physics = PhysicsObject.__new__(PhysicsObject)
    physics.position = state.pos.as_numpy()
    physics.linear_velocity = state.vel.as_numpy()
    physics.angular_velocity = state.ang_vel.as_numpy()
    physics._rotation_mtx = np.ascontiguousarray(state.rot_mat.as_numpy().reshape(3, 3).transpose())
    physics._quaternion = None
    physics._euler_angles = None
    return physics
