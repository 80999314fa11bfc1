"""Print a run's league ladder: every rated player, best conservative skill (mu - 3 sigma) first.

    python -m league.ladder                 # the most recently saved run in ./checkpoints
    python -m league.ladder PPO_3           # a run by name (or a run folder)
    python -m league.ladder PPO_3 --json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Optional

from league.league import LADDER_NAME, LEAGUE_DIR
from training.runs import run_folders

EXIT_USAGE = 2


def find_ladder(run: Optional[str], checkpoint_root: Path) -> Path:
    """``ladder.json`` of ``run`` (a name in ``checkpoint_root`` or a folder), or of the newest run having one.

    :raises FileNotFoundError: no such run, or it has no league.
    """
    if run is None:
        for folder in run_folders(checkpoint_root):
            if (folder / LEAGUE_DIR / LADDER_NAME).is_file():
                return folder / LEAGUE_DIR / LADDER_NAME
        raise FileNotFoundError(f"no run in '{checkpoint_root}' has a league ladder yet (league matches write "
                                f"{LEAGUE_DIR}/{LADDER_NAME} in the run folder); pass --checkpoint-dir or a run.")
    folder = Path(run) if Path(run).is_dir() else checkpoint_root / run
    path = folder / LEAGUE_DIR / LADDER_NAME
    if not path.is_file():
        raise FileNotFoundError(f"'{path}' not found: no run '{run}' with league matches in '{checkpoint_root}'.")
    return path


def format_ladder(state: dict) -> str:
    rows = [("#", "player", "kind", "rating", "mu", "sigma", "W-D-L")]
    for i, r in enumerate(state["ratings"], 1):
        name = r["name"] + (" (first snapshot)" if r["name"] == state.get("first_snapshot") else "")
        rows.append((str(i), name, r["kind"], f"{r['ordinal']:.1f}", f"{r['mu']:.1f}", f"{r['sigma']:.2f}",
                     f"{r['wins']}-{r['draws']}-{r['losses']}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join([f"League ladder at {state['steps']:,} steps (rating = mu - 3 sigma; scripted bots are fixed "
                      "anchors; W-D-L from the current policy's games, a past version's from its games against "
                      "the current policy)", *lines])


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Print a run's league ladder (ratings of the current policy, its "
                                                 "past versions and the scripted anchors).")
    parser.add_argument("run", nargs="?", help="run name or folder (default: the most recent run with a league)")
    parser.add_argument("--checkpoint-dir", default="./checkpoints", help="root of the run folders")
    parser.add_argument("--json", action="store_true", help="print the ladder file's JSON")
    args = parser.parse_args(argv)
    try:
        path = find_ladder(args.run, Path(args.checkpoint_dir))
        state = json.loads(path.read_text())
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps(state) if args.json else format_ladder(state))
    return 0


if __name__ == "__main__":
    sys.exit(main())
