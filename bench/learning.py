"""Learning benchmark: does the trainer make a bot that reaches the ball, scores, and keeps improving, and is one
config better than another?

    python -m bench.learning --minutes 10                               # one run of the default config
    python -m bench.learning --steps 3000000 --every 1000000 --seeds 3  # 3 seeds, fixed step budget, curves
    python -m bench.learning --steps 3000000 --every 1000000 --seeds 3 \\
        --compare new:default old:curriculum.enabled=false               # two configs, the same way, and the verdict
    python -m bench.learning --minutes 30 --milestones 10               # also: the final model vs minute 10

1. **Trains** every (config, seed) as a user would (``train_sb3.py`` in a subprocess, schedules over the configured
   ``training.total_timesteps``): for ``--minutes`` of wall-clock time (then SIGTERM; ``--milestones`` minutes send
   SIGUSR1 for a pair to compare against), or up to ``--steps`` (``train_sb3.py --stop-at-steps``, a pair every
   ``--every`` steps: the learning curve). Seeds run side by side when the machine has the cores (``--parallel``).
   A run folder that already holds its final pair is measured again without training.
2. **Plays** every saved model of every run (:mod:`bench.games`) against idle, random, the scripted chaser, the
   run's first league snapshot (final model only) and each earlier model of the run: stochastic games and
   deterministic ones from exact and jittered kickoffs, from both sides.
3. **Reports** per config, model and opponent: touch rate, goals for and against per game and the win rate of
   decided games, each as the mean over seeds with its 95% interval over seeds and games (:mod:`bench.stats`),
   steps-to-threshold per seed (first model with deterministic touch >= 90% and >= 0.5 goals per game against idle),
   and with ``--compare`` the difference of every final metric with its interval and whether it is significant.
   Writes the JSON (``--json`` also prints it as the last line), a PNG of the learning curves (mean and interval band)
   and the league rating PNG of every run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

REPO = Path(__file__).resolve().parent.parent
SCRIPTED = ("idle", "random", "chaser")
EXIT_USAGE = 2
STARTUP_TIMEOUT_S = 300  # longest wait for a run to be set up before its minutes start counting
#: Cores one training run gets when seeds run side by side (``--parallel 0``: cores // this, at least 1).
CORES_PER_RUN = 4
MODES = ("deterministic", "stochastic")
METRICS = ("touch_rate", "goals_for", "goals_against", "decided_win_rate")


@dataclass
class Arm:
    """One config of the benchmark: its name and ``--set`` overrides (after the shared ``--config`` / ``--set``)."""

    name: str
    config: Optional[str] = None
    overrides: list[str] = field(default_factory=list)


def parse_arm(text: str, index: int) -> Arm:
    """``[NAME:]SPEC``: SPEC is ``default``, a ``.yaml`` file merged over the config, or ``KEY=VALUE[,KEY=VALUE]``."""
    name, _, spec = text.partition(":") if ":" in text.split("=", 1)[0] else (chr(ord("A") + index), "", text)
    if spec in ("", "default"):
        return Arm(name)
    if spec.endswith((".yaml", ".yml")):
        return Arm(name, config=spec)
    return Arm(name, overrides=[item for item in spec.split(",") if item])


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.learning", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=float, help="wall-clock training time per run, counted from when the run is "
                                                      "set up (default 10 when --steps is not given)")
    budget.add_argument("--steps", type=int, help="step budget per run (holds on any machine; prefer it to compare)")
    parser.add_argument("--every", type=int, help="with --steps: a pair every this many steps (the learning curve)")
    parser.add_argument("--milestones", type=float, nargs="*", default=[],
                        help="with --minutes: minutes at which a pair is saved (SIGUSR1) to measure and play against")
    parser.add_argument("--seeds", type=int, default=1, help="independent runs per config (training.seed + 0..K-1)")
    parser.add_argument("--compare", nargs="+", metavar="[NAME:]SPEC",
                        help="configs to compare, each 'default', a .yaml file, or KEY=VALUE[,KEY=VALUE]")
    parser.add_argument("--parallel", type=int, default=0,
                        help=f"runs at once (0: one per {CORES_PER_RUN} cores, at least 1)")
    parser.add_argument("--config", help="config file of every run (default: ./config.yaml, else the repository's)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override of every run")
    parser.add_argument("--stochastic-games", type=int, default=100,
                        help="stochastic games per opponent for each final model (default 100)")
    parser.add_argument("--exact-games", type=int, default=10,
                        help="deterministic games from exact kickoffs per opponent (default 10: 5 spots x 2 sides)")
    parser.add_argument("--jittered-games", type=int, default=40,
                        help="deterministic games from jittered kickoffs per opponent (default 40)")
    parser.add_argument("--curve-games", type=int, default=40,
                        help="stochastic games per opponent for the models before the final one (default 40)")
    parser.add_argument("--episodes", type=int,
                        help="shorthand: this many games of every kind (stochastic, exact, jittered, curve)")
    parser.add_argument("--version-episodes", type=int, default=100,
                        help="stochastic games of the final model against each earlier model of its run (default "
                             "100): between two versions of the bot most games are draws")
    parser.add_argument("--touch-threshold", type=float, default=0.9,
                        help="steps-to-threshold: deterministic touch rate against idle (default 0.9)")
    parser.add_argument("--goal-threshold", type=float, default=0.5,
                        help="steps-to-threshold: deterministic goals per game against idle (default 0.5)")
    parser.add_argument("--out", default="bench_runs", help="folder for the runs' checkpoints, logs, JSON and PNGs")
    parser.add_argument("--seed", type=int, default=10_000, help="seed of the evaluation games")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object on the last line")
    parser.add_argument("--against", nargs="*", default=[], metavar="MODEL.zip",
                        help="more saved models the final models play (e.g. another run's bot)")
    parser.add_argument("--run", action="append", default=[], metavar="[NAME=]RUN_DIR",
                        help="skip training: measure this existing run folder (checkpoints/<run>) as a seed of config "
                             "NAME (default A); repeatable: runs of one NAME are its seeds, two NAMEs are compared")
    parser.add_argument("--reports", nargs="+", default=[], metavar="REPORT.json",
                        help="skip training and games: put together the runs of earlier reports (e.g. one --run "
                             "each, measured while other runs trained) and report them as one")
    args = parser.parse_args(argv)
    if args.minutes is None and args.steps is None:
        args.minutes = 10.0
    if args.episodes is not None:
        args.stochastic_games = args.exact_games = args.jittered_games = args.curve_games = args.episodes
    counts = (args.stochastic_games, args.exact_games, args.jittered_games, args.curve_games, args.version_episodes)
    if (args.minutes is not None and args.minutes <= 0) or (args.steps is not None and args.steps < 1) \
            or args.seeds < 1 or min(counts) < 0 or args.stochastic_games + args.exact_games + args.jittered_games < 1:
        parser.error("--minutes must be > 0, --steps and --seeds >= 1, game counts >= 0 (and some games to play)")
    if any(m <= 0 or args.minutes is None or m >= args.minutes for m in args.milestones):
        parser.error("--milestones need --minutes, each between 0 and --minutes")
    if args.every is not None and (args.steps is None or not 0 < args.every < args.steps):
        parser.error("--every needs --steps and must be between 1 and --steps")
    if args.compare is not None and len(args.compare) < 2:
        parser.error("--compare needs at least two configs")
    if (args.run or args.reports) and args.compare:
        parser.error("--run and --reports measure existing runs; they do not go with --compare (name runs NAME=DIR)")
    return args


# ------------------------------------------------------------------------------------------------ training
def train_command(args: argparse.Namespace, arm: Arm, seed_offset: int, run_name: str, workers: int) -> list[str]:
    out = Path(args.out)
    cmd = [sys.executable, str(REPO / "train_sb3.py"), "--run-name", run_name, "--checkpoint-dir",
           str(out / "checkpoints"), "--log-dir", str(out / "logs"), "--set", "logging.progress_bar=false"]
    config = arm.config or args.config
    if config:
        cmd += ["--config", config]
    # The same layout on any machine (scale 1: the 2-core counts), so step budgets compare across machines, unless a
    # --set or the arm sets the scale.
    overrides = ["environment.selfplay.scale=1"] + list(args.set) + list(arm.overrides)
    from config import load_config

    base_seed = load_config(config, overrides).training.seed
    overrides.append(f"training.seed={base_seed + seed_offset}")
    if workers:
        overrides.append(f"environment.selfplay.num_workers={workers}")
    if args.steps is not None:
        cmd += ["--stop-at-steps", str(args.steps)]
        if args.every:
            overrides += [f"checkpoints.save_freq={args.every}", "checkpoints.keep_last=0"]
    for item in overrides:
        cmd += ["--set", item]
    return cmd


def train_run(args: argparse.Namespace, cmd: list[str], run_dir: Path, log: Path) -> str:
    """Run one training to its budget; returns the line saying where it stopped."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as output:
        path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))  # keeps the user's parts'
        proc = subprocess.Popen(cmd, stdout=output, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONPATH=path))
        try:
            if args.steps is not None:
                if proc.wait() != 0:
                    raise RuntimeError(f"training stopped with exit {proc.returncode}; see {log}")
            else:
                _timed(args, proc, run_dir, log)
        finally:
            if proc.poll() is None:
                proc.kill()
    text = log.read_text()
    return next((line for line in text.splitlines() if "stopped at" in line or line.startswith("Done:")), "").strip()


