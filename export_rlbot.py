"""Export a trained model as an RLBot v5 bot folder (see README "Export and play it in Rocket League").

    python export_rlbot.py --model checkpoints/PPO_1/best_model.zip --out bots/MyBot
    python evaluate.py --model bots/MyBot --opponent idle      # check the exported bot in the simulator first

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


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Export a trained model as an RLBot v5 bot folder.")
    parser.add_argument("--model", required=True, help="model .zip saved by train_sb3.py")
    parser.add_argument("--out", required=True, help="bot folder to write, e.g. bots/MyBot")
    parser.add_argument("--name", help="bot name shown in the game (default: the folder's name)")
    parser.add_argument("--vecnormalize", help="normalizer .pkl (default: found beside the model by name)")
    parser.add_argument("--config", help="config the model was trained with (default: the run's config.yaml)")
    parser.add_argument("--force", action="store_true", help="replace an existing exported bot folder")
    args = parser.parse_args(argv)
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
