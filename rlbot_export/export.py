"""Write a trained model as a self-contained RLBot v5 bot folder.

The folder needs neither Stable-Baselines3, torch nor this repository at run time:

    bot.toml           RLBot v5 bot config: name, agent id, run commands (Windows / Linux), loadout file
    loadout.toml       car and colours (blue and orange)
    bot.py             the bot: rlgym-rlbot's RLGymBot + the policy in numpy (copied from rlbot_template/)
    policy.npz         actor weights (torch Linear layout) and the VecNormalize observation statistics
    settings.json      obs builder, padding, tick skip, action parser the model was trained with; source model
    training_config.yaml  the run's full config (evaluate.py --model <folder> plays the bot with it)
    match.toml         an RLBot v5 match: this bot against a Psyonix All-Star
    requirements.txt   pinned runtime packages
    README.md          how to install it, add it to RLBot v5 and play against it

The export checks itself before it reports success: the numpy policy must give the torch policy's logits
(within 1e-4) and argmax on observations drawn around the normalizer's statistics.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.torch_layers import FlattenExtractor
from stable_baselines3.common.vec_env import VecNormalize

from envs.parts import module_root
from config.schema import Config, PartSpec
from training.actor import actor_logits
from training.flat_obs import normalize_obs, obs_stats
from training.model_files import inspect_pair, read_normalizer
from training.runs import RUN_CONFIG_NAME
from training.setup import check_obs_size

#: The files shipped verbatim in every bot folder (nothing in them exists for tests).
BOT_FILES_DIR = Path(__file__).resolve().parent.parent / "rlbot_template"
#: Observation size of rlgym's DefaultObs / rlgym-tools' RelativeDefaultObs: 52 + 20 per padded car slot.
OBS_BASE, OBS_PER_CAR = 52, 20
ACTIVATION_NAMES = {torch.nn.ReLU: "relu", torch.nn.Tanh: "tanh", torch.nn.LeakyReLU: "leaky_relu"}
#: Runtime packages of the bot, pinned to the versions the parity tests ran with. rlgym-rlbot 0.3.0 pins rlbot
#: 2.0.0b52 (RLBot v5's Python interface); its `rocketsim` extra is needed by rlgym-compat's import paths.
BOT_REQUIREMENTS = [
    "rlgym-rlbot[rocketsim]==0.3.0",
    "rlbot==2.0.0b52",
    "rlbot_flatbuffers==0.18.11",
    "rlgym-compat==2.3.6",
    "rlgym==2.0.1",
    "rlgym-api==2.0.0",
    "rlgym-rocket-league==2.0.1",
    "rocketsim==2.2.1",
    "numpy==1.26.4",
]
RELATIVE_OBS_REQUIREMENT = "rlgym-tools==2.6.5"
LOGIT_TOLERANCE = 1e-4


class ExportError(ValueError):
    """The model cannot be exported; the message names the reason and the fix."""


@dataclass(frozen=True)
class ExportResult:
    folder: Path
    name: str
    agent_id: str
    num_timesteps: int
    max_logit_error: float


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "bot"


def actor_layers(model: PPO) -> tuple[list[tuple[np.ndarray, np.ndarray]], str]:
    """The actor's Linear layers (hidden ones, then the action logits) and the activation name.

    :raises ExportError: a policy this exporter cannot write (not an MLP on a flat observation, discrete actions).
    """
    policy = model.policy
    if not isinstance(policy.features_extractor, FlattenExtractor):
        raise ExportError(f"the policy uses {type(policy.features_extractor).__name__}; only SB3's MlpPolicy "
                          "(FlattenExtractor) can be exported.")
    if not hasattr(policy.action_dist, "action_dim") or type(policy.action_dist).__name__ != "CategoricalDistribution":
        raise ExportError("only discrete actions (the lookup-table action parser) can be exported.")
    layers, activation = [], None
    for module in policy.mlp_extractor.policy_net:
        if isinstance(module, torch.nn.Linear):
            layers.append(module)
        elif type(module) in ACTIVATION_NAMES:
            activation = ACTIVATION_NAMES[type(module)]
            if isinstance(module, torch.nn.LeakyReLU) and module.negative_slope != 0.01:
                raise ExportError("leaky_relu with a slope other than torch's default 0.01 cannot be exported.")
        else:
            raise ExportError(f"unsupported layer {type(module).__name__} in the policy network.")
    assert isinstance(policy.action_net, torch.nn.Linear)  # what SB3 builds for discrete actions
    layers.append(policy.action_net)
    arrays = [(m.weight.detach().cpu().numpy().astype(np.float32), m.bias.detach().cpu().numpy().astype(np.float32))
              for m in layers]
    return arrays, activation or "relu"


def bot_settings(cfg: Config, obs_size: int, n_actions: int, agent_id: str, model_path: Path,
                 num_timesteps: int) -> dict[str, Any]:
    """``settings.json``: what bot.py needs to rebuild the training observation and action. A custom obs builder is
    written as ``{"class": "module:Name", "kwargs": {...}}`` (its package is copied beside bot.py).

    :raises ConfigError: the configured obs builder does not make the model's observation size.
    """
    env = cfg.environment
    check_obs_size(cfg, model_path, (obs_size,))
    obs_builder = env.obs_builder.model_dump(by_alias=True, include={"cls", "kwargs"}) if isinstance(
        env.obs_builder, PartSpec) else env.obs_builder
    return {"agent_id": agent_id, "obs_builder": obs_builder, "obs_zero_padding": env.obs_zero_padding,
            "tick_skip": env.tick_skip, "action_parser": env.action_parser, "obs_size": obs_size,
            "n_actions": n_actions, "source_model": str(model_path), "num_timesteps": num_timesteps}


def copy_obs_package(cfg: Config, folder: Path) -> Optional[str]:
    """Copy the package (or module file) of a custom obs builder into the bot ``folder``; its name, or None for a
    built-in obs builder. Only ``.py`` files are copied (no caches, no data)."""
    spec = cfg.environment.obs_builder
    if not isinstance(spec, PartSpec):
        return None
    root = module_root(spec)
    if root.is_dir():
        shutil.copytree(root, folder / root.name, ignore=lambda d, names: [
            n for n in names if not n.endswith(".py") and not (Path(d) / n).is_dir() or n == "__pycache__"])
    else:
        shutil.copy(root, folder / root.name)
    return root.name


def _obs_name(settings: dict[str, Any]) -> str:
    obs = settings["obs_builder"]
    return obs["class"] if isinstance(obs, dict) else f"rlgym {obs}"


def _bot_toml(name: str, agent_id: str) -> str:
    return f'''# RLBot v5 bot config. RLBot starts run_command (run_command_linux on Linux) from this folder.
[settings]
name = "{name}"
agent_id = "{agent_id}"
loadout_file = "loadout.toml"
run_command = ".\\\\venv\\\\Scripts\\\\python.exe bot.py"
run_command_linux = "./venv/bin/python bot.py"

[details]
description = "PPO bot trained in RocketSim with Stable-Baselines3 (exported by export_rlbot.py)"
fun_fact = "Decides 15 times per second from the same observation it saw in training."
tags = ["1v1"]
'''


LOADOUT_TOML = '''# Car and colours, read by RLBot v5 (car_id 23 = Octane, the car the bot trained with).
[blue_loadout]
team_color_id = 29
custom_color_id = 0
car_id = 23

[orange_loadout]
team_color_id = 1
custom_color_id = 0
car_id = 23
'''

MATCH_TOML = '''# An RLBot v5 match: this bot (blue) against a Psyonix All-Star (orange).
[rlbot]
launcher = "Steam"
auto_start_agents = true
wait_for_agents = true

[match]
game_mode = "Soccar"
game_map_upk = "Stadium_P"

[[cars]]
config_file = "bot.toml"
team = 0

[[cars]]
type = "Psyonix"
skill = "AllStar"
team = 1
'''


def _readme(name: str, settings: dict[str, Any]) -> str:
    return f"""# {name}: an RLBot v5 bot