def _timed(args: argparse.Namespace, proc: subprocess.Popen, run_dir: Path, log: Path) -> None:
    """``--minutes``: the clock starts when the run is set up (its config.yaml is written just before training
    starts), so that a slow start does not eat into the training minutes; SIGUSR1 at each milestone."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not (run_dir / "config.yaml").is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    start = time.monotonic()
    for minute in sorted(args.milestones) + [args.minutes]:
        while time.monotonic() - start < minute * 60:
            if proc.poll() == 0:  # training.total_timesteps reached before the time was up
                return
            if proc.poll() is not None:
                raise RuntimeError(f"training stopped early (exit {proc.returncode}); see {log}")
            time.sleep(1.0)
        if minute == args.minutes:
            break
        before = set(run_dir.glob("model_snapshot_*.zip"))
        proc.send_signal(signal.SIGUSR1)  # a snapshot pair, which checkpoint pruning never deletes
        wait_until = time.monotonic() + 120
        while not (set(run_dir.glob("model_snapshot_*.zip")) - before) and time.monotonic() < wait_until:
            time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=300)


# ------------------------------------------------------------------------------------------------ models
def final_model(run_dir: Path) -> Optional[Path]:
    """The run's last pair: the final one (budget reached) or the interrupted one (SIGTERM), the newer of the two."""
    found = [run_dir / name for name in ("model_final.zip", "model_interrupted.zip") if (run_dir / name).is_file()]
    return max(found, key=lambda path: path.stat().st_mtime) if found else None


