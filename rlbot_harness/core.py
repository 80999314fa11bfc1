"""A real-time stand-in for the RLBot v5 core: runs exported bots' processes and plays them in RocketSim at 120 Hz.

Why: the RLBot core (RLBotServer) needs Rocket League and has no headless mode, so it cannot run where the trainer
is tested. This is the part of the core a bot talks to, at least as strict as the game:

- it starts each bot as the core does (RLBotServer's ``BotLauncher``): its ``bot.toml`` run command (read with
  RLBot's own ``rlbot.config``) through ``/bin/sh -c``, from the bot's folder, with ``RLBOT_AGENT_ID`` and
  ``RLBOT_SERVER_PORT`` set;
- it speaks RLBot v5's socket protocol on 127.0.0.1 (a 2-byte big-endian length, then a flatbuffer:
  ``InterfacePacket`` from the bot, ``CorePacket`` to it): after the bot's ``ConnectionSettings`` it sends, in
  the order RLBotServer does (``IntroDataRequest``, then the bridge's ``PlayerInfoRequest``), the match
  configuration, the field info and the car it controls (cars of one agent id go to bots in the order they
  connect), sends game packets only once the bot sent ``InitComplete``, and ends with a ``DisconnectSignal``;
- the simulation advances at 120 ticks per second of wall time whether or not a bot answered; a bot's last input
  stays applied until a new one arrives, as in the game; packets can be delayed (``jitter_ms``) or dropped;
- the match goes through the game's phases: Inactive packets before the start, a countdown with the cars frozen,
  the kickoff (until the ball moves), active play, goal scored (play goes on for a few seconds), the replay, the
  next countdown and kickoff, and Ended;
- bots can sit on any team and player index (``bot_slots``); other cars are driven by a scripted driver of
  :mod:`envs.scripted`, every ``tick_skip`` ticks as in training.

For every bot it records, per packet of play, whether an input arrived before the next tick ran (else the
packet's input was *late*: the car kept its previous controls), and on the ticks where the bot's next action
starts (every ``tick_skip`` ticks after the kickoff countdown, rlgym-rlbot's schedule) the rlgym state the bot
decided on and the controls it sent, so :mod:`rlbot_harness.check` can compare them with the trained policy.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence, TypeVar

import numpy as np
from rlbot import flat
from rlbot.config import load_player_config
from rlgym.rocket_league.api import GameState
from rlgym.rocket_league.common_values import BLUE_TEAM, ORANGE_TEAM
from rlgym.rocket_league.sim import RocketSimEngine

from config.schema import Config
from envs.components import build_match, lookup_table
from envs.scripted import ScriptedDriver
from rlbot_harness import packets

#: Seconds for a bot process to connect (a fresh venv imports numpy, RocketSim and RLBot's packages).
CONNECT_TIMEOUT_S = 120.0
#: How often the core looks whether a bot that has not connected yet has exited (s).
ACCEPT_POLL_S = 0.25
#: Seconds for a connected bot to send InitComplete.
INIT_TIMEOUT_S = 60.0
#: A bot that sends no input for this long during play has stopped answering (s).
SILENCE_LIMIT_S = 1.0
TICK_S = 1.0 / packets.TICKS_PER_SECOND
#: A packet the core sends this much later than its schedule (beyond the drawn jitter) gives the bot a full tick.
CORE_LAG_TOLERANCE_S = 0.5e-3
#: Phases in which a bot's inputs drive its car (and are counted as on time or late).
PLAY_PHASES = (flat.MatchPhase.Kickoff, flat.MatchPhase.Active)
#: A message type :meth:`BotLink.receive_until` waits for.
_Message = TypeVar("_Message")


@dataclass
class MatchOptions:
    """What match the stand-in core plays. Durations in seconds of wall time (= game time: speed 1)."""

    #: Seconds of kickoff and active play (the game clock); countdowns, goals and replays come on top.
    seconds: float = 120.0
    team_size: int = 1
    #: The cars the bot drives: (team, position in the team); the other cars are scripted.
    bot_slots: Sequence[tuple[int, int]] = ((BLUE_TEAM, 0),)
    #: Scripted driver of the other cars (:data:`envs.scripted.SCRIPTED_NAMES`).
    opponent: str = "chaser"
    #: Each packet is sent up to this many milliseconds late (uniform), on top of the 120 Hz schedule.
    jitter_ms: float = 0.0
    #: Probability that a packet to a bot is dropped (the bot sees a gap in frame numbers).
    drop: float = 0.0
    #: The first kickoff is replaced by a ball rolling into the orange net, so a match of any length shows a goal,
    #: its replay and a second kickoff.
    open_with_goal: bool = False
    inactive_s: float = 0.5
    goal_scored_s: float = 3.0
    replay_s: float = 3.0
    ended_s: float = 0.5
    seed: int = 0


@dataclass
class Decision:
    """A tick where the bot's next action starts: the rlgym state it decided on (the packet before) and the controls
    it sent for this tick (None: none arrived in time)."""

    state: GameState
    controls: Optional[flat.ControllerState]


@dataclass
class BotRecord:
    """One bot process and what it did. ``late`` / ``play_packets``: packets of play whose input did not arrive
    before the next tick, of those sent; ``missed`` / ``decision_ticks`` the same on the ticks its actions start."""

    team: int
    index: int
    agent: str  # the rlgym agent id of its car
    log_path: Path
    inputs: int = 0
    play_packets: int = 0
    late: int = 0
    dropped: int = 0
    decision_ticks: int = 0
    missed: int = 0
    touches: int = 0
    #: Inputs the bot sent for a player index that is not its car's (ignored).
    wrong_index_inputs: int = 0
    longest_silence_s: float = 0.0
    exit_code: Optional[int] = None
    connection_lost: bool = False
    decisions: list[Decision] = field(default_factory=list)


@dataclass
class MatchReport:
    """The whole match: frames sent, phases in the order first seen, goals, kickoffs and each bot's record."""

    ticks: int
    phases: list[str]
    blue_goals: int
    orange_goals: int
    kickoffs: int
    wall_s: float
    bots: list[BotRecord]
    #: Ticks the core gave a full extra 1/120 s because it sent its packet late by its own fault.
    core_lag_ticks: int = 0


