"""Train a Rocket League bot with Stable-Baselines3 PPO on parallel RocketSim matches.

    python train_sb3.py                         # defaults from ./config.yaml, a new run checkpoints/PPO_<n>/
    python train_sb3.py --run-name kickoffs --set environment.selfplay.matches.2v2=4
    python train_sb3.py --resume latest         # continue the newest readable pair of the newest run
    python train_sb3.py --list-runs             # runs, their steps and best evaluations
    tensorboard --logdir ./logs                 # watch it learn

Reading order: parse arguments, config and the run's folder (every bad input exits 2 before a worker
starts) -> build envs and model -> callbacks -> ``model.learn`` -> save (final; interrupted on Ctrl-C,
SIGTERM, SIGHUP or an error; nothing when training diverged).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import torch as th
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import CallbackList
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import VecEnv

from config.schema import Config, PartSpec, RewardPartSpec, part_name, reward_weight
from config import ConfigError, check_rollout, league_match_counts, load_config
from config.load import SCHEMA_PATH, json_schema, to_yaml
from callbacks import (
    CurriculumCallback,
    EntropyScheduleCallback,
    GradNormCallback,
    LeagueCallback,
    PairCheckpointCallback,
    PendingStopCallback,
    RewardPartsCallback,
    StopAtStepsCallback,
    TrainingHealthCallback,
    TrainingProgressBar,
    health_limits,
    make_eval_callback,
)
from callbacks.torch_threads import make_threads_callback
from config.sizing import available_cores
from vecenv.subproc import close_vec_env, resolve_num_envs
from envs.components import team_sizes
from vecenv.base import MatchesVecEnv
from vecenv.ray_backend import ActorsNotPlaced
from vecenv.selfplay import WorkerError
from league.league import League
from training.model_files import PairInfo
from training.runs import (
    Run,
    check_output_folders,
    find_resume_pair,
    format_runs,
    new_run,
    resumable_pairs,
    run_of_pair,
    write_run_config,
)
from training.saving import DivergedError, named_paths, save_pair
from training.stages import STAGE_ATTRIBUTE, StageSwitch, has_league, stage_cfg, stage_seed, start_curriculum
from training.setup import (
    check_obs_size,
    ent_schedule,
    load_model,
    make_eval_env,
    make_model,
    make_training_env,
    make_vec_env,
    resolve_device,
    set_torch_threads,
)
from curriculum.curriculum import Curriculum
from training.signals import (
    StopRequested,
    hold_stop_signals,
    install_snapshot_handler,
    install_stop_handlers,
    say,
    stop_behind,
)

EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3
EXIT_SAVE_FAILED = 1
EXIT_RUN_FAILED = 1
RULE = "=" * 72


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train a Rocket League bot with SB3 PPO on RocketSim.")
    parser.add_argument("--config", help="config file (default: ./config.yaml, else the repository's; when resuming, "
                                         "the run's own config.yaml)")
    parser.add_argument("--total-timesteps", type=int, help="override training.total_timesteps")
    parser.add_argument("--num-envs", type=int,
                        help="subproc mode: worker processes (disables auto_adjust_envs); self-play sizes itself "
                             "from environment.selfplay")
    parser.add_argument("--stop-at-steps", type=int, metavar="N",
                        help="stop (saving the final pair) once the model has N steps; the learning-rate and entropy "
                             "schedules still run over the whole total_timesteps (the learning benchmark's budgets)")
    parser.add_argument("--seed", type=int, help="override training.seed")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), help="override training.device")
    parser.add_argument("--checkpoint-dir", default="./checkpoints",
                        help="root of the run folders: each run saves into CHECKPOINT_DIR/RUN_NAME/")
    parser.add_argument("--log-dir", default="./logs", help="TensorBoard root: each run logs into LOG_DIR/RUN_NAME/")
    parser.add_argument("--run-name", help="name of a new run (default: PPO_<n+1>); with --resume, continue the "
                                           "model in a new run of this name")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override any config value by dotted path, e.g. --set training.gamma=0.99 (repeatable)")
    parser.add_argument("--resume", metavar="WHAT",
                        help="'latest' (newest readable pair of the newest run), a run name, a run folder, or a "
                             "model .zip")
    parser.add_argument("--list-runs", action="store_true", help="print the runs in --checkpoint-dir and exit")
    parser.add_argument("--print-config", action="store_true",
                        help="print the resolved config (defaults + --config + --set, or the resumed run's) as YAML "
                             "and exit")
    parser.add_argument("--write-schema", action="store_true",
                        help=f"write the JSON Schema of config.yaml to {SCHEMA_PATH.name} (editors complete and "
                             "check config.yaml with it) and exit")
    args = parser.parse_args(argv)
    if args.num_envs is not None and args.num_envs < 1:
        parser.error("--num-envs must be >= 1")
    if args.stop_at_steps is not None and args.stop_at_steps < 1:
        parser.error("--stop-at-steps must be >= 1")
    return args


def describe_device(device: th.device) -> str:
    if device.type != "cuda":
        return f"cpu ({th.get_num_threads()} torch thread(s) in the trainer)"
    props = th.cuda.get_device_properties(device)
    return (f"cuda: {props.name}, {props.total_memory / 2**30:.1f} GB | TF32 matmul: "
            f"{th.backends.cuda.matmul.allow_tf32} | cuDNN benchmark: {th.backends.cudnn.benchmark}")


def describe_reward(name: str, part: Union[float, RewardPartSpec]) -> str:
    """``touch 1`` for a built-in part, ``aerial 2 (my_bot.rewards:AerialTouchReward)`` for a user's."""
    return f"{name} {part.weight:g} ({part.cls})" if isinstance(part, PartSpec) else f"{name} {part:g}"


