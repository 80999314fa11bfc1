"""A stand-in for the RLBot v5 core: runs an exported bot as RLBot would and plays it in RocketSim over the socket.

Why: the RLBot core and Rocket League are not available where the trainer is tested. This is the part of the core
a bot talks to, and nothing more: it starts the bot's ``run_command`` from its ``bot.toml`` (read with RLBot's own
``rlbot.config``) as a real process, accepts its TCP connection on 127.0.0.1 (RLBot v5 framing: a 2-byte
big-endian length, then a flatbuffer: ``InterfacePacket`` from the bot, ``CorePacket`` to it), sends the match
configuration, field info and the car it controls, waits for ``InitComplete``, then runs lock-step: one
``GamePacket`` per tick, the bot's ``PlayerInput`` reply drives that car for the next tick. Timing is the one of
:mod:`rlbot_export.sim` (the trainer's engine). Other messages (rendering, match comms) are read and ignored.

    python -m rlbot_export.core --bot bots/MyBot --seconds 10       # prints when the bot first touches the ball
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import RocketSim as rsim
from rlbot import flat
from rlbot.config import load_player_config

from rlbot_export import packets

CONNECT_TIMEOUT_S = 120.0
#: Longest wait for one reply of the bot; a bot slower than this is reported as hung.
REPLY_TIMEOUT_S = 30.0


@dataclass
class CoreReport:
    """What happened: ``first_touch_s`` game seconds after the kickoff until the bot's car touched the ball
    (None: never), its touches, the closest it came to the ball (uu, centre to centre) and the goals."""

    seconds: float
    first_touch_s: Optional[float]
    touches: int
    min_ball_distance: float
    blue_goals: int
    orange_goals: int
    bot_exit_code: Optional[int]


def _init_rocketsim() -> None:
    """Load the soccar meshes shipped in rlgym-rocket-league (as its RocketSimEngine does)."""
    from rlgym.rocket_league.sim import rocketsim_engine

    try:
        rsim.init(str(Path(rocketsim_engine.__file__).parent / "collision_meshes"))
    except Exception:  # already initialized in this process
        pass


class BotConnection:
    """One bot's socket, with RLBot v5's framing."""

    def __init__(self, conn: socket.socket):
        self.conn = conn
        self.conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conn.settimeout(REPLY_TIMEOUT_S)

    def _read_exact(self, n: int) -> bytes:
        data = bytearray()
        while len(data) < n:
            chunk = self.conn.recv(n - len(data))
            if not chunk:
                raise ConnectionError("the bot closed the connection")
            data += chunk
        return bytes(data)

    def receive(self):
        size = int.from_bytes(self._read_exact(2), "big")
        return flat.InterfacePacket.unpack(self._read_exact(size)).message

    def send(self, message) -> None:
        data = flat.CorePacket(message).pack()
        self.conn.sendall(len(data).to_bytes(2, "big") + data)

    def receive_until(self, kind: type):
        """Read messages until one of ``kind`` arrives (others, e.g. rendering, are ignored)."""
        while True:
            message = self.receive()
            if isinstance(message, kind):
                return message


def run_bot_match(bot_folder: Path, seconds: float = 10.0, seed: int = 0, team: int = 0,
                  log_path: Optional[Path] = None) -> CoreReport:
    """Start the bot in ``bot_folder`` as RLBot v5 would and play ``seconds`` of a kickoff against an idle car.

    :param team: the bot's team (0 blue, 1 orange); the idle car takes the other side.
    :param log_path: where the bot process's output goes (default: discarded).
    :raises ConnectionError, TimeoutError: the bot did not connect, answer or start.
    """
    player = load_player_config(Path(bot_folder).resolve() / "bot.toml", team)
    bot: flat.CustomBot = player.variety
    _init_rocketsim()
    arena = rsim.Arena(rsim.GameMode.SOCCAR)
    car = arena.add_car(team)  # Octane, as in training
    other = arena.add_car(1 - team)
    arena.reset_kickoff(seed)
    cars = [car, other] if team == 0 else [other, car]
    index = cars.index(car)
    ids = [1, 2]
    names = [bot.name if c is car else "idle" for c in cars]

    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(CONNECT_TIMEOUT_S)
    port = server.getsockname()[1]
    env = dict(os.environ, RLBOT_AGENT_ID=bot.agent_id, RLBOT_SERVER_PORT=str(port), RLBOT_SERVER_IP="127.0.0.1")
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL
    process = subprocess.Popen(shlex.split(bot.run_command), cwd=bot.root_dir, env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    exit_code = None
    try:
        try:
            conn, _ = server.accept()
        except socket.timeout:
            raise TimeoutError(f"the bot ({bot.run_command} in {bot.root_dir}) did not connect within "
                               f"{CONNECT_TIMEOUT_S:.0f} s (exit code {process.poll()})") from None
        link = BotConnection(conn)
        settings = link.receive_until(flat.ConnectionSettings)
        if settings.agent_id != bot.agent_id:
            raise ConnectionError(f"the bot announced agent id '{settings.agent_id}', bot.toml says '{bot.agent_id}'")
        link.send(packets.match_configuration(names, [c.team for c in cars], ids,
                                              [bot.agent_id if c is car else "idle" for c in cars]))
        link.send(packets.field_info(arena))
        link.send(packets.controllable(team, index, ids[index]))
        link.receive_until(flat.InitComplete)
        report = _play(arena, cars, car, ids, names, link, seconds)
        link.send(flat.DisconnectSignal())
        try:
            exit_code = process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        report.bot_exit_code = exit_code
        return report
    finally:
        server.close()
        if process.poll() is None:
            process.kill()
            process.wait()
        if log_path:
            log.close()


def _play(arena: rsim.Arena, cars: list, car: rsim.Car, ids: list[int], names: list[str], link: BotConnection,
          seconds: float) -> CoreReport:
    frame = 0
    touch_ticks: list[int] = []

    def on_touch(arena: rsim.Arena, car: rsim.Car, data: object) -> None:  # RocketSim passes keywords
        if car.id == bot_car_id:
            touch_ticks.append(arena.tick_count)

    bot_car_id = car.id
    arena.set_ball_touch_callback(on_touch)

    def exchange(phase: flat.MatchPhase) -> flat.ControllerState:
        nonlocal frame
        frame += 1
        link.send(packets.game_packet(arena, cars, ids, names, frame, phase, (arena.blue_score, arena.orange_score)))
        return link.receive_until(flat.PlayerInput).controller_state

    for _ in range(packets.COUNTDOWN_TICKS - 1):
        exchange(flat.MatchPhase.Countdown)  # cars frozen: replies ignored
    reply = exchange(flat.MatchPhase.Countdown)  # the last one drives the second tick of the kickoff
    start_tick = arena.tick_count
    arena.step(1)  # the kickoff's first tick runs on neutral controls, as in training (RLBot delay)
    min_dist = float("inf")
    for _ in range(int(seconds * packets.TICKS_PER_SECOND) - 1):
        packets.apply_controls(car, reply)
        arena.step(1)
        offset = car.get_state().pos.as_numpy() - arena.ball.get_state().pos.as_numpy()
        min_dist = min(min_dist, float(np.linalg.norm(offset)))
        ball_still = not np.any(arena.ball.get_state().vel.as_numpy())
        reply = exchange(flat.MatchPhase.Kickoff if ball_still else flat.MatchPhase.Active)
    first_touch = (touch_ticks[0] - start_tick) / packets.TICKS_PER_SECOND if touch_ticks else None
    return CoreReport(seconds, first_touch, len(touch_ticks), min_dist, arena.blue_score, arena.orange_score, None)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Run an exported bot's process against a stand-in RLBot v5 core "
                                                 "(RocketSim, lock-step) from a kickoff, against an idle car.")
    parser.add_argument("--bot", required=True, help="exported bot folder (holds bot.toml)")
    parser.add_argument("--seconds", type=float, default=10.0, help="game seconds to play (default: 10)")
    parser.add_argument("--seed", type=int, default=0, help="kickoff seed (RocketSim reset_kickoff)")
    parser.add_argument("--team", choices=("blue", "orange"), default="blue")
    parser.add_argument("--log", help="write the bot process's output to this file")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    report = run_bot_match(Path(args.bot), args.seconds, args.seed, 0 if args.team == "blue" else 1,
                           Path(args.log) if args.log else None)
    touch = "never" if report.first_touch_s is None else f"after {report.first_touch_s:.2f} s"
    print(f"{args.bot}: first touch {touch}, {report.touches} touch(es), closest {report.min_ball_distance:.0f} uu, "
          f"goals {report.blue_goals}-{report.orange_goals}, bot exit code {report.bot_exit_code} "
          f"({time.perf_counter() - started:.1f} s wall)")
    print(json.dumps(asdict(report)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