class BotLink:
    """One bot's socket (RLBot v5 framing) and a reader thread that keeps its latest input."""

    def __init__(self, conn: socket.socket, index: int):
        self.conn = conn
        #: The player index of the car this connection controls; inputs for another index are ignored, as the
        #: core ignores them (counted in ``wrong_index``).
        self.index = index
        self.wrong_index = 0
        self.conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.lock = threading.Lock()
        self.controls = flat.ControllerState()
        self.new_inputs = 0
        self.total_inputs = 0
        self.closed = False
        self._send_lock = threading.Lock()

    def _read_exact(self, n: int) -> bytes:
        data = bytearray()
        while len(data) < n:
            chunk = self.conn.recv(n - len(data))
            if not chunk:
                raise ConnectionError("the bot closed the connection")
            data += chunk
        return bytes(data)

    def receive(self) -> Any:
        size = int.from_bytes(self._read_exact(2), "big")
        return flat.InterfacePacket.unpack(self._read_exact(size)).message

    def receive_until(self, kind: type[_Message], timeout_s: float) -> _Message:
        """Read messages until one of ``kind`` arrives (others are ignored). :raises socket.timeout:"""
        self.conn.settimeout(timeout_s)
        try:
            while True:
                message = self.receive()
                if isinstance(message, kind):
                    return message
        finally:
            self.conn.settimeout(None)

    def send(self, message: Any) -> None:
        data = flat.CorePacket(message).pack()
        with self._send_lock:
            self.conn.sendall(len(data).to_bytes(2, "big") + data)

    def start_reading(self) -> None:
        threading.Thread(target=self._read_loop, daemon=True).start()

    def _read_loop(self) -> None:
        try:
            while True:
                message = self.receive()
                if isinstance(message, flat.PlayerInput):
                    if message.player_index != self.index:
                        self.wrong_index += 1
                        continue
                    with self.lock:
                        self.controls = message.controller_state
                        self.new_inputs += 1
                        self.total_inputs += 1
        except (ConnectionError, OSError):
            self.closed = True

    def take(self) -> tuple[flat.ControllerState, int]:
        """The latest controls and how many inputs arrived since the last call."""
        with self.lock:
            count, self.new_inputs = self.new_inputs, 0
            return self.controls, count


def controls_row(controls: flat.ControllerState) -> np.ndarray:
    """A bot's controls as the 8 floats of an rlgym engine action (throttle .. handbrake)."""
    return np.array([controls.throttle, controls.steer, controls.pitch, controls.yaw, controls.roll,
                     float(controls.jump), float(controls.boost), float(controls.handbrake)], dtype=np.float32)


