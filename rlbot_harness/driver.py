"""An exported bot folder as a :class:`play.match.Driver`: its own ``bot.py`` decides from RLBot packets.

``evaluate.py --model bots/MyBot`` and the parity tests play the exported bot this way: the match runs on
:class:`rlbot_harness.sim.PacketEngine`, every car the driver controls gets its own bot instance (as RLBot starts
one process per car), and each decision the instances read the packets of the ticks since the last one. The env
applies the action index the bot chose, so the bot plays exactly as its packet pipeline decides.

Why the offline feeding is written here: rlgym-rlbot's ``RLGymBot`` only runs connected to a core
(``RLGymBot.run``); :func:`offline_bot_class` subclasses the shipped ``ExportedBot`` to receive the start
messages and packets by call instead, doing per packet what ``RLGymBot._run`` does, so the shipped ``bot.py``
carries nothing for tests.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np

from rlbot_harness.sim import PacketEngine

if TYPE_CHECKING:
    from rlgym.rocket_league.api import GameState

BOT_FILES = ("bot.py", "bot.toml", "settings.json", "policy.npz")


def is_bot_folder(path: Path) -> bool:
    """True for a folder written by ``export_rlbot.py``."""
    return Path(path).is_dir() and (Path(path) / "bot.toml").is_file()


def check_bot_folder(folder: Path) -> None:
    """:raises FileNotFoundError: naming what an exported bot folder lacks."""
    missing = [name for name in BOT_FILES if not (Path(folder) / name).is_file()]
    if missing:
        raise FileNotFoundError(f"'{folder}' is not a complete exported bot: {', '.join(missing)} missing. "
                                "Export it again: python export_rlbot.py --model <model.zip> --out <folder>")


def load_bot_module(folder: Path) -> ModuleType:
    """Import ``folder/bot.py`` under a name of its own (several exported bots can be loaded at once)."""
    folder = Path(folder).resolve()
    check_bot_folder(folder)
    name = f"exported_bot_{abs(hash(str(folder)))}"
    spec = importlib.util.spec_from_file_location(name, folder / "bot.py")
    assert spec is not None and spec.loader is not None  # a .py file always has a spec and a loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def offline_bot_class(module: ModuleType) -> type:
    """The exported bot class of ``module`` (its ``bot.py``), fed by call instead of a socket, recording its
    decisions (``last_obs``, ``last_action``, ``decisions``)."""

    exported_bot: Any = module.ExportedBot  # the class the exported bot.py defines

    class OfflineBot(exported_bot):
        def __init__(self, folder: Path):
            super().__init__(folder)
            self.last_obs: Optional[np.ndarray] = None
            self.last_action: Optional[int] = None
            self.decisions = 0

        def get_action(self, obs: np.ndarray, game_state: Any, packet: Any) -> np.ndarray:
            action = super().get_action(obs, game_state, packet)
            self.last_obs, self.last_action = np.asarray(obs, dtype=np.float32), int(action[0])
            self.decisions += 1
            return action

        def attach_offline(self, match_config: Any, field_info: Any, team_info: Any) -> None:
            """Receive the three start messages as from a core, without a connection (nothing is sent)."""
            self._game_interface.send_msg = lambda *_: None
            self._handle_match_config(match_config)
            self._handle_field_info(field_info)
            self._handle_controllable_team_info(team_info)

        def offline_tick(self, packet: Any) -> Any:
            """One packet in, the controls this bot sends for it out: what ``RLGymBot._run`` does per packet."""
            self._handle_packet(packet)
            self._process_unused_packets()
            self._last_packet = self._unused_packets[-1]
            self._unused_packets.clear()
            tick = self._last_packet.match_info.frame_num
            if tick in self._tick_action_map:
                self._last_sent_action_tick = tick
                self._last_sent_action = self._tick_action_map[tick]
            return self._last_sent_action

    return OfflineBot


@dataclass
class Decision:
    """One decision of one car: the training env's raw observation, the bot's own and the bot's action."""

    agent: str
    env_obs: np.ndarray
    bot_obs: np.ndarray
    action: int


class ExportedBotDriver:
    """Drives its cars with the exported bot in ``folder``; ``record=True`` keeps every :class:`Decision`."""

    def __init__(self, folder: Path, record: bool = False):
        self.folder = Path(folder)
        self.module = load_bot_module(self.folder)
        self.bot_class = offline_bot_class(self.module)
        self.settings: dict[str, Any] = json.loads((self.folder / "settings.json").read_text())
        self.record = record
        self.decisions: list[Decision] = []
        self.engine: Optional[PacketEngine] = None
        self._queue: list = []
        self._bots: dict[str, Any] = {}

    def attach_engine(self, engine: PacketEngine) -> None:
        """Read the packets of ``engine`` from now on (a new match: fresh bot instances)."""
        self.engine = engine
        self._queue = engine.subscribe()
        self._bots = {}

    def __call__(self, obs: np.ndarray, state: GameState, agents: Sequence[str]) -> np.ndarray:
        if self.engine is None:
            raise RuntimeError("ExportedBotDriver needs attach_engine(PacketEngine) before the match starts.")
        for agent in agents:
            if agent not in self._bots:
                logging.getLogger(str(agent)).setLevel(logging.WARNING)  # no "Initialized!" per bot and match
                bot = self.bot_class(self.folder)
                bot.attach_offline(self.engine.match_configuration(self.settings["agent_id"]),
                                   self.engine.field_info(), self.engine.controllable(agent))
                self._bots[agent] = bot
        before = {agent: self._bots[agent].decisions for agent in agents}
        for packet in self._queue:
            for bot in self._bots.values():
                bot.offline_tick(packet)
        self._queue.clear()
        actions = np.empty(len(agents), dtype=np.int64)
        for i, agent in enumerate(agents):
            bot = self._bots[agent]
            if bot.decisions == before[agent]:
                raise RuntimeError(f"the exported bot driving {agent} made no decision on the tick the training env "
                                   f"decides (frame {self.engine.frame}): its tick schedule does not match training")
            actions[i] = bot.last_action
            if self.record:
                self.decisions.append(Decision(agent, np.array(obs[i], dtype=np.float32), bot.last_obs,
                                               bot.last_action))
        return actions
