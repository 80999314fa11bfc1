"""Measure training throughput on this machine, from raw RocketSim to end-to-end PPO, in one run.

    python -m bench.throughput                          # defaults from ./config.yaml, ~5 s per stage
    python -m bench.throughput --seconds 10 --set environment.selfplay.matches.1v1=8
    python -m bench.throughput --json --profile         # + breakdown of one iteration; JSON on the last line

Stages (agent-steps/s = decisions of one car per second; one decision = ``tick_skip`` physics ticks):

1. ``ceiling``        raw RocketSim with the benchmarked match's cars, random controls, one process per core
2. ``env``            one match in this process (self-play: every car acts), random actions
3. ``collect_random`` the training vec env at the resolved ``num_envs``, random actions
4. ``collect_policy`` the same, actions from the PPO policy (inference, no update)
5. ``train``          ``PPO.learn`` over whole iterations (collection + update), after a warm-up iteration

Each stage reports agent-steps/s, its ratio to the ceiling and the wall seconds it measured over, and ends
all of its processes before the next starts. ``--json`` prints one JSON object on the last line:
``{"stages": {name: {"sps", "ratio", "seconds"}}, "machine": {...}, "config": {...}[, "breakdown": {...}]}``.
Exit code 2 on a config error.

Heavy imports (torch, SB3, rlgym) happen inside :func:`main`, so spawned ceiling workers, which re-import
this module as ``__mp_main__``, stay light.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from typing import Any, Optional

from config.schema import Config, part_name, reward_weight

EXIT_CONFIG_ERROR = 2
DEFAULT_SECONDS = 5.0
STAGES = ("ceiling", "env", "collect_random", "collect_policy", "train", "train_no_league", "train_ray")


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.throughput",
                                     description="Throughput benchmark: raw RocketSim -> env -> vec env -> PPO.")
    parser.add_argument("--config", default=None, help="config file merged over ./config.yaml")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override any config value by dotted path, e.g. --set environment.selfplay.matches.2v2=4 "
                             "(repeatable)")
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS,
                        help=f"wall seconds measured per stage (default {DEFAULT_SECONDS:g})")
    parser.add_argument("--stage", metavar="NAME",
                        help="measure the config as this curriculum stage plays it (its matches and league mix); "
                             "default: the configured matches, which the curriculum's last stage plays")
    parser.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    parser.add_argument("--profile", action="store_true", help="also break one training iteration's time down")
    parser.add_argument("--stages", default=None, metavar="NAME,NAME",
                        help="run only these stages (comma-separated; ceiling always runs, the ratios need it), "
                             f"e.g. --stages train for a scaling series; known: {', '.join(STAGES)}")
    parser.add_argument("--ray", action="store_true",
                        help="add stage train_ray: the train stage on the Ray backend (a local Ray on this machine, "
                             "the config's actor layout), and what one step costs on the wire (needs "
                             "requirements-ray.txt)")
    args = parser.parse_args(argv)
    if args.seconds <= 0:
        parser.error("--seconds must be > 0")
    if args.stages is not None:
        names = [name.strip() for name in args.stages.split(",") if name.strip()]
        unknown = [name for name in names if name not in STAGES]
        if unknown or not names:
            parser.error(f"--stages: unknown stage(s) {unknown or args.stages!r}; known: {', '.join(STAGES)}")
        args.stages = {"ceiling", *names}
    return args


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo, else ``platform.processor()``."""
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def config_summary(cfg: Config, num_envs: int) -> dict[str, Any]:
    """The config values that set throughput."""
    env, train = cfg.environment, cfg.training
    return {
        "vec_env": env.vec_env,
        "num_envs": num_envs,
        "selfplay_matches": dict(env.selfplay.matches),
        "league_matches": dict(cfg.league.matches) if env.vec_env == "selfplay" else {},
        "blue_size": env.blue_size,
        "orange_size": env.orange_size,
        "opponent_policy": env.opponent_policy,
        "tick_skip": env.tick_skip,
        "obs_builder": part_name(env.obs_builder),
        "rewards": {name: reward_weight(part) for name, part in cfg.rewards.items() if reward_weight(part) != 0},
        "n_steps": train.n_steps,
        "batch_size": train.batch_size,
        "n_epochs": train.n_epochs,
        "net_arch": train.net_arch.model_dump(),
        "device": train.device,
    }