def describe_curriculum(cfg: Config, curriculum: Optional[Curriculum]) -> str:
    """The banner's curriculum line: the stages, the current one with its mix and gate."""
    if curriculum is None:
        why = "curriculum.enabled false" if not cfg.curriculum.enabled else "subproc mode"
        return f"Curriculum:  off ({why})"
    stage = curriculum.stage
    names = " -> ".join(s.name for s in curriculum.cfg.stages)
    played = stage_cfg(cfg, curriculum).league
    shares = ", ".join(f"{kind} {share:g}" for kind, share in played.shares.model_dump().items())
    gate = stage.advance
    gate_text = ("pinned: no gate" if curriculum.pinned else "last stage" if gate is None else
                 f"advance when, over {curriculum.cfg.window} games against {gate.opponent}, touch >= {gate.touch:.0%} "
                 f"and goal >= {gate.goal:.0%} ({curriculum.cfg.hold} checks in a row)")
    return (f"Curriculum:  stage {curriculum.index + 1}/{len(curriculum.cfg.stages)} '{stage.name}' of {names}; "
            f"league opponents {shares} (scripted: {', '.join(played.scripted)}); {gate_text}")


def print_banner(cfg: Config, model: PPO, device: th.device, num_envs: int, worker_info: dict,
                 total: int, run: Run, config_source: str, resumed_from: Optional[Path],
                 curriculum: Optional[Curriculum] = None) -> None:
    """``cfg``: the config as the current curriculum stage plays it."""
    env, train, norm, ckpt = cfg.environment, cfg.training, cfg.normalize, cfg.checkpoints
    rewards = ", ".join(describe_reward(name, part) for name, part in cfg.rewards.items()
                        if reward_weight(part) != 0)
    threads = f"OMP_NUM_THREADS={worker_info['OMP_NUM_THREADS']}, torch threads={worker_info['torch_threads']}"
    timing = (f"tick_skip {env.tick_skip} ({120 / env.tick_skip:g} decisions/s), episode <= "
              f"{env.episode_seconds:g} s, no-touch timeout {env.no_touch_timeout_seconds:g} s "
              f"({'terminal' if env.no_touch_timeout_terminal else 'truncation'}), "
              f"mutators: {', '.join(map(part_name, env.state_mutators))}")
    if env.vec_env == "selfplay":
        matches = ", ".join(f"{count} x {name}" for name, count in env.selfplay.matches.items() if count)
        league = ", ".join(f"{count} x {name}" for name, count in cfg.league.matches.items() if count)
        workers = len(worker_info["plans"])
        per_worker = sorted({len(plan.matches) for plan in worker_info["plans"]})
        if env.selfplay.backend == "ray":
            hosts = sorted({info["host"] for info in worker_info.get("actors", [])})
            workers_line = (f"Workers:     {workers} Ray actors on {len(hosts)} node(s) ({', '.join(hosts)}; "
                            f"ray.address {cfg.ray.address}), {'-'.join(map(str, per_worker))} match(es) each, "
                            f"each running its matches in local worker processes (shared memory)")
        else:
            workers_line = (f"Workers:     {workers} processes (SelfPlayVecEnv, shared memory), "
                            f"{'-'.join(map(str, per_worker))} match(es) each, {threads}")
        setup = [
            workers_line,
            f"Match:       self-play {matches or 'none'}, league {league or 'none'} = {num_envs} learning cars; "
            f"{timing}",
        ]
        if cfg.sizing is not None:
            workers_why = ("one per core" if env.selfplay.num_workers == 0
                           else "environment.selfplay.num_workers")
            setup.append(f"Sizing:      {cfg.sizing.describe()}; minibatch {model.batch_size}"
                         f"{' (auto: rollout / 4)' if train.batch_size == 'auto' else ''}; {workers} "
                         f"{'actors' if env.selfplay.backend == 'ray' else 'workers'} ({workers_why})")
        if league:
            shares = ", ".join(f"{kind} {share:g}" for kind, share in cfg.league.shares.model_dump().items())
            setup.append(f"League:      opponents {shares} (scripted: {', '.join(cfg.league.scripted)}); "
                         f"snapshot every {cfg.league.snapshot_every:,} steps, pool of "
                         f"{cfg.league.pool_size}")
    else:
        auto = (f" (auto-adjusted: {env.num_envs} asked, {available_cores()} cores x {env.max_envs_per_core})"
                if num_envs != env.num_envs else "")
        setup = [
            f"Workers:     {num_envs} processes (SubprocVecEnv){auto}, {threads}",
            f"Match:       {env.blue_size}v{env.orange_size} (opponents: {env.opponent_policy}), {timing}",
        ]
    obs_shape = model.observation_space.shape
    assert obs_shape is not None and isinstance(model.action_space, spaces.Discrete)  # the env's Box and Discrete
    lines = [
        RULE,
        "ROCKET LEAGUE BOT - PPO TRAINING (Stable-Baselines3 + RocketSim)",
        RULE,
        f"Device:      {describe_device(device)}",
        *setup,
        f"Obs:         {obs_shape[0]} floats ({part_name(env.obs_builder)})   "
        f"Actions: {model.action_space.n} ({env.action_parser})",
        f"Rewards:     {rewards}",
        describe_curriculum(cfg, curriculum),
        "-" * len(RULE),
        f"Rollout:     {num_envs * train.n_steps} ({num_envs} envs x {train.n_steps} steps), minibatch "
        f"{model.batch_size}, {train.n_epochs} epochs, gamma {train.gamma}, GAE lambda {train.gae_lambda}, "
        f"clip {train.clip_range}; collection: {getattr(model, 'pipeline_groups', 1)} group(s) in flight"
        + ("; + mirrored twins" if train.mirror else ""),
        f"Schedules:   LR {train.learning_rate:.0e} -> {train.final_learning_rate:.0e}, entropy "
        f"{train.ent_coef:g} -> {train.final_ent_coef:g} (linear over {total:,} steps)",
        f"Network:     pi {train.net_arch.pi}, vf {train.net_arch.vf}, {train.activation}",
        "Normalize:   obs " + (f"on (clip {norm.clip_obs:g})" if norm.norm_obs else "off (the obs builder's scaling)")
        + ", reward " + (f"on (clip {norm.clip_reward:g})" if norm.norm_reward else "off"),
        f"Steps:       {model.num_timesteps:,} done / {total:,}"
        + (f" (resumed from {resumed_from})" if resumed_from else ""),
        f"Run:         {run.name} (config: {config_source})",
        f"Checkpoints: {run.checkpoint_dir} (every {ckpt.save_freq:,} steps, keep last {ckpt.keep_last or 'all'}; "
        "best_model, model_final; kill -USR1 saves one now)",
        f"TensorBoard: {run.log_dir}   ->   tensorboard --logdir {run.log_dir.parent}",
        RULE,
    ]
    print("\n".join(lines), flush=True)


