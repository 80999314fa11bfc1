"""RLBot v5 messages built from a RocketSim arena: what the RLBot core would send a bot about this match.

Why this module: neither RLBot nor the rlgym bridge can produce RLBot packets without the game. The exported bot
is tested offline (``tests/test_rlbot_export.py``) and played in the simulator (``evaluate.py --model bots/X``,
``export_rlbot.py --check``) by feeding it the ``rlbot_flatbuffers`` objects built here from RocketSim's state.
Units are the game's: unreal units (uu), uu/s, radians, seconds; boost 0-100.

Field meanings follow the ``rlbot_flatbuffers`` 0.18 docstrings; where the game reports something RocketSim
stores differently the conversion is here:
- boost pads: the game reports seconds since pickup (0 while active), RocketSim the cooldown left;
- dodge timeout: seconds left to dodge or double jump after a jump (-1 on the ground or once expired);
- air state: one of OnGround, Jumping, DoubleJumping, Dodging, InAir, from RocketSim's flags.
"""

from __future__ import annotations

from typing import Iterable, Optional, Sequence

import RocketSim as rsim
from rlbot import flat

TICKS_PER_SECOND = 120
#: Seconds a pad stays inactive after a pickup (Rocket League: 10 s big pads, 4 s small ones).
PAD_COOLDOWN_S = {True: 10.0, False: 4.0}
#: Seconds after the first jump during which a dodge or double jump is possible.
DODGE_WINDOW_S = 1.25
BALL_DIAMETER = 182.5
GRAVITY_Z = -650.0
#: Octane hitbox as the game reports it in ``PlayerInfo`` (RocketSim's own hitbox numbers differ slightly; the
#: rlgym-compat bridge recognizes the car type from these). Training uses the Octane.
OCTANE_HITBOX = flat.BoxShape(length=118.00738, width=84.19941, height=36.159073)
OCTANE_HITBOX_OFFSET = flat.Vector3(13.87566, 0.0, 20.754988)
#: Ticks of countdown before a kickoff. rlgym-rlbot decides the first action after 440 countdown ticks; the game's
#: countdown lasts at least 479.
COUNTDOWN_TICKS = 480


def _vec(v: rsim.Vec) -> flat.Vector3:
    return flat.Vector3(v.x, v.y, v.z)


def _physics(state) -> flat.Physics:
    angle = state.rot_mat.as_angle()
    return flat.Physics(location=_vec(state.pos), rotation=flat.Rotator(angle.pitch, angle.yaw, angle.roll),
                        velocity=_vec(state.vel), angular_velocity=_vec(state.ang_vel))


def _controls(controls: rsim.CarControls) -> flat.ControllerState:
    return flat.ControllerState(throttle=controls.throttle, steer=controls.steer, pitch=controls.pitch,
                                yaw=controls.yaw, roll=controls.roll, jump=controls.jump, boost=controls.boost,
                                handbrake=controls.handbrake)


def _on_ground(state) -> bool:
    """rlgym's definition (``Car.on_ground``): at least 3 wheels touch a surface."""
    return sum(state.wheels_with_contact) >= 3


def _air_state(state) -> flat.AirState:
    """The game's air state. Jumping starts when jump is pressed, while the wheels still touch the ground for a
    few ticks (rlgym-compat relies on this to estimate ``on_ground`` during a jump)."""
    if state.is_jumping:
        return flat.AirState.Jumping
    if _on_ground(state):
        return flat.AirState.OnGround
    if state.is_flipping:
        return flat.AirState.Dodging
    if state.has_double_jumped:
        return flat.AirState.DoubleJumping
    return flat.AirState.InAir


def _dodge_timeout(state) -> float:
    if _on_ground(state) or not state.has_jumped or state.air_time_since_jump >= DODGE_WINDOW_S:
        return -1.0
    return DODGE_WINDOW_S - state.air_time_since_jump


def boost_pads_sorted(arena: rsim.Arena) -> list:
    """The arena's pads in the game's order: by y, then x (RocketSim keeps the same order; asserted in tests)."""
    return sorted(arena.get_boost_pads(), key=lambda pad: (pad.get_pos().y, pad.get_pos().x))


def field_info(arena: rsim.Arena) -> flat.FieldInfo:
    """Static field data: boost pad locations and sizes (goals are not needed by the rlgym bridge)."""
    return flat.FieldInfo(boost_pads=[flat.BoostPad(location=_vec(pad.get_pos()), is_full_boost=pad.is_big)
                                      for pad in boost_pads_sorted(arena)])