def run_models(run_dir: Path, checkpoints: bool = True) -> list[tuple[int, Path]]:
    """(steps, model) of the run's models in step order: its periodic checkpoints (the curve of a ``--steps`` run;
    left out for a timed run, which saves them at the config's own ``save_freq``), milestones (SIGUSR1), then the
    final pair."""
    from training.model_files import read_model_data

    final = final_model(run_dir)
    if final is None:
        raise FileNotFoundError(f"run folder '{run_dir}' has no model_final.zip or model_interrupted.zip")
    data = read_model_data(final)
    rollout = int(data["n_steps"]) * int(data["n_envs"])
    final_steps = int(data["num_timesteps"])
    models = {final_steps: final}
    found = sorted(run_dir.glob("checkpoint_*.zip")) if checkpoints else []
    for path in found + sorted(run_dir.glob("model_snapshot_*.zip")):
        steps = int(read_model_data(path)["num_timesteps"])
        if final_steps - steps >= rollout:  # a pair saved in the final pair's last rollout is the same policy
            models.setdefault(steps, path)
    all_steps = sorted(models)
    return [(s, models[s]) for s in all_steps[:-1]] + [(all_steps[-1], final)]


def _games_process_init() -> None:
    """A games process plays on one core: one torch thread (the others run the other processes' games)."""
    from vecenv.subproc import limit_threads_in_this_process

    limit_threads_in_this_process()


