"""Train a Rocket League bot with Stable-Baselines3 PPO on parallel RocketSim matches.

    python train_sb3.py                         # defaults from ./config.yaml
    python train_sb3.py --set environment.selfplay.matches.2v2=4 --set training.gamma=0.99
    python train_sb3.py --resume latest         # continue the newest checkpoint in ./checkpoints
    tensorboard --logdir ./logs                 # watch it learn

Reading order: parse arguments and config -> build envs and model -> callbacks -> ``model.learn`` ->
save (final, or interrupted on Ctrl-C / error).
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any, Optional

import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import CallbackList
from stable_baselines3.common.logger import configure
from stable_baselines3.common.utils import get_latest_run_id

from callbacks import (
    EntropyScheduleCallback,
    GradNormCallback,
    PairCheckpointCallback,
    RewardPartsCallback,
    TrainingProgressBar,
    make_eval_callback,
)
from envs.vec_env import available_cores, close_vec_env, resolve_num_envs
from training.config import ConfigError, load_config
from training.saving import latest_checkpoint, named_paths, normalizer_path_for, save_pair
from training.setup import (
    check_spaces,
    ent_schedule,
    make_eval_env,
    make_model,
    make_threads_callback,
    make_training_env,
    resolve_device,
    set_torch_threads,
)

TB_RUN_PREFIX = "PPO"
EXIT_CONFIG_ERROR = 2
EXIT_INTERRUPTED = 130  # the shell convention for "ended by Ctrl-C"
RULE = "=" * 72


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train a Rocket League bot with SB3 PPO on RocketSim.")
    parser.add_argument("--config", help="config file (default: ./config.yaml, else the repository's)")
    parser.add_argument("--total-timesteps", type=int, help="override training.total_timesteps")
    parser.add_argument("--num-envs", type=int,
                        help="subproc mode: worker processes (disables auto_adjust_envs); self-play sizes itself "
                             "from environment.selfplay")
    parser.add_argument("--seed", type=int, help="override training.seed")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), help="override training.device")
    parser.add_argument("--checkpoint-dir", default="./checkpoints", help="where models are saved")
    parser.add_argument("--log-dir", default="./logs", help="TensorBoard log folder")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override any config value by dotted path, e.g. --set training.gamma=0.99 (repeatable)")
    parser.add_argument("--resume", metavar="PATH", help="a checkpoint .zip to continue, or 'latest'")
    args = parser.parse_args(argv)
    if args.num_envs is not None and args.num_envs < 1:
        parser.error("--num-envs must be >= 1")
    return args


def config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Config file + ``--set`` + the shortcut flags, validated together."""
    overrides = list(args.set)
    for flag, key in (("total_timesteps", "training.total_timesteps"), ("seed", "training.seed"),
                      ("device", "training.device")):
        if getattr(args, flag) is not None:
            overrides.append(f"{key}={getattr(args, flag)}")
    return load_config(args.config, overrides)


def resolve_resume(args: argparse.Namespace) -> Optional[tuple[Path, Path]]:
    """The (model, normalizer) pair to resume from, or None for a new run."""
    if args.resume is None:
        return None
    model_path = latest_checkpoint(args.checkpoint_dir) if args.resume == "latest" else Path(args.resume)
    if not model_path.is_file():
        raise FileNotFoundError(f"--resume: '{model_path}' not found; give a checkpoint .zip or 'latest'.")
    norm_path = normalizer_path_for(model_path)
    if not norm_path.is_file():
        raise FileNotFoundError(f"--resume: the normalizer '{norm_path}' saved beside '{model_path}' is missing.")
    return model_path, norm_path


def describe_device(device: th.device) -> str:
    if device.type != "cuda":
        return f"cpu ({th.get_num_threads()} torch thread(s) in the trainer)"
    props = th.cuda.get_device_properties(device)
    return (f"cuda: {props.name}, {props.total_memory / 2**30:.1f} GB | TF32 matmul: "
            f"{th.backends.cuda.matmul.allow_tf32} | cuDNN benchmark: {th.backends.cudnn.benchmark}")