def player_info(car: rsim.Car, player_id: int, name: str) -> flat.PlayerInfo:
    """One car as the game reports it. ``player_id`` is RLBot's stable id of the player (any int, unique)."""
    s = car.get_state()
    touch = None
    if s.ball_hit_info.is_valid:
        touch = flat.Touch(game_seconds=s.ball_hit_info.tick_count_when_hit / TICKS_PER_SECOND,
                           location=_vec(s.ball_hit_info.ball_pos))
    return flat.PlayerInfo(
        physics=_physics(s), hitbox=OCTANE_HITBOX, hitbox_offset=OCTANE_HITBOX_OFFSET, latest_touch=touch,
        air_state=_air_state(s), dodge_timeout=_dodge_timeout(s),
        demolished_timeout=s.demo_respawn_timer if s.is_demoed else -1.0, is_supersonic=s.is_supersonic,
        is_bot=True, name=name, team=car.team, boost=s.boost, player_id=player_id,
        last_input=_controls(s.last_controls), has_jumped=s.has_jumped, has_double_jumped=s.has_double_jumped,
        has_dodged=s.has_flipped, dodge_elapsed=s.flip_time if s.has_flipped else 0.0,
        # rlgym-compat reads the flip torque back as (-dodge_dir.y, dodge_dir.x)
        dodge_dir=flat.Vector2(s.flip_rel_torque.y, -s.flip_rel_torque.x))


def pad_states(arena: rsim.Arena) -> list[flat.BoostPadState]:
    """Pad states in the game's convention: seconds since pickup, 0 while active."""
    states = []
    for pad in boost_pads_sorted(arena):
        st = pad.get_state()
        since = 0.0 if st.is_active else max(0.0, PAD_COOLDOWN_S[pad.is_big] - st.cooldown)
        states.append(flat.BoostPadState(is_active=st.is_active, timer=since))
    return states


def game_packet(arena: rsim.Arena, cars: Sequence[rsim.Car], player_ids: Sequence[int], names: Sequence[str],
                frame: int, phase: flat.MatchPhase, scores: tuple[int, int] = (0, 0),
                remaining_s: Optional[float] = None) -> flat.GamePacket:
    """The packet of frame ``frame``: the players in the order given (RLBot's player index = position).
    ``remaining_s``: seconds left on the game clock (None: unlimited time)."""
    ball = arena.ball.get_state()
    return flat.GamePacket(
        players=[player_info(car, pid, name) for car, pid, name in zip(cars, player_ids, names)],
        boost_pads=pad_states(arena),
        balls=[flat.BallInfo(physics=_physics(ball), shape=flat.SphereShape(BALL_DIAMETER))],
        match_info=flat.MatchInfo(seconds_elapsed=frame / TICKS_PER_SECOND,
                                  game_time_remaining=300.0 if remaining_s is None else max(0.0, remaining_s),
                                  is_unlimited_time=remaining_s is None, match_phase=phase, world_gravity_z=GRAVITY_Z,
                                  game_speed=1.0, frame_num=frame),
        teams=[flat.TeamInfo(team_index=0, score=scores[0]), flat.TeamInfo(team_index=1, score=scores[1])],
    )


def match_configuration(names: Sequence[str], teams: Sequence[int], player_ids: Sequence[int],
                        agent_ids: Iterable[str]) -> flat.MatchConfiguration:
    """A soccar match with these custom bots, as the core sends it to every bot."""
    return flat.MatchConfiguration(
        player_configurations=[
            flat.PlayerConfiguration(variety=flat.CustomBot(name=name, agent_id=agent), team=team, player_id=pid)
            for name, team, pid, agent in zip(names, teams, player_ids, agent_ids)],
        game_mode=flat.GameMode.Soccar, mutators=flat.MutatorSettings())


def controllable(team: int, index: int, player_id: int) -> flat.ControllableTeamInfo:
    """Tells a bot process which car it drives: its team, player index and player id."""
    return flat.ControllableTeamInfo(team=team, controllables=[flat.ControllableInfo(index=index,
                                                                                     identifier=player_id)])


def apply_controls(car: rsim.Car, controls: flat.ControllerState) -> None:
    """Set a RocketSim car's controls from a bot's ``ControllerState``."""
    car.set_controls(rsim.CarControls(throttle=controls.throttle, steer=controls.steer, pitch=controls.pitch,
                                      yaw=controls.yaw, roll=controls.roll, jump=controls.jump,
                                      boost=controls.boost, handbrake=controls.handbrake))