def measure_run(args: argparse.Namespace, run_dir: Path, processes: int = 1) -> dict[str, Any]:
    """Every model of the run against every opponent (:mod:`bench.games`): per model, its steps and game records.

    :param processes: games processes; above 1 the (model, opponent) pairs are played side by side (one core each).
    """
    from bench.games import GameCounts, play_model
    from league.league import LADDER_NAME, LEAGUE_DIR
    from config import load_config
    from training.model_files import read_model_data

    cfg = load_config(run_dir / "config.yaml")
    # Every run is measured from the same start states (kickoffs), also when it trained with random starts.
    env_cfg, rewards = cfg.environment.model_copy(update={"random_start_share": 0.0}), cfg.rewards
    models = run_models(run_dir, checkpoints=args.minutes is None or bool(args.run))
    # (model index, against another model: its stochastic games only, play_model's arguments)
    tasks: list[tuple[int, bool, tuple]] = []
    for i, (steps, path) in enumerate(models):
        last = i == len(models) - 1
        counts = GameCounts(args.stochastic_games if last else args.curve_games, args.exact_games,
                            args.jittered_games)
        tasks += [(i, False, (path, {name: name}, env_cfg, rewards, counts, args.seed)) for name in SCRIPTED]
        if last:
            versions: dict[str, str] = {f"model at {s:,} steps": str(p) for s, p in models[:-1]}
            ladder = run_dir / LEAGUE_DIR / LADDER_NAME
            first = json.loads(ladder.read_text()).get("first_snapshot") if ladder.is_file() else None
            data = read_model_data(path)
            rollout = int(data["n_steps"]) * int(data["n_envs"])
            if first and all(abs(int(first.rsplit("_", 1)[1]) - s) >= rollout for s, _ in models[:-1]):
                versions[f"first league snapshot ({first})"] = str(run_dir / LEAGUE_DIR / f"model_{first}.zip")
            versions.update({Path(p).stem: p for p in args.against})
            if args.version_episodes:
                tasks += [(i, True, (path, {label: opponent}, env_cfg, rewards,
                                     GameCounts(args.version_episodes, 0, 0), args.seed))
                          for label, opponent in versions.items()]
    if processes > 1 and len(tasks) > 1:
        import multiprocessing as mp

        with ProcessPoolExecutor(max_workers=min(processes, len(tasks)), mp_context=mp.get_context("spawn"),
                                 initializer=_games_process_init) as pool:
            played = list(pool.map(play_model, *zip(*(call for _, _, call in tasks))))
    else:
        played = [play_model(*call) for _, _, call in tasks]
    out = []
    for i, (steps, path) in enumerate(models):
        games: dict[str, dict[str, Any]] = {}
        for (index, versus_model, _), result in zip(tasks, played):
            if index == i:
                games.update({label: {"stochastic": rows["stochastic"]} if versus_model else rows
                              for label, rows in result.items()})
        print(f"{run_dir.name}: played the model at {steps:,} steps ({sum(len(r) for m in games.values() for r in m.values())}"
              " games)", flush=True)
        out.append({"steps": steps, "model": str(path),
                    "games": {label: {mode: [g.to_json() for g in rows] for mode, rows in per_mode.items()}
                              for label, per_mode in games.items()}})
    return {"run": run_dir.name, "models": out}