def print_banner(cfg: dict[str, Any], model: PPO, device: th.device, num_envs: int, worker_info: dict,
                 total: int, run_dir: Path, checkpoint_dir: Path, resumed_from: Optional[Path]) -> None:
    env, train, norm, ckpt = cfg["environment"], cfg["training"], cfg["normalize"], cfg["checkpoints"]
    rewards = ", ".join(f"{k} {v:g}" for k, v in cfg["rewards"].items() if v != 0)
    threads = f"OMP_NUM_THREADS={worker_info['OMP_NUM_THREADS']}, torch threads={worker_info['torch_threads']}"
    timing = (f"tick_skip {env['tick_skip']} ({120 / env['tick_skip']:g} decisions/s), episode <= "
              f"{env['episode_seconds']:g} s, no-touch timeout {env['no_touch_timeout_seconds']:g} s, "
              f"mutators: {', '.join(env['state_mutators'])}")
    if env["vec_env"] == "selfplay":
        matches = ", ".join(f"{count} x {name}" for name, count in env["selfplay"]["matches"].items() if count)
        workers = len(worker_info["plans"])
        per_worker = sorted({len(plan.matches) for plan in worker_info["plans"]})
        setup = [
            f"Workers:     {workers} processes (SelfPlayVecEnv, shared memory), "
            f"{'-'.join(map(str, per_worker))} match(es) each, {threads}",
            f"Match:       self-play, {matches} = {num_envs} cars, every car a learning sample; {timing}",
        ]
    else:
        auto = (f" (auto-adjusted: {env['num_envs']} asked, {available_cores()} cores x {env['max_envs_per_core']})"
                if num_envs != env["num_envs"] else "")
        setup = [
            f"Workers:     {num_envs} processes (SubprocVecEnv){auto}, {threads}",
            f"Match:       {env['blue_size']}v{env['orange_size']} (opponents: {env['opponent_policy']}), {timing}",
        ]
    lines = [
        RULE,
        "ROCKET LEAGUE BOT - PPO TRAINING (Stable-Baselines3 + RocketSim)",
        RULE,
        f"Device:      {describe_device(device)}",
        *setup,
        f"Obs:         {model.observation_space.shape[0]} floats ({env['obs_builder']})   "
        f"Actions: {model.action_space.n} ({env['action_parser']})",
        f"Rewards:     {rewards}",
        "-" * len(RULE),
        f"Rollout:     {num_envs * train['n_steps']} ({num_envs} envs x {train['n_steps']} steps), minibatch "
        f"{train['batch_size']}, {train['n_epochs']} epochs, gamma {train['gamma']}, GAE lambda {train['gae_lambda']}, "
        f"clip {train['clip_range']}",
        f"Schedules:   LR {train['learning_rate']:.0e} -> {train['final_learning_rate']:.0e}, entropy "
        f"{train['ent_coef']:g} -> {train['final_ent_coef']:g} (linear over {total:,} steps)",
        f"Network:     pi {train['net_arch']['pi']}, vf {train['net_arch']['vf']}, {train['activation']}",
        f"Normalize:   obs {norm['norm_obs']} (clip {norm['clip_obs']:g}), reward {norm['norm_reward']} "
        f"(clip {norm['clip_reward']:g})",
        f"Steps:       {model.num_timesteps:,} done / {total:,}"
        + (f" (resumed from {resumed_from})" if resumed_from else ""),
        f"Checkpoints: {checkpoint_dir} (every {ckpt['save_freq']:,} steps, keep last {ckpt['keep_last'] or 'all'}; "
        "best_model, model_final)",
        f"TensorBoard: {run_dir}   ->   tensorboard --logdir {run_dir.parent}",
        RULE,
    ]
    print("\n".join(lines), flush=True)