@dataclass
class Plan:
    """Everything decided before a worker starts."""

    cfg: Config
    #: ``cfg`` as the curriculum's current stage plays it (``cfg`` itself without a curriculum).
    played: Config
    curriculum: Optional[Curriculum]
    config_source: str
    num_envs: int
    device: th.device
    run: Run
    resume: Optional[PairInfo]


def config_inputs(args: argparse.Namespace) -> tuple[Optional[PairInfo], Optional[str], list[str]]:
    """(the pair to resume or None, the config file to load, the ``--set`` overrides including the flags that
    stand for config keys). A resumed run loads its own resolved ``config.yaml`` unless ``--config`` is given."""
    resume = find_resume_pair(args.resume, Path(args.checkpoint_dir)) if args.resume else None
    config_path = args.config
    if config_path is None and resume is not None and (resume.model_path.parent / "config.yaml").is_file():
        config_path = str(resume.model_path.parent / "config.yaml")  # the run's own resolved config
    overrides = list(args.set)
    for flag, key in (("total_timesteps", "training.total_timesteps"), ("seed", "training.seed"),
                      ("device", "training.device")):
        if getattr(args, flag) is not None:
            overrides.append(f"{key}={getattr(args, flag)}")
    return resume, config_path, overrides


def plan_run(args: argparse.Namespace) -> Plan:
    """Read and check every input: resume pair, config, sizes, device, output folders.

    :raises ConfigError, RunError, BadModelFile, FileNotFoundError: with a message saying what to do.
    """
    checkpoint_root, log_root = Path(args.checkpoint_dir), Path(args.log_dir)
    resume, config_path, overrides = config_inputs(args)
    cfg = load_config(config_path, overrides)
    if resume is not None:
        check_obs_size(cfg, resume.model_path, resume.obs_shape)
    curriculum = start_curriculum(cfg, resume.model_path if resume else None)
    played = stage_cfg(cfg, curriculum)
    num_envs = resolve_num_envs(played.environment, args.num_envs, team_sizes(league_match_counts(played)))
    check_rollout(cfg, num_envs)
    device = resolve_device(cfg.training.device)
    if resume is not None and not args.run_name:
        run = run_of_pair(resume, checkpoint_root, log_root)
    else:
        run = new_run(checkpoint_root, log_root, args.run_name)
    check_output_folders({"--checkpoint-dir": run.checkpoint_dir, "--log-dir": run.log_dir},
                         cfg.checkpoints.min_free_mb)
    source = config_path or ("./config.yaml" if Path("config.yaml").is_file() else "repository config.yaml")
    return Plan(cfg, played, curriculum, source + (f" + {len(overrides)} override(s)" if overrides else ""), num_envs,
                device, run, resume)