def job(args: argparse.Namespace, arm: Arm, seed_offset: int, workers: int, game_processes: int = 1) -> dict[str, Any]:
    """Train (unless its final pair is there) and measure one (config, seed) with ``game_processes`` games
    processes."""
    run_name = f"{arm.name}_s{seed_offset}"
    run_dir = Path(args.out) / "checkpoints" / run_name
    stopped = "reused: the run folder already held its final pair"
    if final_model(run_dir) is None or args.minutes is not None:
        cmd = train_command(args, arm, seed_offset, run_name, workers)
        if args.minutes is not None and run_dir.exists():
            run_name = f"{run_name}_{time.strftime('%Y%m%d-%H%M%S')}"  # timed runs are never reused
            run_dir = run_dir.with_name(run_name)
            cmd[cmd.index("--run-name") + 1] = run_name
        print(f"Training {run_name} ...", flush=True)
        stopped = train_run(args, cmd, run_dir, Path(args.out) / f"{run_name}.log")
        print(f"{run_name}: {stopped}", flush=True)
    result = measure_run(args, run_dir, game_processes)
    result.update(arm=arm.name, seed=seed_offset, stopped=stopped)
    return result


# ------------------------------------------------------------------------------------------------ report
def metric_groups(runs: list[dict[str, Any]], index: int, opponent: str, mode: str, metric: str) -> list[list[float]]:
    """Per run (seed): the per-game values of ``metric`` for model ``index`` (-1: final) against ``opponent``."""
    groups = []
    for run in runs:
        models = run["models"]
        if not -len(models) <= index < len(models):
            continue
        games = models[index]["games"].get(opponent, {}).get(mode, [])
        if metric == "touch_rate":
            groups.append([float(g["touched"]) for g in games])
        elif metric == "goals_for":
            groups.append([float(g["goals_for"]) for g in games])
        elif metric == "goals_against":
            groups.append([float(g["goals_against"]) for g in games])
        else:  # decided_win_rate: only games with a goal margin
            groups.append([float(g["goals_for"] > g["goals_against"]) for g in games
                           if g["goals_for"] != g["goals_against"]])
    return groups