Exported from `{settings['source_model']}` ({settings['num_timesteps']:,} training steps) by `export_rlbot.py`.
Observation: `{_obs_name(settings)}` obs, padded to {settings['obs_zero_padding']} cars per team
({settings['obs_size']} floats); actions: the {settings['n_actions']}-action lookup table, each held for
{settings['tick_skip']} ticks. The bot needs neither Stable-Baselines3 nor torch: `policy.npz` holds the actor and
its observation statistics, evaluated with numpy.

## Install (once, Python 3.11 or 3.12)

Windows (PowerShell, in this folder):

    py -3.11 -m venv venv
    .\\venv\\Scripts\\python.exe -m pip install -r requirements.txt

Linux:

    python3.11 -m venv venv
    ./venv/bin/python -m pip install -r requirements.txt

`bot.toml`'s run commands use this `venv` folder.

## Play against it

1. Install RLBot v5 (rlbot.org) and start it with Rocket League.
2. Add this folder's `bot.toml` as a bot (or open `match.toml`: this bot against a Psyonix All-Star) and start
   the match. RLBot launches `bot.py`; the bot connects to RLBot on 127.0.0.1.

Run it by hand (RLBot running): `RLBOT_AGENT_ID={settings['agent_id']} ./venv/bin/python bot.py`.

