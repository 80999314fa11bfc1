"""Build the RLGym v2 match (obs builder, action parser, mutators, done conditions, engine) from config.

Every built-in component is an rlgym / rlgym-tools class; this module maps the names used in ``config.yaml`` to
them. A user's own component (``{class: "module:Name", kwargs: {...}}``) is imported and built by
:func:`envs.parts.build_part`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
from rlgym.api import ObsBuilder, RLGym, StateMutator, TransitionEngine
from rlgym.rocket_league.action_parsers import LookupTableAction, RepeatAction
from rlgym.rocket_league.done_conditions import AnyCondition, GoalCondition, NoTouchTimeoutCondition, TimeoutCondition
from rlgym.rocket_league.state_mutators import FixedTeamSizeMutator, KickoffMutator, MutatorSequence
from rlgym_tools.rocket_league.obs_builders.relative_default_obs import RelativeDefaultObs
from rlgym_tools.rocket_league.state_mutators.random_physics_mutator import RandomPhysicsMutator
from rlgym_tools.rocket_league.state_mutators.weighted_sample_mutator import WeightedSampleMutator

from envs.engine import RepeatedActionEngine
from envs.mutators import KickoffJitterMutator
from envs.obs import FastDefaultObs
from envs.parts import NamedDoneCondition, NamedObsBuilder, NamedStateMutator
from envs.rewards import NamedPartsReward
from envs.schema import EnvironmentConfig, PartSpec, Rewards

OBS_BUILDERS = {"default": FastDefaultObs, "relative": RelativeDefaultObs}  # FastDefaultObs == DefaultObs, faster
STATE_MUTATORS = {"kickoff": KickoffMutator, "random": RandomPhysicsMutator, "jitter": KickoffJitterMutator}
ACTION_PARSERS = {"lookup_table": LookupTableAction}


def init_meshes(meshes_path: Optional[str]) -> None:
    """Point RocketSim at ``meshes_path`` (a folder with ``soccar/mesh_*.cmf``) before any arena exists.

    With ``None`` nothing happens: ``RocketSimEngine`` loads the soccar meshes shipped in rlgym-rocket-league.
    RocketSim itself accepts a missing folder silently and then simulates without walls, so the folder is
    checked here first.
    """
    if meshes_path is None:
        return
    folder = Path(meshes_path).expanduser()
    if not any((folder / "soccar").glob("*.cmf")):
        raise FileNotFoundError(
            f"environment.meshes_path '{folder}' holds no soccar/*.cmf collision meshes; point it at a folder "
            "containing soccar/mesh_*.cmf, or set it to null to use the meshes shipped with rlgym-rocket-league."
        )
    import RocketSim

    RocketSim.init(str(folder))


def build_match(env_cfg: EnvironmentConfig, reward_weights: Rewards,
                state_mutator: Optional[StateMutator] = None,
                team_sizes: Optional[tuple[int, int]] = None,
                transition_engine: Optional[TransitionEngine] = None) -> tuple[RLGym, NamedPartsReward]:
    """Create the RLGym match described by ``config.yaml``'s ``environment`` section.

    :param state_mutator: replaces the configured mutators after the team-size one (used by tests that
        need a particular start state, e.g. a ball flying into the goal).
    :param team_sizes: (blue, orange) cars; default ``blue_size`` / ``orange_size`` of the config.
    :param transition_engine: replaces :class:`envs.engine.RepeatedActionEngine` (an engine with the same
        physics and timing, e.g. one that also emits RLBot packets).
    :return: the RLGym env and its reward function (which exposes per-part values).
    """
    blue, orange = team_sizes or (env_cfg.blue_size, env_cfg.orange_size)
    init_meshes(env_cfg.meshes_path)
    mutators = [_state_mutator(env_cfg, i) for i in range(len(env_cfg.state_mutators))]
    share = env_cfg.random_start_share
    if share > 0:  # a share of episodes starts from rlgym-tools' random physics instead
        mutators = [WeightedSampleMutator([MutatorSequence(*mutators), RandomPhysicsMutator()], [1 - share, share])]
    if state_mutator is not None:
        mutators = [state_mutator]
    reward_fn = NamedPartsReward(reward_weights)
    no_touch = [NoTouchTimeoutCondition(env_cfg.no_touch_timeout_seconds)]
    terminal = env_cfg.no_touch_timeout_terminal
    extra = {kind: [NamedDoneCondition(f"environment.done_conditions.{kind}[{i}]", spec)
                    for i, spec in enumerate(getattr(env_cfg.done_conditions, kind))]
             for kind in ("terminal", "truncation")}
    terminal_conds = [GoalCondition(), *(no_touch if terminal else []), *extra["terminal"]]
    truncation_conds = [TimeoutCondition(env_cfg.episode_seconds), *([] if terminal else no_touch), *extra["truncation"]]
    match = RLGym(
        state_mutator=MutatorSequence(FixedTeamSizeMutator(blue, orange), *mutators),
        obs_builder=make_obs_builder(env_cfg),
        action_parser=RepeatAction(ACTION_PARSERS[env_cfg.action_parser](), repeats=env_cfg.tick_skip),
        reward_fn=reward_fn,
        transition_engine=transition_engine or RepeatedActionEngine(),
        termination_cond=AnyCondition(*terminal_conds) if len(terminal_conds) > 1 else terminal_conds[0],
        truncation_cond=AnyCondition(*truncation_conds),
    )
    return match, reward_fn


def make_obs_builder(env_cfg: EnvironmentConfig) -> ObsBuilder:
    """The configured obs builder: a built-in one padded to ``obs_zero_padding`` cars per team, or the user's."""
    spec = env_cfg.obs_builder
    if isinstance(spec, PartSpec):
        return NamedObsBuilder("environment.obs_builder", spec)
    return OBS_BUILDERS[spec](zero_padding=env_cfg.obs_zero_padding)


