"""Evaluate a trained model: deterministic episodes, reward, length, goals and touches.

With a self-play config (``environment.vec_env: selfplay``, the default) the model plays N v N matches
against itself and against do-nothing cars, and goals for/against and touch rates are reported per team.
With ``vec_env: subproc`` the single learning car plays the configured match.

    python evaluate.py --model checkpoints/PPO_1/best_model.zip      # normalizer and config found beside it
    python evaluate.py --model checkpoints/PPO_1/checkpoint_500000.zip --episodes 20 --json
    python evaluate.py --model checkpoints/PPO_1/best_model.zip --episodes 3 --render eval.gif   # or .mp4
    python evaluate.py --model checkpoints/PPO_1/best_model.zip --render-live                     # in RLViser
    python evaluate.py --model bots/MyBot --opponent idle,chaser     # a bot folder written by export_rlbot.py

The normalizer (``VecNormalize`` statistics) is found from the model's name
(``best_model.zip`` -> ``best_vecnormalize.pkl``, ``checkpoint_N.zip`` -> ``vecnormalize_N.pkl``,
``model_final.zip`` -> ``vecnormalize_final.pkl``) unless ``--vecnormalize`` is given. The config is the
run's own ``config.yaml`` (saved beside the model by ``train_sb3.py``) unless ``--config`` is given.

An exported RLBot bot folder plays through its own ``bot.py`` and RLBot packets built from the simulator (see
``rlbot_export``), with the training config saved in the folder, so an export can be checked before the game.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecNormalize

from config import ConfigError, league_match_counts, load_config
from config.schema import Config
from envs.rocket_league_env import RocketLeagueEnv
from envs.components import smallest_team_size
from vecenv.subproc import eval_env_config, make_local_vec_env
from envs.scripted import SCRIPTED_NAMES
from play.match import (Driver, PolicyDriver, StepObserver, lookup_table, make_driver, play_episodes,
                        summarize_episodes)
from training.model_files import inspect_pair
from training.runs import RUN_CONFIG_NAME
from training.saving import normalizer_path_for
from training.setup import EVAL_SEED_OFFSET, check_spaces, load_normalizer

EXIT_USAGE = 2
RLVISER_HELP = (
    "--render-live needs the rlviser-py package and the RLViser program: `pip install rlviser-py==0.6.14`, then "
    "download the RLViser release matching it (github.com/VirxEC/rlviser/releases) and put the executable in "
    "the folder you run evaluate.py from. Without them, use --render OUT.gif (or .mp4) to watch the bot."
)


@dataclass
class EpisodeStats:
    """One evaluated episode. ``reward`` is the raw (un-normalized) sum; ``length_s`` in game seconds."""

    reward: float
    length_s: float
    goals_for: int
    goals_against: int
    touches: int


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Evaluate a trained Rocket League bot (deterministic episodes).")
    parser.add_argument("--model", required=True, help="model .zip saved by train_sb3.py, or a bot folder written by "
                                                       "export_rlbot.py")
    parser.add_argument("--vecnormalize", help="normalizer .pkl (default: found beside the model by name)")
    parser.add_argument("--episodes", type=int, default=10, help="episodes to play (default: 10)")
    parser.add_argument("--config", help="config the model was trained with (default: the run's config.yaml beside "
                                         "the model, else ./config.yaml)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--seed", type=int, default=EVAL_SEED_OFFSET, help="seed of the evaluation env")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.add_argument("--render", metavar="OUT", help="write the episodes as an animation: OUT.gif or OUT.mp4")
    parser.add_argument("--render-episodes", type=int, metavar="N",
                        help="record only the first N episodes (default: all evaluated episodes)")
    parser.add_argument("--render-fps", type=float, metavar="FPS",
                        help="frames per second of the animation (default: real time, one frame per decision)")
    parser.add_argument("--render-live", action="store_true", help="show the episodes live in RLViser")
    parser.add_argument("--opponent", default="both", metavar="{both,self,idle,random,chaser,PATH}",
                        help="self-play configs: who drives the orange cars: the model itself, a scripted bot "
                             "(idle, random, chaser: drives at the ball), or another saved model (PATH to its .zip, "
                             "normalizer beside it). Comma-separate several; 'both' = self,idle (default). "
                             "--render records the first")
    parser.add_argument("--stochastic", action="store_true",
                        help="sample the model's actions instead of taking the most likely one")
    parser.add_argument("--team-size", type=int, choices=(1, 2, 3),
                        help="self-play configs: cars per team (default: the smallest configured match)")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error("--episodes must be >= 1")
    if args.render:
        from render import ALLOWED_EXTENSIONS

        if Path(args.render).suffix.lower() not in ALLOWED_EXTENSIONS:
            parser.error(f"--render {args.render}: the file must end in one of {', '.join(ALLOWED_EXTENSIONS)}")
    if args.render_episodes is not None and args.render_episodes < 1:
        parser.error("--render-episodes must be >= 1")
    if args.render_fps is not None and args.render_fps <= 0:
        parser.error("--render-fps must be > 0")
    return args


def run_episodes(model: PPO, venv: VecNormalize, episodes: int, decision_seconds: float,
                 observers: Sequence[StepObserver] = ()) -> list[EpisodeStats]:
    """Play ``episodes`` deterministic episodes on a 1-env ``venv`` whose normalizer is frozen."""
    results: list[EpisodeStats] = []
    obs = venv.reset()
    reward = 0.0
    steps = goals_for = goals_against = touches = 0
    while len(results) < episodes:
        action, _ = model.predict(obs, deterministic=True)
        step_obs, rewards, dones, infos = venv.step(action)
        assert isinstance(step_obs, np.ndarray)  # flat observations (SB3 also types dict and tuple ones)
        obs = step_obs
        info = infos[0]
        reward += float(rewards[0])
        steps += 1
        touches += int(info["touched"])
        goals_for += int(info["goal"] == 1)
        goals_against += int(info["goal"] == -1)
        for observer in observers:  # the learning car is blue: its goals for/against are blue/orange's score
            observer(info, float(rewards[0]), len(results) + 1, goals_for, goals_against)
        if dones[0]:
            results.append(EpisodeStats(reward, steps * decision_seconds, goals_for, goals_against, touches))
            reward = 0.0
            steps = goals_for = goals_against = touches = 0
    return results


@dataclass
class FrameRecorder:
    """Keeps a :class:`render.Frame` per step of the first ``max_episodes`` episodes."""

    max_episodes: int
    frames: list = field(default_factory=list)

    def __call__(self, info: dict, reward: float, episode: int, blue: int, orange: int) -> None:
        from render import frame_from_state

        if episode <= self.max_episodes:
            self.frames.append(frame_from_state(info["state"], episode=episode, reward=reward,
                                                blue_score=blue, orange_score=orange))


class LiveViewer:
    """Sends every step to RLViser through rlgym's ``RLViserRenderer``, paced to real time."""

    def __init__(self, decision_seconds: float):
        from rlgym.rocket_league.rlviser import RLViserRenderer

        self.renderer = RLViserRenderer(tick_rate=1.0 / decision_seconds)
        self.decision_seconds = decision_seconds
        self._next = time.perf_counter()

    def __call__(self, info: dict, reward: float, episode: int, blue: int, orange: int) -> None:
        self.renderer.render(info["state"], {})
        self._next += self.decision_seconds
        time.sleep(max(0.0, self._next - time.perf_counter()))

    def close(self) -> None:
        self.renderer.close()