## What was checked before export, and what only the game can tell

The trainer's tests feed this bot RLBot packets built from RocketSim and check that its observations and actions
equal the training pipeline's, for a blue and an orange car. `python export_rlbot.py --check <this folder>` (in
the trainer) installs this folder's `requirements.txt` into a fresh venv, starts the bot with `bot.toml`'s run
command and plays a real-time match (120 Hz whether the bot answered or not, countdowns, goals, replays and
kickoffs) through a stand-in for the RLBot core, and reports late decisions and whether the bot plays the trained
policy. Physics differences between RocketSim and the game, the game's own timing on your PC and the real RLBot
core can only be confirmed in Rocket League.
"""


def _check_numpy_policy(folder: Path, model: PPO, vec_norm: VecNormalize, rng: np.random.Generator,
                        samples: int = 256) -> float:
    """Largest |logit| difference between bot.py's numpy policy and the torch policy; raises on a mismatch."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_exported_bot_check", folder / "bot.py")
    assert spec is not None and spec.loader is not None  # a .py file always has a spec and a loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    policy = module.NumpyPolicy(folder / "policy.npz")
    mean, var, _ = obs_normalization(vec_norm, len(policy.mean))
    std = np.sqrt(var + vec_norm.epsilon)
    obs = (mean + rng.standard_normal((samples, len(std))) * std).astype(np.float32)
    ours = np.stack([policy.logits(o) for o in obs])
    with torch.no_grad():
        tensor = torch.as_tensor(normalize_obs(vec_norm, obs), dtype=torch.float32)
        theirs = actor_logits(model.policy, tensor).numpy()
    error = float(np.abs(ours - theirs).max())
    if error > LOGIT_TOLERANCE or not np.array_equal(ours.argmax(1), theirs.argmax(1)):
        raise ExportError(f"the exported policy does not reproduce the model (largest logit error {error:.2e}); "
                          "this is a bug in the exporter, please report it.")
    return error


def obs_normalization(vec_norm: VecNormalize, obs_size: int) -> tuple[np.ndarray, np.ndarray, float]:
    """What bot.py's normalizer must do, as (mean [obs_size], var [obs_size], clip) float64: the normalizer's
    observation statistics, or the identity when it does not normalize observations (``normalize.norm_obs``
    false: mean 0, var ``1 - epsilon`` so that ``sqrt(var + epsilon)`` is 1, no clipping)."""
    if vec_norm.norm_obs:
        stats = obs_stats(vec_norm)
        return stats.mean.astype(np.float64), stats.var.astype(np.float64), float(vec_norm.clip_obs)
    return np.zeros(obs_size), np.full(obs_size, 1.0 - vec_norm.epsilon), float("inf")