def attach_league(plan: Plan, model: PPO, env: VecEnv) -> Optional[League]:
    """The run's league (ratings and pool restored from its folder when resuming), driving the opponents of
    the vec env's league matches; None when no stage of the run (or the config without a curriculum) has league
    matches."""
    if not has_league(plan.cfg, plan.curriculum):
        return None
    cfg, run, device = plan.played, plan.run, plan.device
    league = League(cfg.league, run.checkpoint_dir, len(team_sizes(league_match_counts(cfg))),
                    cfg.training.seed)
    league.load(device)
    league.bind(model, model.get_vec_normalize_env())
    base = env.unwrapped
    assert isinstance(base, MatchesVecEnv)  # league matches run in the self-play vec env
    base.set_opponents(league)
    return league


def newest_pair_note(run: Run) -> str:
    pairs = resumable_pairs(run.checkpoint_dir)
    return f"the newest pair on disk is {pairs[0]}" if pairs else "no pair of this run is on disk yet"


def report_divergence(run: Run, reason: object) -> int:
    say(f"\nTraining diverged: {reason}.\nNothing was saved from it: {newest_pair_note(run)}. Resume from it with "
        "a lower training.learning_rate (and check the reward weights), e.g.\n"
        f"  python train_sb3.py --resume {run.checkpoint_dir} --set training.learning_rate=0.0001", error=True)
    return EXIT_DIVERGED