def start_bot(bot: flat.CustomBot, port: int, log_path: Path) -> subprocess.Popen:
    """Start ``bot`` (its ``bot.toml`` as RLBot's loader reads it) as the RLBot core does: its run command through
    the shell, from its folder."""
    env = dict(os.environ, RLBOT_AGENT_ID=bot.agent_id, RLBOT_SERVER_PORT=str(port))
    env.pop("RLBOT_SERVER_IP", None)  # the core sets only the agent id and port (the bot's default IP: 127.0.0.1)
    env.pop("PYTHONPATH", None)  # the bot runs on its own venv, not on the trainer's paths
    with open(log_path, "wb") as log:
        process = subprocess.Popen(bot.run_command, shell=True, cwd=bot.root_dir, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    return process


def _stop(process: subprocess.Popen, grace_s: float) -> Optional[int]:
    """Wait up to ``grace_s`` for the bot to exit by itself, then kill its process group; its exit code when it
    exited by itself, else None."""
    try:
        return process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()
        return None


class RealTimeMatch:
    """One match of the stand-in core. ``run()`` plays it and returns the :class:`MatchReport`.

    :param cfg: the bot's training config (``training_config.yaml`` in its folder): obs padding, tick skip,
        lookup table and meshes, as the match is built for training.
    :raises ConnectionError, TimeoutError: a bot did not connect, announce itself or initialize.
    """

    def __init__(self, bot_folder: Path, cfg: Config, options: MatchOptions, log_dir: Path):
        self.folder, self.cfg, self.opt, self.log_dir = Path(bot_folder), cfg, options, Path(log_dir)
        self.rng = random.Random(options.seed)
        self.engine = RocketSimEngine(rlbot_delay=False)
        self.match, _ = build_match(cfg.environment, cfg.rewards, team_sizes=(options.team_size, options.team_size),
                                    transition_engine=self.engine)
        self.tick_skip = cfg.environment.tick_skip
        self.table = lookup_table(cfg.environment)
        self.scripted = ScriptedDriver(options.opponent, self.table, np.random.default_rng(options.seed))
        self.frame = 0
        self.phases: list[str] = []
        self.scores = [0, 0]
        self.kickoffs = 0
        self.links: list[BotLink] = []
        self.records: list[BotRecord] = []
        bot = load_player_config(self.folder.resolve() / "bot.toml", BLUE_TEAM).variety
        assert isinstance(bot, flat.CustomBot)  # an exported bot's bot.toml describes a custom bot
        self.bot = bot
        self.core_lag_ticks = 0  # ticks the core itself started late (see _next_tick)
        self._last_phase = flat.MatchPhase.Inactive
        self._sent_at = self._jitter_s = 0.0
        #: The state the bots decided on when the last packet was sent (their new action answers that packet).
        self._awaited: Optional[GameState] = None
        self._decided_on: Optional[GameState] = None

    # --- the cars --------------------------------------------------------------------------------------------
    def _reset(self) -> GameState:
        np.random.seed(self.rng.randrange(2**32))  # rlgym's kickoff mutator draws from the global generator
        random.seed(self.rng.randrange(2**32))
        self.match.reset()
        state = self.match.state
        self.agents = sorted(state.cars, key=lambda a: (state.cars[a].team_num, str(a)))  # RLBot's player order
        by_team = {team: [a for a in self.agents if state.cars[a].team_num == team] for team in (BLUE_TEAM, ORANGE_TEAM)}
        self.bot_agents = [by_team[team][pos] for team, pos in self.opt.bot_slots]
        self.scripted_agents = [a for a in self.agents if a not in self.bot_agents]
        self.player_ids = [i + 1 for i in range(len(self.agents))]
        self.names = [f"bot{i}" if a in self.bot_agents else self.opt.opponent for i, a in enumerate(self.agents)]
        return state

    def _goal_opening(self, state: GameState) -> GameState:
        """The kickoff state with the ball rolling into the orange net from 700 uu in front of it, beside the
        cars' kickoff spots."""
        state.ball.position = np.array([500.0, 4400.0, 93.0], dtype=np.float32)
        state.ball.linear_velocity = np.array([0.0, 2000.0, 0.0], dtype=np.float32)
        state.ball.angular_velocity = np.zeros(3, dtype=np.float32)
        return self.engine.set_state(state, {})

    def _packet(self, phase: flat.MatchPhase, remaining_s: float) -> flat.GamePacket:
        cars = [self.engine._cars[a] for a in self.agents]
        return packets.game_packet(self.engine._arena, cars, self.player_ids, self.names, self.frame, phase,
                                   (self.scores[0], self.scores[1]), remaining_s)

    # --- connection ------------------------------------------------------------------------------------------
    def _connect(self, server: socket.socket, processes: list) -> None:
        server.settimeout(ACCEPT_POLL_S)
        agent_ids = [self.bot.agent_id if a in self.bot_agents else f"scripted/{self.opt.opponent}"
                     for a in self.agents]
        teams = [self.match.state.cars[a].team_num for a in self.agents]
        config = packets.match_configuration(self.names, teams, self.player_ids, agent_ids)
        deadline = time.perf_counter() + CONNECT_TIMEOUT_S
        for slot in range(len(self.bot_agents)):
            while True:  # bots of one agent id get their cars in the order they connect
                try:
                    conn, _ = server.accept()
                    break
                except socket.timeout:
                    codes = [p.poll() for p in processes]
                    if any(code is not None for code in codes):
                        raise ConnectionError(f"a bot process exited before the match started (exit codes {codes}; "
                                              f"run command '{self.bot.run_command}' in {self.bot.root_dir})") \
                            from None
                    if time.perf_counter() > deadline:
                        raise TimeoutError(f"bot {slot} ('{self.bot.run_command}' in {self.bot.root_dir}) did not "
                                           f"connect within {CONNECT_TIMEOUT_S:.0f} s") from None
            index = self.agents.index(self.bot_agents[slot])
            link = BotLink(conn, index)
            settings = link.receive_until(flat.ConnectionSettings, CONNECT_TIMEOUT_S)
            if settings.agent_id != self.bot.agent_id:
                raise ConnectionError(f"a bot announced agent id '{settings.agent_id}', bot.toml says "
                                      f"'{self.bot.agent_id}'")
            link.send(config)  # the real core's order: match configuration and field info at once, then the
            link.send(packets.field_info(self.engine._arena))  # car reserved for this agent id (first come)
            link.send(packets.controllable(teams[index], index, self.player_ids[index]))
            self.links.append(link)
        for slot, link in enumerate(self.links):
            try:
                link.receive_until(flat.InitComplete, INIT_TIMEOUT_S)
            except socket.timeout:
                raise TimeoutError(f"bot {slot} connected but did not initialize within {INIT_TIMEOUT_S:.0f} s") \
                    from None
            link.start_reading()

    # --- the match -------------------------------------------------------------------------------------------
    def run(self) -> MatchReport:
        started = time.perf_counter()
        state = self._reset()
        server = socket.create_server(("127.0.0.1", 0))
        port = server.getsockname()[1]
        processes = []
        for slot, (team, _) in enumerate(self.opt.bot_slots):
            log_path = self.log_dir / f"bot{slot}.log"
            processes.append(start_bot(self.bot, port, log_path))
            index = self.agents.index(self.bot_agents[slot])
            self.records.append(BotRecord(team, index, self.bot_agents[slot], log_path))
        try:
            self._connect(server, processes)
            self._play(state)
            for link in self.links:
                try:
                    link.send(flat.DisconnectSignal())
                except OSError:
                    pass
        finally:
            server.close()
            for record, process in zip(self.records, processes):
                record.exit_code = _stop(process, grace_s=10.0)
            for link, record in zip(self.links, self.records):
                link.conn.close()
                record.inputs, record.wrong_index_inputs = link.total_inputs, link.wrong_index
        return MatchReport(self.frame, self.phases, self.scores[0], self.scores[1], self.kickoffs,
                           time.perf_counter() - started, self.records, self.core_lag_ticks)

    def _play(self, state: GameState) -> None:
        opt = self.opt
        self._clock = self._sent_at = time.perf_counter()
        self._silent_since = [time.perf_counter()] * len(self.links)
        self._sent_to = [False] * len(self.links)
        self._controls = [flat.ControllerState() for _ in self.links]
        remaining = opt.seconds
        for _ in range(round(opt.inactive_s / TICK_S)):
            self._next_tick()
            self._send(flat.MatchPhase.Inactive, remaining)
        opening = opt.open_with_goal
        while remaining > 0:
            if self.kickoffs:
                state = self._reset()
            self.kickoffs += 1
            if opening:
                state = self._goal_opening(state)
            for _ in range(packets.COUNTDOWN_TICKS):
                self._next_tick()
                self._send(flat.MatchPhase.Countdown, remaining)  # cars frozen
            countdown_end = self.frame  # rlgym-rlbot's first action starts on the last countdown tick
            scripted_rows = np.zeros((len(self.scripted_agents), 8), dtype=np.float32)
            moving, opening = opening, False
            while remaining > 0:
                if (self.frame - countdown_end) % self.tick_skip == 0 and self.scripted_agents:
                    scripted_rows = self.table[self.scripted.act(state, self.scripted_agents)]
                self._next_tick()
                state = self._step(scripted_rows)
                remaining -= TICK_S
                moving = moving or bool(np.any(state.ball.linear_velocity))
                if state.goal_scored:
                    self.scores[0 if state.scoring_team == BLUE_TEAM else 1] += 1
                    self._send(flat.MatchPhase.GoalScored, remaining)
                    for _ in range(round(opt.goal_scored_s / TICK_S)):  # the cars drive on until the replay
                        self._next_tick()
                        self._step(scripted_rows)
                        self._send(flat.MatchPhase.GoalScored, remaining)
                    for _ in range(round(opt.replay_s / TICK_S)):
                        self._next_tick()
                        self._send(flat.MatchPhase.Replay, remaining)
                    break
                # the bots decide on the packet of the tick before their next action starts
                decides = (self.frame + 1 - countdown_end) % self.tick_skip == self.tick_skip - 1
                self._send(flat.MatchPhase.Active if moving else flat.MatchPhase.Kickoff, remaining,
                           state if decides else None)
        for _ in range(round(opt.ended_s / TICK_S)):
            self._next_tick()
            self._send(flat.MatchPhase.Ended, 0.0)

    def _step(self, scripted_rows: np.ndarray) -> GameState:
        """One physics tick on every car's latest controls: the bots' last inputs, the scripted actions."""
        actions = {a: row[None] for a, row in zip(self.scripted_agents, scripted_rows)}
        for controls, agent in zip(self._controls, self.bot_agents):
            actions[agent] = controls_row(controls)[None]
        state = self.engine.step(actions, {})
        for record, agent in zip(self.records, self.bot_agents):
            record.touches += state.cars[agent].ball_touches > 0
        return state

    def _account(self) -> None:
        """Before the next tick: did each bot answer the packet sent last (in play: else it was late)?"""
        now = time.perf_counter()
        for k, (link, record) in enumerate(zip(self.links, self.records)):
            controls, arrived = link.take()
            self._controls[k] = controls
            if arrived:
                self._silent_since[k] = now
            record.connection_lost = record.connection_lost or link.closed
            if self._last_phase not in PLAY_PHASES or not self._sent_to[k]:
                continue
            record.play_packets += 1
            record.late += arrived == 0
            record.longest_silence_s = max(record.longest_silence_s, now - self._silent_since[k])
            if self._awaited is not None:
                record.decision_ticks += 1
                record.missed += arrived == 0
                record.decisions.append(Decision(self._awaited, controls if arrived else None))

    def _next_tick(self) -> None:
        """Wait for the next 1/120 s of wall time, then count each bot's answers to the packet sent last.

        When the core itself sent the last packet late (its own work, not the drawn jitter, kept it), the tick
        waits a full 1/120 s after it, so a bot is never counted late for the core's delay (``core_lag_ticks``)."""
        self._clock += TICK_S
        own_lag = self._sent_at - self._clock + TICK_S - self._jitter_s
        if own_lag > CORE_LAG_TOLERANCE_S:
            self.core_lag_ticks += 1
            self._clock += own_lag
        delay = self._clock - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        self._account()

    def _send(self, phase: flat.MatchPhase, remaining: float, decided_on: Optional[GameState] = None) -> None:
        """Send the next frame's packet to every bot (each may be delayed or dropped). ``decided_on``: the bots
        decide their next action on this packet (this state); the action answers the following packet."""
        self._awaited, self._decided_on = self._decided_on, decided_on
        self.frame += 1
        name = str(phase).rpartition(".")[2]
        if name not in self.phases:
            self.phases.append(name)
        self._last_phase = phase
        self._jitter_s = self.rng.uniform(0.0, self.opt.jitter_ms) / 1000 if self.opt.jitter_ms > 0 else 0.0
        if self._jitter_s:
            time.sleep(self._jitter_s)
        packet = self._packet(phase, remaining)
        for k, (link, record) in enumerate(zip(self.links, self.records)):
            self._sent_to[k] = False
            if self.opt.drop > 0 and phase in PLAY_PHASES and self.rng.random() < self.opt.drop:
                record.dropped += 1
                continue
            try:
                link.send(packet)
                self._sent_to[k] = True
            except OSError:
                record.connection_lost = True
        self._sent_at = time.perf_counter()
