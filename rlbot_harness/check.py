"""``python export_rlbot.py --check BOTDIR``: the exported bot, installed only from its own folder, plays a real-time
match through the stand-in core, and one JSON line says how it went.

Steps: the bot folder's own ``requirements.txt`` goes into a fresh venv (cached, :mod:`rlbot_harness.venv`); the
folder is copied to a scratch folder with that venv as its ``venv`` (the user's folder is left as it is); the
stand-in core (:mod:`rlbot_harness.core`) starts the bot with its ``bot.toml`` run command through the shell and
plays the match at 120 Hz against a scripted opponent; afterwards the bot's decisions are compared with the
trained policy's on the same states.

The check fails (exit 1) when a bot crashed or left, stopped answering for ``SILENCE_LIMIT_S`` during play, or
missed more than ``MAX_MISSED_SHARE`` of its decision ticks (its next action did not arrive before the tick it
was due). A folder that is not an exported bot exits 2.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from config import ConfigError, load_config
from envs.components import lookup_table, make_obs_builder
from rlbot_harness.core import SILENCE_LIMIT_S, BotRecord, MatchOptions, RealTimeMatch, controls_row
from rlbot_harness.driver import check_bot_folder, load_bot_module
from rlbot_harness.venv import VenvError, bot_venv

#: A bot fails the check when more of its decision ticks than this were missed.
MAX_MISSED_SHARE = 0.01
#: The bot's cars in each match mode: (team, position in the team). In 2v2 the bot drives the second blue car
#: and the first orange one (player indices 1 and 2), beside scripted team mates.
BOT_SLOTS = {"1v1": ((0, 0),), "2v2": ((0, 1), (1, 0))}
#: Characters of a bot's own output shown when it fails.
LOG_TAIL = 2500
CONTROL_TOLERANCE = 1e-5


class BadBotFolder(ValueError):
    """Not an exported bot folder (exit 2)."""


class BotFailed(RuntimeError):
    """The bot could not be installed, started or connected (exit 1); the message holds its output tail."""


@dataclass
class CheckOptions:
    seconds: float = 120.0
    mode: str = "1v1"
    opponent: str = "chaser"
    jitter_ms: float = 0.0
    drop: float = 0.0
    open_with_goal: bool = False
    seed: int = 0
    venv_cache: Optional[Path] = None
    #: Keep the scratch folder (the copy the bot ran from, with its logs) and print where it is.
    keep: bool = False


def _log_tail(path: Path) -> str:
    return path.read_text(errors="replace")[-LOG_TAIL:] if path.is_file() else "(no output)"


def _policy(folder: Path, settings: dict[str, Any]) -> tuple[Callable[[np.ndarray], int], str]:
    """The trained policy (its deterministic action for one raw observation): the SB3 model the bot was exported
    from when it is still where the export found it, else the bot's own ``policy.npz`` (checked against the
    model at export time)."""
    source = Path(settings.get("source_model", ""))
    if source.is_file():
        from stable_baselines3 import PPO

        from training.model_files import inspect_pair, read_normalizer

        pair = inspect_pair(source)
        normalizer = read_normalizer(pair.normalizer_path)
        model = PPO.load(pair.model_path, device="cpu")

        def act(obs: np.ndarray) -> int:
            return int(model.predict(normalizer.normalize_obs(obs[None]), deterministic=True)[0][0])

        return act, str(source)
    policy = load_bot_module(folder).NumpyPolicy(folder / "policy.npz")
    return policy.act, str(folder / "policy.npz")


def policy_agreement(record: BotRecord, cfg, act: Callable[[np.ndarray], int]) -> tuple[int, int]:
    """(decisions compared, decisions whose controls equal the policy's action on the state the bot decided on)."""
    obs_builder = make_obs_builder(cfg.environment)
    table = lookup_table(cfg.environment)
    compared = equal = 0
    for decision in record.decisions:
        if decision.controls is None:
            continue
        agents = list(decision.state.cars)
        obs_builder.reset(agents, decision.state, {})
        obs = np.asarray(obs_builder.build_obs(agents, decision.state, {})[record.agent], dtype=np.float32)
        compared += 1
        equal += bool(np.allclose(controls_row(decision.controls), table[act(obs)], atol=CONTROL_TOLERANCE))
    return compared, equal


def run_check(folder: Path, options: CheckOptions) -> dict[str, Any]:
    """Run the check; the report (``passed``, ``failures`` and the figures) as a dict.

    :raises BadBotFolder: not an exported bot folder.
    :raises BotFailed: the bot's requirements do not install, or it did not connect or initialize.
    """
    folder = Path(folder)
    try:
        check_bot_folder(folder)
    except FileNotFoundError as exc:
        raise BadBotFolder(str(exc)) from None
    for name in ("requirements.txt", "training_config.yaml"):
        if not (folder / name).is_file():
            raise BadBotFolder(f"'{folder}' has no {name}: it was not written by this export_rlbot.py. Export it "
                               "again: python export_rlbot.py --model <model.zip> --out <folder>")
    if options.mode not in BOT_SLOTS:
        raise BadBotFolder(f"--mode '{options.mode}': choose one of {', '.join(BOT_SLOTS)}")
    try:
        cfg = load_config(folder / "training_config.yaml")
    except ConfigError as exc:
        raise BadBotFolder(f"{folder / 'training_config.yaml'}: {exc}") from None
    settings = json.loads((folder / "settings.json").read_text())
    try:
        venv, made = bot_venv(folder / "requirements.txt", options.venv_cache)
    except VenvError as exc:
        raise BotFailed(str(exc)) from None

    scratch = Path(tempfile.mkdtemp(prefix="rlbot-check-"))
    run_dir = scratch / folder.resolve().name
    shutil.copytree(folder, run_dir, ignore=shutil.ignore_patterns("venv", "__pycache__"))
    (run_dir / "venv").symlink_to(venv, target_is_directory=True)
    match_options = MatchOptions(seconds=options.seconds, team_size=int(options.mode[0]),
                                 bot_slots=BOT_SLOTS[options.mode], opponent=options.opponent,
                                 jitter_ms=options.jitter_ms, drop=options.drop,
                                 open_with_goal=options.open_with_goal, seed=options.seed)
    try:
        try:
            report = RealTimeMatch(run_dir, cfg, match_options, scratch).run()
        except (TimeoutError, ConnectionError, OSError) as exc:
            tails = "\n".join(f"--- bot{k}.log ---\n{_log_tail(scratch / f'bot{k}.log')}"
                              for k in range(len(match_options.bot_slots)))
            raise BotFailed(f"{exc}\n{tails}") from None
        act, policy_source = _policy(folder, settings)
        failures: list[str] = []
        bots: list[dict[str, Any]] = []  # report rows (JSON)
        agreement: list[tuple[int, int]] = []
        for k, record in enumerate(report.bots):
            compared, equal = policy_agreement(record, cfg, act)
            agreement.append((compared, equal))
            missed_share = record.missed / max(record.decision_ticks, 1)
            log = _log_tail(record.log_path)
            if record.connection_lost or (record.exit_code not in (0, None)):
                failures.append(f"bot {k} crashed or left the match (exit code {record.exit_code}):\n{log}")
            elif record.longest_silence_s > SILENCE_LIMIT_S:
                failures.append(f"bot {k} stopped answering for {record.longest_silence_s:.1f} s during play")
            if record.wrong_index_inputs:
                failures.append(f"bot {k} sent {record.wrong_index_inputs} inputs for another player index than its "
                                f"car's ({record.index}); the core ignores them")
            if missed_share > MAX_MISSED_SHARE:
                failures.append(f"bot {k} missed {record.missed} of {record.decision_ticks} decision ticks "
                                f"({missed_share:.1%} > {MAX_MISSED_SHARE:.0%}): its next action arrived after the "
                                "tick it was due")
            bots.append({
                "team": record.team, "player_index": record.index, "inputs": record.inputs,
                "play_packets": record.play_packets, "late_share": round(record.late / max(record.play_packets, 1), 4),
                "decision_ticks": record.decision_ticks, "missed_decisions": record.missed,
                "missed_share": round(missed_share, 4), "dropped_packets": record.dropped, "touches": record.touches,
                "wrong_index_inputs": record.wrong_index_inputs,
                "policy_decisions": compared, "policy_match": round(equal / max(compared, 1), 4),
                "longest_silence_s": round(record.longest_silence_s, 3), "exit_code": record.exit_code,
            })
        result = {
            "bot": str(folder), "mode": options.mode, "opponent": options.opponent, "seconds": options.seconds,
            "jitter_ms": options.jitter_ms, "drop": options.drop, "ticks": report.ticks,
            "inputs": sum(b["inputs"] for b in bots),
            "late_share": round(sum(r.late for r in report.bots) / max(sum(r.play_packets for r in report.bots), 1), 4),
            "missed_share": round(sum(r.missed for r in report.bots)
                                  / max(sum(r.decision_ticks for r in report.bots), 1), 4),
            "touches": sum(b["touches"] for b in bots), "goals": {"blue": report.blue_goals,
                                                                  "orange": report.orange_goals},
            "kickoffs": report.kickoffs, "phases": report.phases,
            "policy_match": round(sum(e for _, e in agreement) / max(sum(c for c, _ in agreement), 1), 4),
            "policy_source": policy_source, "venv": str(venv), "venv_made": made,
            "wall_s": round(report.wall_s, 1), "core_lag_ticks": report.core_lag_ticks, "bots": bots, "passed": not failures, "failures": failures,
        }
        if options.keep:
            result["scratch"] = str(scratch)
        return result
    finally:
        if not options.keep:
            shutil.rmtree(scratch, ignore_errors=True)