def reward_and_length(results: Sequence[EpisodeStats]) -> dict:
    """The keys both summaries share: episodes, mean/std raw reward, mean length in game seconds."""
    rewards = np.array([r.reward for r in results])
    return {
        "episodes": len(results),
        "mean_reward": float(rewards.mean()),
        "std_reward": float(rewards.std()),
        "mean_length_s": float(np.mean([r.length_s for r in results])),
    }


def print_match_table(summaries: dict[str, dict], team_size: int, model_path: Path, norm_path: Path,
                      stochastic: bool = False) -> None:
    mode = "stochastic (sampled actions)" if stochastic else "deterministic"
    print(f"Model:      {model_path}\nNormalizer: {norm_path}\n"
          f"Self-play evaluation, {team_size}v{team_size}, {mode}; the model plays blue "
          "(goals for = blue's, against = orange's)")
    titles = {"vs_self": "vs itself", "vs_idle": "vs do-nothing", "vs_random": "vs random", "vs_chaser": "vs ball-chaser"}
    columns = list(summaries)
    titles.update({c: "vs " + Path(c[3:]).stem[-13:] for c in columns if c not in titles})  # vs <model path>
    rows = [
        ("episodes", lambda s: f"{s['episodes']}"),
        ("goals for / episode", lambda s: f"{s['goals_for_per_episode']:.2f}"),
        ("goals against / episode", lambda s: f"{s['goals_against_per_episode']:.2f}"),
        ("touch rate blue", lambda s: f"{s['touch_rate']['blue']:.0%}"),
        ("touch rate orange", lambda s: f"{s['touch_rate']['orange']:.0%}"),
        ("win / loss rate", lambda s: f"{s['win_rate']:.0%} / {s['loss_rate']:.0%}"),
        ("mean episode length", lambda s: f"{s['mean_length_s']:.1f} s"),
        ("mean reward (blue car)", lambda s: f"{s['mean_reward']:.2f} +/- {s['std_reward']:.2f}"),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"  {'':<{width}}" + "".join(f"  {titles[c]:>16}" for c in columns))
    for name, fmt in rows:
        print(f"  {name:<{width}}" + "".join(f"  {fmt(summaries[c]):>16}" for c in columns))


