"""The schema of ``config.yaml``: one pydantic model per section, and :class:`Config` for the whole file.

The models state types, bounds and allowed names only; every default and its explanation lives in the
repository's ``config.yaml`` (a key missing from the merged config is an error, not a silent default). The code
receives these typed objects (``cfg.training.gamma``), never raw dicts. The sections the environments take
(``environment``, ``rewards``, ``ray``) are in ``envs/schema.py``. ``python train_sb3.py --write-schema`` writes the
JSON Schema of :class:`Config` (``config.schema.json``) that editors use to complete and check ``config.yaml``.
"""

from __future__ import annotations

from typing import Any, Literal, Optional, Union

from pydantic import ConfigDict, Field, NonNegativeFloat, NonNegativeInt, PositiveInt, PrivateAttr, StrictBool
from typing_extensions import Annotated

from envs.schema import (BUILTIN, CUSTOM, MATCH_SIZES, REWARD_PARTS, EnvironmentConfig, MatchCounts, PartSpec,
                         RayConfig, RewardPartSpec, Rewards, RewardSpec, Section, Unit, part_name, reward_weight)

__all__ = ["BUILTIN", "CUSTOM", "MATCH_SIZES", "REWARD_PARTS", "SCRIPTED_OPPONENTS", "Config", "ConfigError",
           "EnvironmentConfig", "PartSpec", "RayConfig", "RewardPartSpec", "Rewards", "part_name", "reward_weight"]

#: Scripted league bots (envs/scripted.py drives them).
SCRIPTED_OPPONENTS = ("idle", "random", "chaser")
ScriptedName = Literal["idle", "random", "chaser"]


class ConfigError(ValueError):
    """A config key or value is wrong. The message names the key and what is allowed."""


class Shares(Section):
    """Weights of the league's opponent kinds (their sum is normalized)."""

    past: NonNegativeFloat
    scripted: NonNegativeFloat
    self: NonNegativeFloat

    def total(self) -> float:
        return self.past + self.scripted + self.self


class LeagueConfig(Section):
    matches: MatchCounts
    shares: Shares
    scripted: list[ScriptedName] = Field(min_length=1)
    snapshot_every: PositiveInt
    pool_size: PositiveInt
    min_pick_weight: float = Unit


class Gate(Section):
    """Advance when, over the last ``window`` league games against ``opponent`` in this stage, the learning team
    touched the ball in at least ``touch`` of them and scored (won) in at least ``goal`` of them."""

    opponent: Literal["idle", "random", "chaser", "past"]
    touch: float = Unit
    goal: float = Unit


class Stage(Section):
    """One curriculum stage: it names only what it changes (None: the top-level value)."""

    name: str = Field(min_length=1)
    league_share: Optional[float] = Field(default=None, ge=0.0, le=1.0)
    shares: Optional[Shares] = None
    scripted: Optional[dict[ScriptedName, NonNegativeFloat]] = None
    advance: Optional[Gate] = None


class CurriculumConfig(Section):
    enabled: StrictBool
    pin: Optional[str]
    window: PositiveInt
    hold: PositiveInt
    stages: list[Stage] = Field(min_length=1)


class NetArchConfig(Section):
    pi: list[PositiveInt] = Field(min_length=1)
    vf: list[PositiveInt] = Field(min_length=1)


class TrainingConfig(Section):
    total_timesteps: PositiveInt
    n_steps: int = Field(ge=2)
    pipeline_groups: int = Field(ge=0, le=16)
    mirror: StrictBool
    batch_size: Union[Literal["auto"], Annotated[int, Field(ge=2)]]
    n_epochs: PositiveInt
    gamma: float = Unit
    gae_lambda: float = Unit
    clip_range: float = Field(ge=1e-6, le=1.0)
    vf_coef: NonNegativeFloat
    max_grad_norm: float = Field(ge=1e-9)
    learning_rate: float = Field(ge=1e-12, le=1.0)
    final_learning_rate: float = Unit
    ent_coef: NonNegativeFloat
    final_ent_coef: NonNegativeFloat
    net_arch: NetArchConfig
    activation: Literal["relu", "tanh", "leaky_relu"]
    device: Literal["auto", "cpu", "cuda"]
    torch_threads: NonNegativeInt
    update_threads: NonNegativeInt
    seed: NonNegativeInt


class NormalizeConfig(Section):
    norm_obs: StrictBool
    norm_reward: StrictBool
    clip_obs: float = Field(ge=1e-6)
    clip_reward: float = Field(ge=1e-6)


class CheckpointsConfig(Section):
    save_freq: PositiveInt
    keep_last: NonNegativeInt
    min_free_mb: NonNegativeInt


class EvaluationConfig(Section):
    eval_freq: NonNegativeInt
    n_eval_episodes: PositiveInt


class HealthConfig(Section):
    patience: PositiveInt
    approx_kl_max: NonNegativeFloat
    clip_fraction_max: float = Unit
    grad_norm_max: NonNegativeFloat


class LoggingConfig(Section):
    progress_bar: StrictBool
    log_interval: PositiveInt
    stdout_table: StrictBool


class Config(Section):
    """The whole ``config.yaml``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True,
                              json_schema_extra={"title": "Rocket League bot trainer config (config.yaml)"})

    environment: EnvironmentConfig
    rewards: dict[str, RewardSpec] = Field(min_length=1)
    ray: RayConfig
    league: LeagueConfig
    curriculum: CurriculumConfig
    training: TrainingConfig
    normalize: NormalizeConfig
    checkpoints: CheckpointsConfig
    evaluation: EvaluationConfig
    health: HealthConfig
    logging: LoggingConfig
    #: How the match counts were sized to the machine (a :class:`config.sizing.Sizing`), set when the config loads.
    _sizing: Any = PrivateAttr(default=None)

    @property
    def sizing(self) -> Any:
        return self._sizing

    def dump(self) -> dict[str, Any]:
        """Plain data as ``config.yaml`` spells it (``class:`` keys, not ``cls``)."""
        return self.model_dump(mode="json", by_alias=True)