def format_table(results: dict[str, Any], ceiling_sps: float, machine: dict[str, Any]) -> str:
    """Readable table of the stages."""
    lines = [f"Throughput on {machine['cores']} cores ({machine['cpu']}), torch device {machine['device']} "
             f"({machine['torch_threads']} torch threads in the trainer process)",
             f"  {'stage':<16}{'agent-steps/s':>15}{'x ceiling':>11}{'seconds':>9}   what ran"]
    for name, result in results.items():
        ratio = result.sps / ceiling_sps if ceiling_sps > 0 else 0.0
        lines.append(f"  {name:<16}{result.sps:>15,.0f}{ratio:>11.4f}{result.seconds:>9.2f}   {result.detail}")
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    from config import ConfigError, load_config

    try:
        cfg = load_config(args.config, args.set)
        if args.stage is not None:
            from config.stages import stage_config

            names = [stage.name for stage in cfg.curriculum.stages]
            if args.stage not in names:
                raise ConfigError(f"--stage '{args.stage}': no curriculum stage has that name; use one of "
                                  f"{', '.join(names)}")
            cfg = stage_config(cfg, names.index(args.stage))
        from envs.components import init_meshes
        from training.setup import resolve_device, set_torch_threads

        device = resolve_device(cfg.training.device)
        set_torch_threads(cfg.training.torch_threads)  # the trainer's setting (config.yaml)
        init_meshes(cfg.environment.meshes_path)  # a bad meshes folder fails here, not in a worker
    except (ConfigError, RuntimeError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR

    import torch as th

    from bench import stages
    from envs.components import team_sizes
    from config.sizing import available_cores
    from vecenv.subproc import resolve_num_envs
    from config import league_match_counts

    cores = available_cores()
    num_envs = resolve_num_envs(cfg.environment, None, team_sizes(league_match_counts(cfg)))
    has_league = any(league_match_counts(cfg).values())
    env, seconds = cfg.environment, args.seconds
    machine = {"cores": cores, "cpu": cpu_name(), "device": str(device), "torch_threads": th.get_num_threads()}
    if env.vec_env == "selfplay":
        what = "self-play " + ", ".join(f"{n} x {name}" for name, n in env.selfplay.matches.items() if n)
        if has_league:
            what += " + league " + ", ".join(f"{n} x {name}" for name, n in cfg.league.matches.items() if n)
    else:
        what = f"subproc {env.blue_size}v{env.orange_size}"
    print(f"Benchmarking {what}, tick_skip {env.tick_skip}, {part_name(env.obs_builder)} obs, {num_envs} env slots, "
          f"{seconds:g} s per stage ...", flush=True)

    runners = {
        "ceiling": lambda: stages.run_ceiling_stage(cfg, seconds, cores),
        "env": lambda: stages.run_env_stage(cfg, seconds),
        "collect_random": lambda: stages.run_collect_random_stage(cfg, seconds, num_envs),
        "collect_policy": lambda: stages.run_collect_policy_stage(cfg, seconds, num_envs, device),
        "train": lambda: stages.run_train_stage(cfg, seconds, num_envs, device),
        "train_no_league": lambda: stages.run_train_stage(stages.without_league(cfg), seconds, num_envs, device),
        "train_ray": lambda: stages.run_train_stage(stages.on_ray(cfg, cores), seconds, num_envs, device,
                                                    probe=stages.measure_ray_link),
    }
    if args.ray and env.vec_env != "selfplay":
        print("error: --ray needs environment.vec_env: selfplay", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    results = {}
    chosen = [s for s in STAGES if (s != "train_no_league" or has_league) and (s != "train_ray" or args.ray)
              and (args.stages is None or s in args.stages)]
    for name in chosen:
        results[name] = runners[name]()
        print(f"  {name:<16}{results[name].sps:>12,.0f} agent-steps/s over {results[name].seconds:.2f} s",
              flush=True)
    ceiling_sps = results["ceiling"].sps
    print(format_table(results, ceiling_sps, machine))

    report: dict[str, Any] = {
        "stages": {name: {"sps": r.sps, "ratio": r.sps / ceiling_sps if ceiling_sps > 0 else 0.0,
                          "seconds": r.seconds} for name, r in results.items()},
        "machine": machine,
        "config": config_summary(cfg, num_envs),
    }
    if "train" in results and "train_no_league" in results:
        report["league_cost"] = {"train_over_train_no_league": results["train"].sps / results["train_no_league"].sps}
        print(f"League: train / train_no_league = {report['league_cost']['train_over_train_no_league']:.3f} "
              "(same learning cars; the league's extra simulated cars and opponent inference)")
    if args.ray and "train_ray" in results:
        link = results["train_ray"].extra  # measured on the train_ray stage's env, before it closed
        report["ray"] = {"train_ray_over_train": results["train_ray"].sps / results["train"].sps, **link}
        print(f"Ray: train_ray / train = {report['ray']['train_ray_over_train']:.3f}; one step on the wire: "
              f"{link['request_bytes']:,} B to the {link['actors']} actors, {link['reply_bytes']:,} B back "
              f"({link['slots']} slots), "
              f"empty actor call round trip {link['round_trip_ms']:.2f} ms (median)")
    if args.profile:
        from bench.profile import profile_iteration

        breakdown = profile_iteration(cfg, num_envs, device, cores, seconds)
        print(breakdown.table())
        report["breakdown"] = breakdown.to_json()
    if args.json:
        print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