def summarize(results: list[EpisodeStats]) -> dict:
    return {
        **reward_and_length(results),
        "goals_per_episode": float(np.mean([r.goals_for for r in results])),
        "conceded_per_episode": float(np.mean([r.goals_against for r in results])),
        "touch_rate": float(np.mean([r.touches > 0 for r in results])),
    }


def print_table(summary: dict, model_path: Path, norm_path: Path) -> None:
    print(f"Model:      {model_path}\nNormalizer: {norm_path}")
    rows = [
        ("episodes", f"{summary['episodes']}"),
        ("mean reward", f"{summary['mean_reward']:.3f} +/- {summary['std_reward']:.3f}"),
        ("mean episode length", f"{summary['mean_length_s']:.1f} s"),
        ("goals per episode", f"{summary['goals_per_episode']:.2f}"),
        ("conceded per episode", f"{summary['conceded_per_episode']:.2f}"),
        ("touch rate", f"{summary['touch_rate']:.0%} of episodes with a touch"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


def check_render_live(args: argparse.Namespace) -> None:
    """:raises FileNotFoundError: --render-live without rlviser-py (with how to install it)."""
    if args.render_live:
        try:
            import rlviser_py  # noqa: F401  (rlgym's RLViserRenderer imports it)
        except ImportError:
            raise FileNotFoundError(RLVISER_HELP) from None


def parse_opponents(args: argparse.Namespace) -> list[str]:
    """The --opponent list; every saved model among them is checked (readable, PPO, normalizer beside it), an
    exported bot folder by its files. :raises FileNotFoundError, BadModelFile: naming the file."""
    opponents = ["self", "idle"] if args.opponent == "both" else args.opponent.split(",")
    for opponent in opponents:
        if opponent in ("self", *SCRIPTED_NAMES):
            continue
        if Path(opponent).is_dir():
            from rlbot_harness.driver import check_bot_folder  # RLBot's packages, only for a bot folder

            check_bot_folder(Path(opponent))
        else:
            inspect_pair(Path(opponent))
    return opponents


def play_opponents(me: Driver, opponents: Sequence[str], cfg: Config, team_size: int, args: argparse.Namespace,
                   observers: Sequence[StepObserver], viewer: Optional["LiveViewer"]) -> dict[str, dict]:
    """``me`` (blue) against each opponent (``self``: ``me`` drives both teams); per opponent its summary. The
    animation (``observers``) holds the first opponent's games only."""
    table = lookup_table(cfg.environment)
    summaries = {}
    for opponent in opponents:
        orange = None if opponent == "self" else make_driver(opponent, table, args.seed,
                                                              deterministic=not args.stochastic)
        played = play_episodes(me, orange, cfg.environment, cfg.rewards, team_size, args.episodes, args.seed,
                               observers)
        summaries[f"vs_{opponent}"] = summarize_episodes(played)
        observers = [viewer] if viewer is not None else []
    return summaries


def write_recording(recorder: Optional["FrameRecorder"], args: argparse.Namespace, decision_seconds: float) -> None:
    if recorder is not None:
        from render import write_animation

        fps = args.render_fps or 1.0 / decision_seconds
        write_animation(recorder.frames, args.render, fps)
        print(f"Rendered {len(recorder.frames)} frames ({recorder.max_episodes} episode(s), {fps:g} fps) "
              f"to {args.render}")


def evaluate_bot_folder(args: argparse.Namespace, folder: Path) -> int:
    """``--model <exported bot folder>``: play the bot's own bot.py on RLBot packets from the simulator."""
    from rlbot_harness.driver import ExportedBotDriver, check_bot_folder

    viewer: Optional[LiveViewer] = None
    recorder: Optional[FrameRecorder] = None
    try:
        check_bot_folder(folder)
        cfg = load_config(args.config or folder / "training_config.yaml", args.set)
        if args.stochastic:
            raise ValueError("--stochastic does not apply to an exported bot: it plays its most likely action, as in "
                             "the game.")
        check_render_live(args)
        env_cfg = cfg.environment
        team_size = args.team_size or smallest_team_size(env_cfg, league_match_counts(cfg))
        opponents = parse_opponents(args)
        decision_seconds = env_cfg.tick_skip / 120
        if args.render:
            recorder = FrameRecorder(min(args.render_episodes or args.episodes, args.episodes))
        if args.render_live:
            viewer = LiveViewer(decision_seconds)
        observers = [obs for obs in (recorder, viewer) if obs is not None]
        summaries = play_opponents(ExportedBotDriver(folder), opponents, cfg, team_size, args, observers, viewer)
    except (ConfigError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        if viewer is not None:
            viewer.close()
    print_match_table(summaries, team_size, folder, folder / "policy.npz")
    write_recording(recorder, args, decision_seconds)
    if args.json:
        print(json.dumps({"episodes": args.episodes, "team_size": team_size, **summaries}))
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    model_path = Path(args.model)
    if model_path.is_dir():
        return evaluate_bot_folder(args, model_path)
    viewer: Optional[LiveViewer] = None
    recorder: Optional[FrameRecorder] = None
    try:
        run_config = model_path.parent / RUN_CONFIG_NAME
        cfg = load_config(args.config or (run_config if run_config.is_file() else None), args.set)
        if not model_path.is_file():
            raise FileNotFoundError(f"model '{model_path}' not found (python train_sb3.py --list-runs shows the runs).")
        norm_path = Path(args.vecnormalize) if args.vecnormalize else normalizer_path_for(model_path)
        inspect_pair(model_path, norm_path)  # readable, PPO, and the two belong together (else exit 2)
        check_render_live(args)
        selfplay = cfg.environment.vec_env == "selfplay"
        if args.team_size and not selfplay:
            raise ValueError("--team-size applies to self-play configs (environment.vec_env: selfplay); in subproc "
                             "mode set environment.blue_size / orange_size instead.")
        if args.team_size and args.team_size > cfg.environment.obs_zero_padding:
            raise ValueError(f"--team-size {args.team_size} is larger than environment.obs_zero_padding "
                             f"({cfg.environment.obs_zero_padding}) "
                             "the model was trained with.")
        team_size = args.team_size or (smallest_team_size(cfg.environment, league_match_counts(cfg)) if selfplay
                                       else None)
        opponents = parse_opponents(args)
        venv = make_local_vec_env(eval_env_config(cfg.environment, league_match_counts(cfg)), cfg.rewards, args.seed,
                                  record_state=bool(args.render or args.render_live))
        try:
            vec_norm = load_normalizer(norm_path, venv)
            vec_norm.training = False
            vec_norm.norm_reward = False
            model = PPO.load(model_path, device="cpu")
            check_spaces(model, venv, f"model '{model_path}'")
            env = venv.envs[0].unwrapped
            assert isinstance(env, RocketLeagueEnv)
            decision_seconds = env.decision_seconds
            if args.render:
                recorder = FrameRecorder(min(args.render_episodes or args.episodes, args.episodes))
            if args.render_live:
                viewer = LiveViewer(decision_seconds)
            observers = [obs for obs in (recorder, viewer) if obs is not None]
            if selfplay:
                assert team_size is not None  # set above in self-play
                me = PolicyDriver(model, vec_norm, deterministic=not args.stochastic)
                summaries = play_opponents(me, opponents, cfg, team_size, args, observers, viewer)
                summary = {"episodes": args.episodes, "team_size": team_size, **summaries}
            else:
                summary = summarize(run_episodes(model, vec_norm, args.episodes, decision_seconds, observers))
        finally:
            venv.close()
            if viewer is not None:
                viewer.close()
    except (ConfigError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    if selfplay:
        assert team_size is not None  # set above in self-play
        print_match_table({k: v for k, v in summary.items() if k.startswith("vs_")}, team_size, model_path, norm_path,
                          args.stochastic)
    else:
        print_table(summary, model_path, norm_path)
    write_recording(recorder, args, decision_seconds)
    if args.json:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
