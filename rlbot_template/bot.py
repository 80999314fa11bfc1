"""An RLBot v5 bot exported from a Stable-Baselines3 PPO model trained in RocketSim (rlgym v2).

Runs without Stable-Baselines3, torch or the trainer's code: the policy is a small MLP evaluated with numpy from
``policy.npz`` (hidden and action layers of the PPO actor + the VecNormalize observation statistics, the identity
when the model was trained without them), and ``settings.json`` holds the observation / action settings the model
was trained with.

The game side is rlgym-rlbot's ``RLGymBot`` (through rlgym-compat): it turns RLBot packets into rlgym
``GameState`` objects, runs the same rlgym obs builder and action parser as training, repeats each action for
``tick_skip`` ticks and decides one tick before the current action ends (``StepOffset(-1, ACTION_END)``), as
rlgym's RocketSimEngine does with its default RLBot delay.

Two corrections to rlgym-compat 2.3.6, found by the trainer's parity test (bot observations against training):
- boost pads (``ExportedBot._handle_packet``): compat copies the packet's pad timers as they are, but RLBot reports
  the seconds since a pad was picked up, while rlgym / RocketSim (and so the training observations) hold the
  cooldown left. They are converted before the bridge reads the packet.
- ``is_boosting`` (:class:`CorrectedGameState`): compat counts a car as boosting while its boost button is held,
  even with an empty tank; in RocketSim (and in the game) a car boosts on a tick only if it had boost before it.
- ``on_ground`` during a jump (:class:`CorrectedGameState`): compat starts its jump timer at 0 on the first packet
  that shows the jump, one tick after the press, while RocketSim counts the press tick; compat's rule "still on
  the ground for 6 ticks after the press" then holds one tick too long. The timer is shifted by that tick.
- ``air_time_since_jump`` (:class:`CorrectedGameState`): compat reads it from the packet's dodge timeout, which
  RLBot stops reporting (-1) 1.25 s after the jump; compat then freezes it, RocketSim keeps counting until the car
  lands. It keeps counting here too.

Start it as RLBot does (``python bot.py`` from this folder, with RLBOT_AGENT_ID set, see bot.toml).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
import numpy as np
from rlbot import flat
from rlgym.rocket_league.action_parsers import LookupTableAction, RepeatAction
from rlgym_compat import GameState
from rlgym_rlbot import RLGymBot, RLGymBotConfig
from rlgym_rlbot.rlgym_bot import StepOffset, StepOffsetRelativeTo

HERE = Path(__file__).resolve().parent
#: Seconds a pad stays inactive after a pickup, big and small (RocketSim's / the game's values).
PAD_COOLDOWN_S = {True: 10.0, False: 4.0}
TICK_S = 1 / 120
#: Ticks after pressing jump during which the wheels still touch the ground (rlgym-compat's assumption).
JUMP_LIFTOFF_TICKS = 6
ACTIVATIONS = {
    "relu": lambda x: np.maximum(x, 0.0),
    "tanh": np.tanh,
    "leaky_relu": lambda x: np.where(x > 0, x, np.float32(0.01) * x),  # torch's default slope
}


class NumpyPolicy:
    """The PPO actor with its observation normalizer, in numpy.

    ``policy.npz`` holds ``obs_mean``, ``obs_var`` ([obs_size]), ``clip_obs``, ``epsilon`` (VecNormalize),
    ``w0, b0, w1, b1, ...`` (torch ``Linear`` layout: weight [out, in]; the last layer gives the action logits)
    and ``activation``.
    """

    def __init__(self, path: Path):
        data = np.load(path)
        self.mean, self.var = data["obs_mean"], data["obs_var"]
        self.clip, self.eps = float(data["clip_obs"]), float(data["epsilon"])
        n = sum(1 for key in data.files if key.startswith("w"))
        self.layers = [(data[f"w{i}"], data[f"b{i}"]) for i in range(n)]
        self.activation = ACTIVATIONS[str(data["activation"])]

    def normalize(self, obs: np.ndarray) -> np.ndarray:
        """As VecNormalize.normalize_obs: (obs - mean) / sqrt(var + eps), clipped; float32 as the torch policy."""
        return np.clip((obs - self.mean) / np.sqrt(self.var + self.eps), -self.clip, self.clip).astype(np.float32)

    def logits(self, obs: np.ndarray) -> np.ndarray:
        x = self.normalize(obs)
        for i, (w, b) in enumerate(self.layers):
            x = x @ w.T + b
            if i < len(self.layers) - 1:
                x = self.activation(x)
        return x

    def act(self, obs: np.ndarray) -> int:
        """The deterministic action: the index of the largest logit."""
        return int(np.argmax(self.logits(obs)))


class CorrectedGameState(GameState):
    """rlgym-compat's game state with the corrections listed in the module docstring."""

    __slots__ = ("_prev_boost",)

    @classmethod
    def from_compat(cls, state: GameState) -> "CorrectedGameState":
        corrected = cls.__new__(cls)
        for name in GameState.__slots__:
            setattr(corrected, name, getattr(state, name))
        corrected._prev_boost = {}
        return corrected

    def update(self, packet: flat.GamePacket, extra_info=None) -> None:
        ticks = packet.match_info.frame_num - (self.tick_count or 0)
        self._prev_boost = {agent: car.boost_amount for agent, car in self.cars.items()}
        super().update(packet, extra_info)
        agent_of = self._agent_ids_fn(packet)
        for player in packet.players:
            car = self.cars[agent_of[player.player_id]]
            if (player.dodge_timeout == -1 and car.has_jumped and not car.is_jumping and not car.on_ground
                    and car.air_time_since_jump > 0 and ticks > 0):
                car.air_time_since_jump += ticks * TICK_S
        for agent, car in self.cars.items():
            if car.boost_amount <= 0 or self._prev_boost.get(agent, 1.0) <= 0:
                car.boost_active_time = 0.0
            if car.is_jumping:
                car.on_ground = car.jump_time + TICK_S <= JUMP_LIFTOFF_TICKS * TICK_S


