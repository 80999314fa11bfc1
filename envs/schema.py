"""The config sections the environments take: ``environment:``, ``rewards:`` and ``ray:``, and users' own parts.

pydantic models stating types, bounds and allowed names only (every default lives in ``config.yaml``). They sit
here, at the bottom layer, because the env code receives them (``env_cfg.tick_skip``); ``config/schema.py`` composes
them with the other sections into the whole file's ``Config``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Optional, Union

from pydantic import (BaseModel, ConfigDict, Discriminator, Field, NonNegativeFloat, NonNegativeInt, PositiveFloat,
                      PositiveInt, StrictBool, Tag)
from typing_extensions import Annotated, TypedDict

#: Team size of each match size named under ``environment.selfplay.matches`` and ``league.matches``.
MATCH_SIZES = {"1v1": 1, "2v2": 2, "3v3": 3}
#: Built-in reward parts (envs/rewards.py maps them to rlgym classes), named here so that validating a config
#: needs no RocketSim import; the other built-in names are the Literal types below.
REWARD_PARTS = ("goal", "touch", "player_to_ball", "speed_to_ball", "face_ball", "ball_to_goal", "boost_gain")
Unit = Field(ge=0.0, le=1.0)


class Section(BaseModel):
    """A config section: unknown keys are errors (a typo must not be ignored)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class PartSpec(Section):
    """A user's rlgym v2 component, by import path: ``{class: "my_bot.obs:MyObs", kwargs: {zero_padding: 3}}``.

    ``class`` is ``module:Name`` (or ``module.Name``); the module is imported from ``path`` when given (a folder,
    absolute or relative to the current folder), else from the current folder or the Python path. ``kwargs`` are
    passed to the class's constructor. A run folder's ``config.yaml`` records every part with the absolute
    ``path`` it was imported from, so ``--resume``, ``evaluate.py`` and the exporter find it from anywhere.
    """

    cls: str = Field(alias="class", min_length=1)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    path: Optional[str] = None


class RewardPartSpec(PartSpec):
    """A user's rlgym ``RewardFunction`` in ``rewards:``, with its weight in the sum."""

    weight: float


def _kind(value: Any) -> str:
    """Which branch of a component field a value takes: a mapping is a custom part, anything else a built-in."""
    return CUSTOM if isinstance(value, (dict, PartSpec)) else BUILTIN


#: Union tags of the component fields (error messages leave them out of the key).
BUILTIN, CUSTOM = "builtin", "custom"


def _builtin_or_part(names: Any, part: type[PartSpec] = PartSpec) -> Any:
    """A field that takes a built-in name (``names``, a Literal) or a custom part (``{class: ..., kwargs: ...}``)."""
    return Annotated[Union[Annotated[names, Tag(BUILTIN)], Annotated[part, Tag(CUSTOM)]], Discriminator(_kind)]


if TYPE_CHECKING:
    # What the fields hold once validated. The run-time definitions below are built from MATCH_SIZES and as
    # pydantic discriminated unions, which mypy cannot read as types.
    MatchCounts = dict[str, int]
    ObsBuilderSpec = Union[Literal["default", "relative"], PartSpec]
    StateMutatorSpec = Union[Literal["kickoff", "random", "jitter"], PartSpec]
    RewardSpec = Union[float, RewardPartSpec]
else:
    #: Matches of each team size (every size named, 0 for none): a dict at run time, ``counts["1v1"]``.
    MatchCounts = TypedDict("MatchCounts", {name: NonNegativeInt for name in MATCH_SIZES})
    MatchCounts.__pydantic_config__ = ConfigDict(extra="forbid")
    ObsBuilderSpec = _builtin_or_part(Literal["default", "relative"])
    StateMutatorSpec = _builtin_or_part(Literal["kickoff", "random", "jitter"])
    #: A reward part: the weight of a built-in part, or a custom part with its weight.
    RewardSpec = _builtin_or_part(float, RewardPartSpec)


class SelfPlayConfig(Section):
    matches: MatchCounts
    scale: Union[Literal["auto"], PositiveInt]
    num_workers: NonNegativeInt
    max_worker_restarts: NonNegativeInt
    backend: Literal["local", "ray"]


class KickoffJitterConfig(Section):
    car_xy_uu: NonNegativeFloat
    car_yaw_rad: NonNegativeFloat
    ball_xy_uu: NonNegativeFloat


class DoneConditionsConfig(Section):
    """Extra rlgym ``DoneCondition`` s, beside the goal, time limit and no-touch timeout."""

    terminal: list[PartSpec]
    truncation: list[PartSpec]


class EnvironmentConfig(Section):
    vec_env: Literal["selfplay", "subproc"]
    selfplay: SelfPlayConfig
    blue_size: int = Field(ge=1, le=3)
    orange_size: int = Field(ge=0, le=3)
    opponent_policy: Literal["idle", "random"]
    num_envs: PositiveInt
    auto_adjust_envs: StrictBool
    max_envs_per_core: PositiveInt
    tick_skip: int = Field(ge=1, le=120)
    obs_builder: ObsBuilderSpec
    obs_zero_padding: int = Field(ge=1, le=3)
    action_parser: Literal["lookup_table"]
    state_mutators: list[StateMutatorSpec] = Field(min_length=1)
    kickoff_jitter: KickoffJitterConfig
    random_start_share: float = Unit
    episode_seconds: float = Field(ge=0.1)
    no_touch_timeout_seconds: float = Field(ge=0.1)
    no_touch_timeout_terminal: StrictBool
    done_conditions: DoneConditionsConfig
    meshes_path: Optional[str]


class RayConfig(Section):
    address: str
    actors: NonNegativeInt
    cpus_per_actor: NonNegativeFloat
    workers_per_actor: NonNegativeInt
    num_cpus: NonNegativeInt
    object_store_mb: NonNegativeInt
    timeout_s: PositiveFloat


#: The ``rewards:`` section: part name -> weight (built-in part) or custom part with its weight.
Rewards = dict[str, RewardSpec]


def part_name(spec: str | PartSpec) -> str:
    """How a component field reads in messages: a built-in name, or a custom part's class path."""
    return spec.cls if isinstance(spec, PartSpec) else str(spec)


def reward_weight(part: RewardSpec) -> float:
    """The weight of a ``rewards:`` entry (a built-in part's number, or a custom part's ``weight``)."""
    return part.weight if isinstance(part, PartSpec) else float(part)