def export_bot(model_path: Path, out: Path, name: Optional[str] = None, normalizer_path: Optional[Path] = None,
               config_path: Optional[Path] = None, force: bool = False) -> ExportResult:
    """Export ``model_path`` (+ its normalizer) as an RLBot v5 bot folder at ``out``.

    The config is the run's ``config.yaml`` beside the model unless ``config_path`` is given. ``out`` must not exist
    unless ``force``; the folder is written next to it and moved into place whole, so a failed export leaves
    nothing half-written.

    :raises FileNotFoundError, BadModelFile, ConfigError, ExportError: with a message naming the problem.
    """
    from config import load_config
    from config.load import to_yaml
    from config.parts import with_paths

    model_path, out = Path(model_path), Path(out)
    pair = inspect_pair(model_path, normalizer_path)
    run_config = model_path.parent / RUN_CONFIG_NAME
    if config_path is None and not run_config.is_file():
        raise FileNotFoundError(f"no {RUN_CONFIG_NAME} beside '{model_path}' to tell how the model was trained; pass "
                                "the config it was trained with: --config <config.yaml>")
    cfg_path = Path(config_path) if config_path else run_config
    cfg = load_config(cfg_path)
    if out.exists() and not force:
        raise FileExistsError(f"'{out}' already exists; choose another --out or add --force to replace it.")
    if out.exists() and not (out / "bot.toml").is_file():
        raise FileExistsError(f"'{out}' exists and is not an exported bot folder; it is left alone. Choose another "
                              "--out.")

    vec_norm = read_normalizer(pair.normalizer_path)
    model = PPO.load(pair.model_path, device="cpu")
    layers, activation = actor_layers(model)
    name = name or out.name
    agent_id = f"sb3trainer/{_slug(name)}"
    assert isinstance(model.action_space, spaces.Discrete)  # actor_layers checked it
    settings = bot_settings(cfg, int(pair.obs_shape[0]), int(model.action_space.n), agent_id, pair.model_path,
                            pair.num_timesteps)
    requirements = BOT_REQUIREMENTS + ([RELATIVE_OBS_REQUIREMENT] if settings["obs_builder"] == "relative" else [])
    cfg = with_paths(cfg)  # training_config.yaml: every custom part with the folder it imports from

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        weights = {f"w{i}": w for i, (w, _) in enumerate(layers)} | {f"b{i}": b for i, (_, b) in enumerate(layers)}
        mean, var, clip = obs_normalization(vec_norm, int(pair.obs_shape[0]))
        np.savez(tmp / "policy.npz", obs_mean=mean, obs_var=var, clip_obs=np.float64(clip),
                 epsilon=np.float64(vec_norm.epsilon), activation=np.array(activation), **weights)
        shutil.copy(BOT_FILES_DIR / "bot.py", tmp / "bot.py")
        copy_obs_package(cfg, tmp)
        (tmp / "settings.json").write_text(json.dumps(settings, indent=2) + "\n")
        (tmp / "training_config.yaml").write_text(to_yaml(cfg))
        (tmp / "bot.toml").write_text(_bot_toml(name, agent_id))
        (tmp / "loadout.toml").write_text(LOADOUT_TOML)
        (tmp / "match.toml").write_text(MATCH_TOML)
        (tmp / "requirements.txt").write_text("# Runtime packages of the bot (Python 3.11 / 3.12).\n"
                                              + "\n".join(requirements) + "\n")
        (tmp / "README.md").write_text(_readme(name, settings))
        error = _check_numpy_policy(tmp, model, vec_norm, np.random.default_rng(0))
        if out.exists():
            old = out.with_name(f".{out.name}.replaced")
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportResult(out, name, agent_id, pair.num_timesteps, error)