def summarize(runs: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """Per model index (in step order) and opponent and mode: every metric's mean and interval over the runs."""
    from bench.stats import interval

    n_models = min(len(run["models"]) for run in runs)
    rows = []
    for k in range(n_models):
        index = k - n_models  # aligned from the final model backwards: the runs' curves share their last points
        steps = [run["models"][index]["steps"] for run in runs]
        opponents = sorted({label for run in runs for label in run["models"][index]["games"]},
                           key=lambda o: (o not in SCRIPTED, SCRIPTED.index(o) if o in SCRIPTED else 0, o))
        for opponent in opponents:
            for mode in MODES:
                groups = {m: metric_groups(runs, index, opponent, mode, m) for m in METRICS}
                games = sum(len(g) for g in groups["touch_rate"])
                if not games:
                    continue
                row = {"model": k, "steps": int(sum(steps) / len(steps)), "opponent": opponent, "mode": mode,
                       "games": games, "seeds": len(groups["touch_rate"])}
                for metric, values in groups.items():
                    ci = interval(values, seed)
                    row[metric] = ci.to_json() if ci else None
                if mode == "deterministic":
                    row["spots_touched"] = [_spots(run["models"][index]["games"][opponent][mode]) for run in runs
                                            if opponent in run["models"][index]["games"]]
                rows.append(row)
    return rows


def _spots(games: list[dict[str, Any]]) -> str:
    """``touched/played`` distinct exact kickoff starts (spot and side)."""
    starts = {tuple(g["start"]) for g in games if not g["jittered"]}
    touched = {tuple(g["start"]) for g in games if not g["jittered"] and g["touched"]}
    return f"{len(touched)}/{len(starts)}"


def steps_to_threshold(run: dict[str, Any], touch: float, goals: float) -> Optional[int]:
    """Steps of the run's first model whose deterministic games against idle reach both thresholds."""
    for model in run["models"]:
        games = model["games"]["idle"]["deterministic"]
        if games and sum(g["touched"] for g in games) / len(games) >= touch \
                and sum(g["goals_for"] for g in games) / len(games) >= goals:
            return model["steps"]
    return None


def compare(arms: dict[str, list[dict[str, Any]]], seed: int) -> list[dict[str, Any]]:
    """Every final metric of each later arm minus the first arm's, with its interval and significance."""
    from bench.stats import difference

    names = list(arms)
    base, rows = names[0], []
    for other in names[1:]:
        opponents = [o for o in SCRIPTED if all(o in run["models"][-1]["games"] for run in arms[other] + arms[base])]
        for opponent in opponents:
            for mode in MODES:
                for metric in METRICS:
                    diff = difference(metric_groups(arms[other], -1, opponent, mode, metric),
                                      metric_groups(arms[base], -1, opponent, mode, metric), seed)
                    if diff is not None:
                        rows.append({"a": other, "b": base, "opponent": opponent, "mode": mode, "metric": metric,
                                     **diff.to_json()})
    return rows


def _fmt(ci: Optional[dict[str, float]], percent: bool) -> str:
    if ci is None:
        return "-"
    if percent:
        return f"{ci['mean']:.0%} [{ci['low']:.0%},{ci['high']:.0%}]"
    return f"{ci['mean']:.2f} [{ci['low']:.2f},{ci['high']:.2f}]"


def format_table(header: tuple[str, ...], body: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [header, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_summary(rows: list[dict[str, Any]], final_only: bool = True) -> str:
    last = max(row["model"] for row in rows)
    header = ("steps", "opponent", "mode", "seeds", "games", "touch", "goals for", "goals against", "win of decided",
              "spots touched")
    body = [(f"{r['steps']:,}", r["opponent"], r["mode"], str(r["seeds"]), str(r["games"]),
             _fmt(r["touch_rate"], True), _fmt(r["goals_for"], False), _fmt(r["goals_against"], False),
             _fmt(r["decided_win_rate"], True), " ".join(r.get("spots_touched", [])) or "-")
            for r in rows if not final_only or r["model"] == last]
    return format_table(header, body)


def format_compare(rows: list[dict[str, Any]]) -> str:
    header = ("a - b", "opponent", "mode", "metric", "difference [95% interval]", "significant")
    body = [(f"{r['a']} - {r['b']}", r["opponent"], r["mode"], r["metric"],
             f"{r['mean']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}]", "yes" if r["significant"] else "no")
            for r in rows]
    return format_table(header, body)


def plot_learning_curves(summaries: dict[str, list[dict[str, Any]]], png: Path) -> Path:
    """Deterministic touch rate and goals for / against per game against each scripted bot over steps: each config's
    mean over seeds, its 95% band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("touch_rate", "touch rate"), ("goals_for", "goals for per game"),
              ("goals_against", "goals against per game")]
    fig, axes = plt.subplots(len(SCRIPTED), len(panels), figsize=(13, 9), sharex=True, squeeze=False)
    for arm, rows in summaries.items():
        for i, opponent in enumerate(SCRIPTED):
            points = sorted((r for r in rows if r["opponent"] == opponent and r["mode"] == "deterministic"),
                            key=lambda r: r["steps"])
            for j, (metric, label) in enumerate(panels):
                ax = axes[i][j]
                pts = [(r["steps"], r[metric]) for r in points if r[metric] is not None]
                if not pts:
                    continue
                x = [p[0] for p in pts]
                line, = ax.plot(x, [p[1]["mean"] for p in pts], marker="o", label=arm)
                ax.fill_between(x, [p[1]["low"] for p in pts], [p[1]["high"] for p in pts], alpha=0.2,
                                color=line.get_color())
                ax.set_title(f"{label} vs {opponent}", fontsize=9)
                if metric == "touch_rate":
                    ax.set_ylim(-0.02, 1.02)
    for ax in axes[-1]:
        ax.set_xlabel("training steps")
    axes[0][0].legend(fontsize=8)
    fig.suptitle("Learning curves (deterministic games, exact + jittered kickoffs; mean over seeds, 95% band)")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=90)
    plt.close(fig)
    return png


def plot_league(log_dir: Path, png: Path) -> Optional[Path]:
    """League rating and win rates over one run, from its TensorBoard events; None without a league."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    acc.Reload()
    tags = acc.Tags()["scalars"]
    if "league/rating" not in tags:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from league.ratings import ANCHORS

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
    events = acc.Scalars("league/rating")
    top.plot([e.step for e in events], [e.value for e in events], color="tab:blue", label="current policy")
    for name, (mu, sigma) in ANCHORS.items():
        top.axhline(mu - 3 * sigma, color="grey", linestyle=":", linewidth=1)
        top.text(0, mu - 3 * sigma, f" {name}", va="bottom", fontsize=8, color="grey")
    top.set_ylabel("rating (mu - 3 sigma)")
    top.legend(loc="lower right")
    for tag in sorted(t for t in tags if t.startswith("league/win_rate/")):
        events = acc.Scalars(tag)
        bottom.plot([e.step for e in events], [e.value for e in events], label=tag.rsplit("/", 1)[1], linewidth=1)
    if "curriculum/stage" in tags:
        events = acc.Scalars("curriculum/stage")
        for before, after in zip(events, events[1:]):
            if after.value != before.value:
                for ax in (top, bottom):
                    ax.axvline(after.step, color="tab:red", linestyle="--", linewidth=1)
    bottom.set_ylabel("win rate (last 100 games)")
    bottom.set_xlabel("training steps (red: curriculum stage changes)")
    bottom.set_ylim(-0.02, 1.02)
    bottom.legend(loc="upper left", fontsize=8)
    fig.suptitle(f"League: {log_dir.name}")
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return png


def parallel_runs(args: argparse.Namespace, n_jobs: int) -> tuple[int, int, int]:
    """(runs at once, self-play workers per run (0 = the config's own), games processes per run: its share of the
    cores, which measure its models side by side once it trained)."""
    from config.sizing import available_cores

    cores = available_cores()
    at_once = args.parallel or max(1, cores // CORES_PER_RUN)
    at_once = max(1, min(at_once, n_jobs))
    share = max(1, cores // at_once)
    return at_once, (share if at_once > 1 else 0), share


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    from config import ConfigError, load_config

    arms = [parse_arm(text, i) for i, text in enumerate(args.compare or ["default"])]
    if len({arm.name for arm in arms}) != len(arms):
        print("error: --compare: two configs have the same name; name them NAME:SPEC", file=sys.stderr)
        return EXIT_USAGE
    if args.config and any(arm.config for arm in arms):
        print("error: --config and a .yaml config of --compare do not combine (train_sb3.py takes one file); put "
              "the shared keys in each config file, or give them with --set", file=sys.stderr)
        return EXIT_USAGE
    try:
        for arm in arms:  # a bad key stops here, before minutes of training
            load_config(arm.config or args.config, list(args.set) + arm.overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    out = Path(args.out)
    results: dict[str, list[dict[str, Any]]] = {arm.name: [] for arm in arms}
    runs = [item.split("=", 1) if "=" in item else [arms[0].name, item] for item in args.run]
    if runs or args.reports:
        results = {}
        for name, folder in runs:
            if final_model(Path(folder)) is None:
                print(f"error: --run {folder}: no model_final.zip or model_interrupted.zip there; --run measures an "
                      "existing run folder (checkpoints/<run>). To train new runs into a folder, use --out.",
                      file=sys.stderr)
                return EXIT_USAGE
        for report in args.reports:
            if not Path(report).is_file():
                print(f"error: --reports {report}: no such file (a learning_*.json this benchmark wrote)",
                      file=sys.stderr)
                return EXIT_USAGE
            for name, old_runs in json.loads(Path(report).read_text())["runs"].items():
                results.setdefault(name, []).extend(old_runs)
        for name, folder in runs:
            result = measure_run(args, Path(folder), parallel_runs(args, 1)[2])
            result.update(arm=name, stopped="existing run")
            results.setdefault(name, []).append(result)
        arms = [Arm(name) for name in results]
        log_roots = {Path(folder).name: Path(folder).parent.parent / "logs" for _, folder in runs}
    else:
        todo = [(arm, k) for k in range(args.seeds) for arm in arms]  # interleaved: machine noise hits every arm
        at_once, workers, game_processes = parallel_runs(args, len(todo))
        budget = f"{args.steps:,} steps" if args.steps else f"{args.minutes:g} minutes"
        print(f"{len(arms)} config(s) x {args.seeds} seed(s), {budget} each, {at_once} at once", flush=True)
        if at_once == 1:
            done = [job(args, arm, k, workers, game_processes) for arm, k in todo]
        else:
            with ProcessPoolExecutor(max_workers=at_once) as pool:
                done = list(pool.map(job, [args] * len(todo), [a for a, _ in todo], [k for _, k in todo],
                                     [workers] * len(todo), [game_processes] * len(todo)))
        for result in done:
            results[result["arm"]].append(result)
        log_roots = {result["run"]: out / "logs" for result in done}
    summaries = {arm: summarize(runs, args.seed) for arm, runs in results.items()}
    thresholds = {arm: [steps_to_threshold(run, args.touch_threshold, args.goal_threshold) for run in runs]
                  for arm, runs in results.items()}
    for arm_name, rows in summaries.items():
        print(f"\n{arm_name}: final models ({len(results[arm_name])} seed(s)), mean [95% interval over seeds and "
              "games], 1v1 from both sides:")
        print(format_summary(rows))
        reached = ", ".join("not reached" if s is None else f"{s:,}" for s in thresholds[arm_name])
        print(f"steps to touch >= {args.touch_threshold:.0%} and >= {args.goal_threshold:g} goals per game against "
              f"idle (deterministic), per seed: {reached}")
    comparison = compare(results, args.seed) if len(arms) > 1 else []
    if comparison:
        print("\nDifferences of the final models (significant: the 95% interval excludes 0):")
        print(format_compare(comparison))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    png = plot_learning_curves(summaries, out / f"learning_curves_{stamp}.png")
    league_pngs = [str(p) for p in (plot_league(root / name, out / f"{name}_league.png")
                                    for name, root in log_roots.items()) if p]
    print(f"\nLearning curves: {png}" + (f"\nLeague curves: {', '.join(league_pngs)}" if league_pngs else ""))
    report = {"budget": {"steps": args.steps, "minutes": args.minutes, "every": args.every},
              "arms": {arm.name: {"config": arm.config, "overrides": arm.overrides} for arm in arms},
              "runs": {arm: [{k: v for k, v in run.items()} for run in runs] for arm, runs in results.items()},
              "summary": summaries, "steps_to_threshold": thresholds, "compare": comparison, "png": str(png),
              "league_pngs": league_pngs}
    path = out / f"learning_{stamp}.json"
    report["report"] = str(path)
    path.write_text(json.dumps(report))
    print(f"Report: {path}")
    if args.json:
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