def _state_mutator(env_cfg: EnvironmentConfig, index: int) -> StateMutator:
    spec = env_cfg.state_mutators[index]
    if isinstance(spec, PartSpec):
        return NamedStateMutator(f"environment.state_mutators[{index}]", spec)
    if spec == "jitter":
        return KickoffJitterMutator(**env_cfg.kickoff_jitter.model_dump())
    return STATE_MUTATORS[spec]()


def team_sizes(matches: dict[str, int]) -> list[int]:
    """Team size of every match of a ``{"1v1": count, "2v2": count, "3v3": count}`` section, in slot order:
    all 1v1 matches, then 2v2, then 3v3 (the size is the number before the "v")."""
    sizes: list[int] = []
    for name, count in matches.items():
        sizes += [int(name.split("v")[0])] * count
    return sizes


def selfplay_team_sizes(env_cfg: EnvironmentConfig) -> list[int]:
    """Team size of every self-play match (``environment.selfplay.matches``), in slot order."""
    return team_sizes(env_cfg.selfplay.matches)


def smallest_team_size(env_cfg: EnvironmentConfig, league_matches: Optional[dict[str, int]] = None) -> int:
    """The smallest team size of the configured self-play and league matches (1 when none is configured, as in
    subproc mode): evaluation plays it, so a config whose matches are all league matches evaluates too."""
    sizes = selfplay_team_sizes(env_cfg) + team_sizes(league_matches or {})
    return min(sizes) if sizes else 1


def lookup_table(env_cfg: EnvironmentConfig) -> np.ndarray:
    """The action parser's lookup table, ``[n_actions, 8]`` (rlgym's ``LookupTableAction.make_lookup_table``;
    ``lookup_table`` is the only action parser the config accepts)."""
    return np.asarray(ACTION_PARSERS[env_cfg.action_parser].make_lookup_table())
