"""Learning benchmark: does the default trainer make a bot that reaches the ball, scores, and keeps improving?

    python -m bench.learning --minutes 10                    # default config, 20 games per opponent and mode
    python -m bench.learning --minutes 30 --milestones 10    # also: the final model vs the model at 10 minutes
    python -m bench.learning --minutes 10 --set league.matches.1v1=0 --json

1. Trains a fresh run as a user would (``train_sb3.py`` in a subprocess, schedules over the configured
   ``training.total_timesteps``) for ``--minutes`` of wall-clock time, then stops it with SIGTERM: the
   interrupted pair is the model measured (the final pair if the run ended first). ``--milestones M ...`` sends SIGUSR1
   at those minutes, which saves a checkpoint pair to compare against.
2. Plays the final model (blue) against idle, random, the scripted ball-chaser, the run's first league snapshot
   and every milestone, deterministic and stochastic (``play/match.py``, the same code as ``evaluate.py``), and
   prints per opponent: touch rate, goals for and against per game, win rate, and win rate of decided games.
   ``--episodes`` games each (20), but ``--version-episodes`` (100) stochastic games against each milestone: two
   versions of the bot draw most of their games, and two deterministic bots play only one game per kickoff spot.
3. Saves a PNG of the league rating and win-rate curves of the run (from its TensorBoard events).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

REPO = Path(__file__).resolve().parent.parent
SCRIPTED = ("idle", "random", "chaser")
EXIT_USAGE = 2
STARTUP_TIMEOUT_S = 300  # longest wait for a run to be set up before its minutes start counting


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.learning", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0,
                        help="wall-clock training time, counted from when the run is set up (default 10)")
    parser.add_argument("--milestones", type=float, nargs="*", default=[],
                        help="minutes at which a checkpoint is saved (SIGUSR1) to play the final model against")
    parser.add_argument("--config", help="config file (default: ./config.yaml, else the repository's)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--episodes", type=int, default=20, help="games per opponent and mode (default 20)")
    parser.add_argument("--version-episodes", type=int, default=100,
                        help="stochastic games against each milestone and --against model (default 100): between "
                             "two versions of the bot most games are draws, and deterministic ones repeat")
    parser.add_argument("--out", default="bench_runs", help="folder for the run's checkpoints, logs and the PNG")
    parser.add_argument("--seed", type=int, default=10_000, help="seed of the evaluation games")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.add_argument("--against", nargs="*", default=[], metavar="MODEL.zip",
                        help="more saved models to play the final model against (e.g. a league snapshot)")
    parser.add_argument("--run", help="skip training: measure the interrupted pair of this existing run folder "
                                      "(checkpoints/<run>, its TensorBoard run in the sibling logs/)")
    args = parser.parse_args(argv)
    if (args.minutes <= 0 or args.episodes < 1 or args.version_episodes < 1
            or any(m <= 0 or m >= args.minutes for m in args.milestones)):
        parser.error("--minutes must be > 0, --episodes and --version-episodes >= 1, and every milestone between 0 "
                     "and --minutes")
    return args


def train_for(args: argparse.Namespace, run_name: str) -> tuple[Path, list[Path], str]:
    """Run ``train_sb3.py`` for ``args.minutes``; returns the run folder, the milestone pairs and the output."""
    out = Path(args.out)
    cmd = [sys.executable, str(REPO / "train_sb3.py"), "--run-name", run_name, "--checkpoint-dir",
           str(out / "checkpoints"), "--log-dir", str(out / "logs"), "--set", "logging.progress_bar=false"]
    if args.config:
        cmd += ["--config", args.config]
    for item in args.set:
        cmd += ["--set", item]
    run_dir = out / "checkpoints" / run_name
    log = out / f"{run_name}.log"
    out.mkdir(parents=True, exist_ok=True)
    with log.open("w") as output:
        proc = subprocess.Popen(cmd, stdout=output, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONPATH=str(REPO)))
        milestones: list[Path] = []
        try:
            # The clock starts when the run is set up (its config.yaml is written just before training starts),
            # so that a slow start (imports, workers, a busy machine) does not eat into the training minutes.
            deadline = time.monotonic() + STARTUP_TIMEOUT_S
            while not (run_dir / "config.yaml").is_file() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
            start = time.monotonic()
            for minute in sorted(args.milestones) + [args.minutes]:
                while time.monotonic() - start < minute * 60:
                    if proc.poll() == 0:  # training.total_timesteps reached before the time was up
                        return run_dir, milestones, log.read_text()
                    if proc.poll() is not None:
                        raise RuntimeError(f"training stopped early (exit {proc.returncode}); see {log}")
                    time.sleep(1.0)
                if minute == args.minutes:
                    break
                before = set(run_dir.glob("model_snapshot_*.zip"))
                proc.send_signal(signal.SIGUSR1)  # a snapshot pair, which checkpoint pruning never deletes
                deadline = time.monotonic() + 120
                while not (set(run_dir.glob("model_snapshot_*.zip")) - before) and time.monotonic() < deadline:
                    time.sleep(0.2)
                new = sorted(set(run_dir.glob("model_snapshot_*.zip")) - before)
                milestones += new[-1:]
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
    return run_dir, milestones, log.read_text()


def evaluate(run_dir: Path, milestones: list[Path], episodes: int, seed: int,
             version_episodes: int) -> list[dict[str, Any]]:
    """The final model against every opponent, deterministic and stochastic: ``episodes`` games each, and
    ``version_episodes`` stochastic games against each of ``milestones`` (is the bot better than it was?)."""
    from league.league import LADDER_NAME, LEAGUE_DIR
    from play.match import load_policy_driver, lookup_table, make_driver, play_episodes, summarize_episodes
    from training.config import load_config

    cfg = load_config(run_dir / "config.yaml")
    # Every run is measured from the same start states (the configured mutators, kickoffs by default), also
    # when it trained with random starts, so that runs with different settings compare.
    env_cfg, rewards = dict(cfg["environment"], random_start_share=0.0), cfg["rewards"]
    table = lookup_table(env_cfg)
    # SIGTERM saved the interrupted pair; a run that reached training.total_timesteps first saved the final one.
    final = max((run_dir / name for name in ("model_interrupted.zip", "model_final.zip") if (run_dir / name).is_file()),
                key=lambda path: path.stat().st_mtime)
    opponents = [(name, name) for name in SCRIPTED]
    ladder = run_dir / LEAGUE_DIR / LADDER_NAME
    if ladder.is_file() and json.loads(ladder.read_text()).get("first_snapshot"):
        first = json.loads(ladder.read_text())["first_snapshot"]
        opponents.append((f"first snapshot ({first})", str(run_dir / LEAGUE_DIR / f"model_{first}.zip")))
    versions = [(f"milestone {path.stem}" if path.stem.startswith("model_snapshot_") else path.stem, str(path))
                for path in milestones]
    opponents += versions
    rows = []
    for deterministic in (True, False):
        me = load_policy_driver(final, deterministic)
        for label, opponent in opponents:
            driver = make_driver(opponent, table, seed, deterministic)
            n_games = version_episodes if not deterministic and (label, opponent) in versions else episodes
            games = play_episodes(me, driver, env_cfg, rewards, 1, n_games, seed)
            summary = summarize_episodes(games)
            decided = summary["win_rate"] + summary["loss_rate"]
            rows.append({"opponent": label, "mode": "deterministic" if deterministic else "stochastic",
                         "touch_rate": summary["touch_rate"]["blue"],
                         "goals_for": summary["goals_for_per_episode"],
                         "goals_against": summary["goals_against_per_episode"],
                         "win_rate": summary["win_rate"],
                         "decided_win_rate": summary["win_rate"] / decided if decided else None,
                         "spots_touched": summary["start_spots_touched"], "spots": summary["start_spots"],
                         "episodes": summary["episodes"]})
    return rows


def format_rows(rows: list[dict[str, Any]]) -> str:
    header = ("opponent", "mode", "games", "touch", "spots touched", "goals for", "against", "win", "win of decided")
    table = [header] + [(r["opponent"], r["mode"], str(r["episodes"]), f"{r['touch_rate']:.0%}",
                         f"{r['spots_touched']}/{r['spots']}",
                         f"{r['goals_for']:.2f}", f"{r['goals_against']:.2f}", f"{r['win_rate']:.0%}",
                         "-" if r["decided_win_rate"] is None else f"{r['decided_win_rate']:.0%}") for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def plot_curves(log_dir: Path, png: Path) -> Optional[Path]:
    """League rating and win rates over the run, from its TensorBoard events; None without a league."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    acc.Reload()
    tags = acc.Tags()["scalars"]
    if "league/rating" not in tags:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    events = acc.Scalars("league/rating")
    top.plot([e.step for e in events], [e.value for e in events], color="tab:blue", label="current policy")
    for name, value in (("idle", 0.0 - 3.0), ("random", 8.0 - 3.0), ("chaser", 25.0 - 3.0)):
        top.axhline(value, color="grey", linestyle=":", linewidth=1)
        top.text(0, value, f" {name}", va="bottom", fontsize=8, color="grey")
    top.set_ylabel("rating (mu - 3 sigma)")
    top.legend(loc="lower right")
    for tag in sorted(t for t in tags if t.startswith("league/win_rate/")):
        events = acc.Scalars(tag)
        bottom.plot([e.step for e in events], [e.value for e in events], label=tag.rsplit("/", 1)[1], linewidth=1)
    bottom.set_ylabel("win rate (last 100 games)")
    bottom.set_xlabel("training steps")
    bottom.set_ylim(-0.02, 1.02)
    bottom.legend(loc="upper left", fontsize=8)
    fig.suptitle(f"League: {log_dir.name}")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return png


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    from training.config import ConfigError, load_config

    try:
        load_config(args.config, args.set)  # a bad key stops here, before minutes of training
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.run:
        run_dir = Path(args.run)
        if not (run_dir / "model_interrupted.zip").is_file():
            print(f"error: --run {run_dir}: no model_interrupted.zip there; --run measures an existing run folder "
                  "(checkpoints/<run>). To train a new run into a folder, use --out.", file=sys.stderr)
            return EXIT_USAGE
        run_name, steps = run_dir.name, ""
        milestones = []
        log_root = run_dir.parent.parent / "logs"
    else:
        run_name = f"learning_{time.strftime('%Y%m%d-%H%M%S')}"
        print(f"Training {run_name} for {args.minutes:g} minutes ...", flush=True)
        run_dir, milestones, output = train_for(args, run_name)
        steps = next((line for line in output.splitlines() if "stopped at" in line or line.startswith("Done:")),
                     "").strip()
        print(steps or output[-2000:], flush=True)
        log_root = Path(args.out) / "logs"
    rows = evaluate(run_dir, milestones + [Path(p) for p in args.against], args.episodes, args.seed,
                    args.version_episodes)
    print(f"\nFinal model of {run_name} (blue) vs each opponent (1v1, the run's state mutators without random "
          "starts, its timeouts):")
    print(format_rows(rows))
    png = plot_curves(log_root / run_name, Path(args.out) / f"{run_name}_league.png")
    if png:
        print(f"\nRating and win-rate curves: {png}")
    if args.json:
        print(json.dumps({"run": run_name, "minutes": None if args.run else args.minutes, "stopped": steps, "rows": rows,
                          "png": str(png) if png else None}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