def save_named(model: PPO, run: Run, tag: str, saved: str, cause: str = "", error: bool = False) -> Optional[int]:
    """Save the run's ``final`` / ``interrupted`` pair and print ``saved`` (``{model}`` and ``{norm}`` filled
    in). Returns None when saved, else the exit code after saying why not (weights diverged: nothing saved;
    disk full: the previous files are intact)."""
    model_path, norm_path = named_paths(run.checkpoint_dir, tag)
    try:
        save_pair(model, model.get_vec_normalize_env(), model_path, norm_path)
    except DivergedError as exc:
        return report_divergence(run, f"{exc}{cause}")
    except OSError as exc:
        say(f"\nCould not save {model_path} ({exc.strerror or exc}); {newest_pair_note(run)}.", error=True)
        return EXIT_SAVE_FAILED
    say(saved.format(model=model_path, norm=norm_path.name), error=error)
    return None


def learn_and_save(model: PPO, callbacks: list, total: int, run: Run, log_interval: int) -> int:
    """``model.learn`` for the rest of the run, then the final pair; every way out saves what is good."""
    try:
        model.learn(total_timesteps=total - model.num_timesteps, callback=CallbackList(callbacks),
                    log_interval=log_interval, reset_num_timesteps=False)
    except DivergedError as exc:  # found by TrainingHealthCallback or refused by a checkpoint save
        hold_stop_signals()
        return report_divergence(run, exc)
    except BaseException as exc:
        hold_stop_signals()
        stop = stop_behind(exc)  # Ctrl-C, SIGTERM, SIGHUP, also when a library rewrapped it in its own error
        if stop is not None:
            failed = save_named(model, run, "interrupted", f"\n{stop.name}: stopped at {model.num_timesteps:,} "
                                "steps. Saved {model} + {norm}.\nResume with: python train_sb3.py --resume {model}")
            return stop.exit_code if failed is None else failed
        if isinstance(exc, WorkerError):  # a worker raised (e.g. a user's part): its traceback is the message
            message = str(exc).replace("{", "{{").replace("}", "}}")  # save_named formats the text
            failed = save_named(model, run, "interrupted", f"\nerror: {message}\nTraining stopped at "
                                f"{model.num_timesteps:,} steps; saved {{model}} + {{norm}} first.", error=True)
            return EXIT_RUN_FAILED if failed is None else failed
        # A NaN can also surface as an error inside an update (torch refuses NaN logits): then it is a divergence.
        failed = save_named(model, run, "interrupted", f"\nTraining failed at {model.num_timesteps:,} steps; saved "
                            "{model} + {norm} first.", cause=f" (the update failed with {type(exc).__name__}: {exc})",
                            error=True)
        if failed is not None:
            return failed
        raise
    hold_stop_signals()
    failed = save_named(model, run, "final", f"Done: {model.num_timesteps:,} steps. Saved {{model}} + {{norm}}.\n"
                        "Evaluate with: python evaluate.py --model {model}")
    return 0 if failed is None else failed


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    install_stop_handlers()  # Ctrl-C, SIGTERM, SIGHUP: save and stop (see training/signals.py)
    if args.list_runs:
        print(format_runs(Path(args.checkpoint_dir)))
        return 0
    if args.write_schema:
        SCHEMA_PATH.write_text(json_schema())
        print(f"wrote {SCHEMA_PATH}")
        return 0
    if args.print_config:
        try:
            _, config_path, overrides = config_inputs(args)
            print(to_yaml(load_config(config_path, overrides)), end="")
        except (ConfigError, FileNotFoundError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        return 0
    try:
        plan = plan_run(args)
    except (ConfigError, FileNotFoundError, ValueError) as exc:  # RunError and BadModelFile are ValueErrors
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except StopRequested as stop:
        return stop.exit_code

    cfg, played, run, resume = plan.cfg, plan.played, plan.run, plan.resume
    checkpoints = PairCheckpointCallback(cfg.checkpoints.save_freq, str(run.checkpoint_dir), plan.num_envs,
                                         cfg.checkpoints.keep_last)
    # kill -USR1 <pid>: a pair at the next step, training goes on. Installed before the (slow) setup, so that a
    # SIGUSR1 sent while workers start is kept for the first step instead of killing us (its default action).
    install_snapshot_handler(checkpoints.request_save)
    train_cfg = cfg.training
    set_torch_threads(train_cfg.torch_threads)
    seed = train_cfg.seed
    env = eval_env = None
    try:
        env = make_training_env(played, plan.num_envs, stage_seed(seed, plan.curriculum),
                                resume.normalizer_path if resume else None)
        install_stop_handlers()  # again: ray.init (selfplay.backend ray) replaces the SIGTERM handler with its own
        eval_env = make_eval_env(cfg, seed) if cfg.evaluation.eval_freq > 0 else None
        if resume:
            try:
                model = load_model(resume.model_path, env, plan.device, cfg)
            except ValueError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return EXIT_BAD_INPUT
            # An explicit --total-timesteps extends (or shortens) the run; otherwise keep the saved run length.
            total = args.total_timesteps or model._total_timesteps or train_cfg.total_timesteps
        else:
            model = make_model(cfg, env, plan.device, seed)
            total = train_cfg.total_timesteps
        league = attach_league(plan, model, env)
        switch = None
        if plan.curriculum is not None:
            switch = StageSwitch(cfg, plan.curriculum, plan.num_envs, seed, league, make_vec_env)
            switch.apply_mix()
        setattr(model, STAGE_ATTRIBUTE, plan.curriculum.stage.name if plan.curriculum else None)
        write_run_config(run, cfg)
        model.set_logger(configure(str(run.log_dir),
                                   ["tensorboard"] + (["stdout"] if cfg.logging.stdout_table else [])))

        worker_info = dict(env.env_method("process_info", indices=0)[0], plans=getattr(env.unwrapped, "plans", []))
        if hasattr(env.unwrapped, "actor_info"):
            worker_info["actors"] = env.unwrapped.actor_info()
        print_banner(played, model, plan.device, plan.num_envs, worker_info, total, run, plan.config_source,
                     resume.model_path if resume else None, plan.curriculum)
        if model.num_timesteps >= total:
            print(f"Nothing to do: the model already has {model.num_timesteps:,} of {total:,} steps. "
                  "Pass a larger --total-timesteps to train further.")
            return 0

        callbacks = [
            PendingStopCallback(),  # a stop signal swallowed where it landed is raised again at the next step
            make_threads_callback(train_cfg),
            EntropyScheduleCallback(ent_schedule(train_cfg)),
            GradNormCallback(),
            TrainingHealthCallback(health_limits(cfg.health), cfg.health.patience),  # after GradNorm
            RewardPartsCallback(cfg.logging.log_interval),
            checkpoints,
        ]
        if league is not None:
            callbacks.append(LeagueCallback(league, cfg.league.snapshot_every))
        if switch is not None and league is not None:
            callbacks.append(CurriculumCallback(switch.curriculum, league, switch))
        if eval_env is not None:
            callbacks.append(make_eval_callback(eval_env, str(run.checkpoint_dir), cfg.evaluation.eval_freq,
                                                plan.num_envs, cfg.evaluation.n_eval_episodes))
        if args.stop_at_steps is not None:
            callbacks.append(StopAtStepsCallback(args.stop_at_steps))
        if cfg.logging.progress_bar:
            callbacks.append(TrainingProgressBar())
        return learn_and_save(model, callbacks, total, run, cfg.logging.log_interval)
    except StopRequested as stop:  # before training started: nothing new to save
        hold_stop_signals()
        say(f"\n{stop.name}: stopped before training started; nothing new to save.", error=True)
        return stop.exit_code
    except ActorsNotPlaced as exc:  # the Ray cluster cannot hold the configured actors
        say(f"error: {exc}", error=True)
        return EXIT_BAD_INPUT
    finally:
        if env is not None:
            close_vec_env(env)
        if eval_env is not None:
            eval_env.close()


if __name__ == "__main__":
    sys.exit(main())
