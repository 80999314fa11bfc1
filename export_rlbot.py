"""Export a trained model as an RLBot v5 bot folder (see README "Export and play it in Rocket League").

    python export_rlbot.py --model checkpoints/PPO_1/best_model.zip --out bots/MyBot
    python evaluate.py --model bots/MyBot --opponent idle      # check the exported bot in the simulator first
    python export_rlbot.py --check bots/MyBot                   # its own venv, a real-time match, one JSON line

The normalizer is found beside the model by name (as everywhere else) unless --vecnormalize is given; the config
is the run's config.yaml beside the model unless --config is given.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

from config import ConfigError
from rlbot_export.export import ExportError, export_bot

EXIT_USAGE = 2
EXIT_BOT_FAILED = 1


def check(args: argparse.Namespace) -> int:
    """``--check BOTDIR``: print the check's JSON line; exit 0 passed, 1 the bot failed, 2 not a bot folder."""
    import json

    from rlbot_harness.check import BadBotFolder, BotFailed, CheckOptions, run_check

    options = CheckOptions(seconds=args.seconds, mode=args.mode, opponent=args.opponent, jitter_ms=args.jitter_ms,
                           drop=args.drop, open_with_goal=args.open_with_goal, seed=args.seed,
                           venv_cache=Path(args.venv_cache) if args.venv_cache else None, keep=args.keep)
    try:
        report = run_check(Path(args.check), options)
    except BadBotFolder as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BotFailed as exc:
        print(f"error: the bot failed: {exc}", file=sys.stderr)
        return EXIT_BOT_FAILED
    for failure in report["failures"]:
        print(f"FAILED: {failure}", file=sys.stderr)
    print(json.dumps(report))
    return 0 if report["passed"] else EXIT_BOT_FAILED


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Export a trained model as an RLBot v5 bot folder.")
    parser.add_argument("--model", help="model .zip saved by train_sb3.py")
    parser.add_argument("--out", help="bot folder to write, e.g. bots/MyBot")
    parser.add_argument("--name", help="bot name shown in the game (default: the folder's name)")
    parser.add_argument("--vecnormalize", help="normalizer .pkl (default: found beside the model by name)")
    parser.add_argument("--config", help="config the model was trained with (default: the run's config.yaml)")
    parser.add_argument("--force", action="store_true", help="replace an existing exported bot folder")
    checking = parser.add_argument_group("--check BOTDIR: install the bot from its own folder and play it in real "
                                         "time through a stand-in RLBot v5 core")
    checking.add_argument("--check", metavar="BOTDIR", help="exported bot folder to check (instead of exporting)")
    checking.add_argument("--seconds", type=float, default=120.0, help="seconds of play (default 120)")
    checking.add_argument("--mode", choices=("1v1", "2v2"), default="1v1",
                          help="2v2: the bot drives a car of each team (player indices 1 and 2)")
    checking.add_argument("--opponent", default="chaser", help="scripted driver of the other cars (default chaser)")
    checking.add_argument("--jitter-ms", type=float, default=0.0, help="delay each packet by up to this (ms)")
    checking.add_argument("--drop", type=float, default=0.0, help="share of packets dropped during play")
    checking.add_argument("--open-with-goal", action="store_true",
                          help="open with a ball rolling into the net: a goal, its replay and a second kickoff")
    checking.add_argument("--seed", type=int, default=0, help="kickoff spots and scripted driver seed")
    checking.add_argument("--venv-cache", help="folder of cached bot venvs (default ~/.cache/rl-trainer/bot-venvs)")
    checking.add_argument("--keep", action="store_true", help="keep the folder the bot ran from, with its logs")
    args = parser.parse_args(argv)
    if args.check:
        return check(args)
    if not args.model or not args.out:
        parser.error("--model and --out are required to export (or --check BOTDIR to check an exported bot)")
    try:
        result = export_bot(Path(args.model), Path(args.out), args.name,
                            Path(args.vecnormalize) if args.vecnormalize else None,
                            Path(args.config) if args.config else None, args.force)
    except (ConfigError, ExportError, FileNotFoundError, FileExistsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"Exported '{result.name}' ({result.num_timesteps:,} steps) to {result.folder}/ "
          f"(agent id {result.agent_id}; numpy policy matches the model, largest logit error "
          f"{result.max_logit_error:.1e}).\n"
          f"Check it in the simulator:  python evaluate.py --model {result.folder} --opponent idle\n"
          f"Install and play it in RLBot v5: see {result.folder}/README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