def make_obs_builder(settings: dict, folder: Path = HERE):
    """The obs builder the model was trained with: rlgym's DefaultObs, rlgym-tools' RelativeDefaultObs, or the
    trainer user's own (``{"class": "module:Name", "kwargs": {...}}``, its package copied into this folder)."""
    spec = settings["obs_builder"]
    if isinstance(spec, dict):
        import importlib

        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
        module_name, sep, name = spec["class"].partition(":")
        if not sep:
            module_name, _, name = spec["class"].rpartition(".")
        return getattr(importlib.import_module(module_name), name)(**spec.get("kwargs", {}))
    if settings["obs_builder"] == "default":
        from rlgym.rocket_league.obs_builders import DefaultObs

        return DefaultObs(zero_padding=settings["obs_zero_padding"])
    if settings["obs_builder"] == "relative":
        from rlgym_tools.rocket_league.obs_builders.relative_default_obs import RelativeDefaultObs

        return RelativeDefaultObs(zero_padding=settings["obs_zero_padding"])
    raise ValueError(f"settings.json: unknown obs_builder '{settings['obs_builder']}'")


class ExportedBot(RLGymBot):
    """Builds the training observation from each decision's game state and plays the policy's action."""

    def __init__(self, folder: Path = HERE):
        self.settings = json.loads((folder / "settings.json").read_text())
        self.policy = NumpyPolicy(folder / "policy.npz")
        self._big_pads: list[bool] = []
        super().__init__(
            obs_builder=make_obs_builder(self.settings, folder),
            action_parser=RepeatAction(LookupTableAction(), repeats=self.settings["tick_skip"]),
            config=RLGymBotConfig(step_offset=StepOffset(-1, StepOffsetRelativeTo.ACTION_END)),
            default_agent_id=self.settings["agent_id"],
        )

    def initialize(self) -> None:
        self.latest_game_state = CorrectedGameState.from_compat(self.latest_game_state)  # made just before

    def get_action(self, obs: np.ndarray, game_state, packet: flat.GamePacket) -> np.ndarray:
        return np.array([self.policy.act(np.asarray(obs, dtype=np.float32))])

    def _handle_field_info(self, field_info: flat.FieldInfo) -> None:
        self._big_pads = [pad.is_full_boost for pad in field_info.boost_pads]
        super()._handle_field_info(field_info)

    def _handle_packet(self, packet: flat.GamePacket) -> None:
        # RLBot: seconds since pickup (0 while active) -> rlgym: cooldown left (0 while active).
        pads = [flat.BoostPadState(is_active=pad.is_active,
                                   timer=0.0 if pad.is_active else max(0.0, PAD_COOLDOWN_S[big] - pad.timer))
                for pad, big in zip(packet.boost_pads, self._big_pads)]
        super()._handle_packet(flat.GamePacket(players=packet.players, boost_pads=pads, balls=packet.balls,
                                               match_info=packet.match_info, teams=packet.teams,
                                               tiles=packet.tiles))


if __name__ == "__main__":
    os.chdir(HERE)
    sys.exit(ExportedBot().run(wants_match_communications=False, wants_ball_predictions=False))