def keep_saving_on_ctrl_c() -> None:
    """From here on, Ctrl-C only prints a notice: a second Ctrl-C, or a SIGINT sent both to us and to our process
    group (``timeout -s INT`` does that), must not cut the save of the interrupted pair short."""

    def notice(signum: int, frame: Any) -> None:
        print("\nSaving the model, please wait (Ctrl-C is ignored until it is saved).", file=sys.stderr, flush=True)

    signal.signal(signal.SIGINT, notice)


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    # Ctrl-C / SIGINT always means "save and stop", even when a shell started us with SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        cfg = config_from_args(args)
        resume = resolve_resume(args)
        num_envs = resolve_num_envs(cfg["environment"], args.num_envs)
    except (ConfigError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR

    train_cfg = cfg["training"]
    device = resolve_device(train_cfg["device"])
    set_torch_threads(train_cfg["torch_threads"])
    seed = train_cfg["seed"]
    checkpoint_dir, log_dir = Path(args.checkpoint_dir), Path(args.log_dir)

    env = make_training_env(cfg, num_envs, seed, resume[1] if resume else None)
    eval_env = make_eval_env(cfg, seed) if cfg["evaluation"]["eval_freq"] > 0 else None
    try:
        if resume:
            model = PPO.load(resume[0], env=env, device=device)
            check_spaces(model, env, f"model '{resume[0]}'")
            # An explicit --total-timesteps extends (or shortens) the run; otherwise keep the saved run length.
            total = args.total_timesteps or model._total_timesteps or train_cfg["total_timesteps"]
            run_name = getattr(model, "tb_run_name", None) or f"{TB_RUN_PREFIX}_{get_latest_run_id(str(log_dir), TB_RUN_PREFIX)}"
        else:
            model = make_model(cfg, env, device, seed)
            total = train_cfg["total_timesteps"]
            run_name = f"{TB_RUN_PREFIX}_{get_latest_run_id(str(log_dir), TB_RUN_PREFIX) + 1}"
        model.tb_run_name = run_name  # saved inside every checkpoint, so --resume continues the same curves
        run_dir = log_dir / run_name
        model.set_logger(configure(str(run_dir), ["tensorboard"] + (["stdout"] if cfg["logging"]["stdout_table"] else [])))

        worker_info = dict(env.env_method("process_info", indices=0)[0], plans=getattr(env.unwrapped, "plans", []))
        print_banner(cfg, model, device, num_envs, worker_info, total, run_dir, checkpoint_dir,
                     resume[0] if resume else None)
        if model.num_timesteps >= total:
            print(f"Nothing to do: the model already has {model.num_timesteps:,} of {total:,} steps. "
                  "Pass a larger --total-timesteps to train further.")
            return 0

        callbacks = [
            make_threads_callback(train_cfg),
            EntropyScheduleCallback(ent_schedule(train_cfg)),
            GradNormCallback(),
            RewardPartsCallback(cfg["logging"]["log_interval"]),
            PairCheckpointCallback(cfg["checkpoints"]["save_freq"], str(checkpoint_dir), num_envs,
                                   cfg["checkpoints"]["keep_last"]),
        ]
        if eval_env is not None:
            callbacks.append(make_eval_callback(eval_env, str(checkpoint_dir), cfg["evaluation"]["eval_freq"],
                                                num_envs, cfg["evaluation"]["n_eval_episodes"], str(run_dir)))
        if cfg["logging"]["progress_bar"]:
            callbacks.append(TrainingProgressBar())

        try:
            model.learn(total_timesteps=total - model.num_timesteps, callback=CallbackList(callbacks),
                        log_interval=cfg["logging"]["log_interval"], reset_num_timesteps=False)
        except KeyboardInterrupt:
            keep_saving_on_ctrl_c()
            paths = named_paths(checkpoint_dir, "interrupted")
            save_pair(model, model.get_vec_normalize_env(), *paths)
            print(f"\nInterrupted at {model.num_timesteps:,} steps. Saved {paths[0]} + {paths[1].name}.\n"
                  f"Resume with: python train_sb3.py --resume {paths[0]}", flush=True)
            return EXIT_INTERRUPTED
        except BaseException:
            keep_saving_on_ctrl_c()
            paths = named_paths(checkpoint_dir, "interrupted")
            save_pair(model, model.get_vec_normalize_env(), *paths)
            print(f"\nTraining failed at {model.num_timesteps:,} steps; saved {paths[0]} + {paths[1].name} first.",
                  file=sys.stderr, flush=True)
            raise
        paths = named_paths(checkpoint_dir, "final")
        save_pair(model, model.get_vec_normalize_env(), *paths)
        print(f"Done: {model.num_timesteps:,} steps. Saved {paths[0]} + {paths[1].name}.\n"
              f"Evaluate with: python evaluate.py --model {paths[0]}", flush=True)
        return 0
    finally:
        close_vec_env(env)
        if eval_env is not None:
            eval_env.close()


if __name__ == "__main__":
    sys.exit(main())
