"""Load, merge and validate ``config.yaml``.

The repository's ``config.yaml`` holds every default (documented there). A user file given with
``--config`` is merged over it, then ``--set section.key=value`` overrides are applied, and the
result is checked against :data:`SCHEMA`: unknown keys, wrong types and out-of-range values raise
:class:`ConfigError` naming the key and what is allowed. Nothing in this module holds a default
value: the schema only states types and bounds.
"""

from __future__ import annotations

import importlib.util

import copy
import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml
from pydantic import BaseModel, ValidationError

from curriculum.config import CurriculumConfig, CurriculumError
from curriculum.config import check as check_curriculum

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = REPO_ROOT / "config.yaml"


class ConfigError(ValueError):
    """A config key or value is wrong. The message names the key and what is allowed."""


@dataclass(frozen=True)
class Field:
    """Type and bounds of one config value.

    :param kind: "int", "float", "bool", "str", "list[str]", "list[int]", "path?" (a string or null).
    :param low: smallest allowed value (numbers), inclusive.
    :param high: largest allowed value (numbers), inclusive.
    :param choices: allowed strings (for "str" and the items of "list[str]").
    """

    kind: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] | None = None

    def describe(self) -> str:
        parts = [self.kind]
        if self.choices:
            parts.append("one of " + ", ".join(repr(c) for c in self.choices))
        if self.low is not None and self.high is not None:
            parts.append(f"between {self.low:g} and {self.high:g}")
        elif self.low is not None:
            parts.append(f">= {self.low:g}")
        elif self.high is not None:
            parts.append(f"<= {self.high:g}")
        return ", ".join(parts)


# Names accepted by the component registries in envs/ (kept here so validation needs no RocketSim import).
OBS_BUILDERS = ("default", "relative")
ACTION_PARSERS = ("lookup_table",)
STATE_MUTATORS = ("kickoff", "random", "jitter")
OPPONENT_POLICIES = ("idle", "random")
SCRIPTED_OPPONENTS = ("idle", "random", "chaser")
REWARD_PARTS = ("goal", "touch", "player_to_ball", "speed_to_ball", "face_ball", "ball_to_goal", "boost_gain")
ACTIVATIONS = ("relu", "tanh", "leaky_relu")
DEVICES = ("auto", "cpu", "cuda")

_POS_INT = Field("int", low=1)
_UNIT = Field("float", low=0.0, high=1.0)
_NONNEG = Field("float", low=0.0)

VEC_ENVS = ("selfplay", "subproc")
SELFPLAY_BACKENDS = ("local", "ray")
#: Team sizes a self-play match may have, as named under ``environment.selfplay.matches``.
MATCH_SIZES = {"1v1": 1, "2v2": 2, "3v3": 3}

SCHEMA: dict[str, dict[str, Any]] = {
    "environment": {
        "vec_env": Field("str", choices=VEC_ENVS),
        "selfplay": {
            "matches": {name: Field("int", low=0) for name in MATCH_SIZES},
            "num_workers": Field("int", low=0),
            "max_worker_restarts": Field("int", low=0),
            "backend": Field("str", choices=SELFPLAY_BACKENDS),
        },
        "blue_size": Field("int", low=1, high=3),
        "orange_size": Field("int", low=0, high=3),
        "opponent_policy": Field("str", choices=OPPONENT_POLICIES),
        "num_envs": _POS_INT,
        "auto_adjust_envs": Field("bool"),
        "max_envs_per_core": _POS_INT,
        "tick_skip": Field("int", low=1, high=120),
        "obs_builder": Field("str", choices=OBS_BUILDERS),
        "obs_zero_padding": Field("int", low=1, high=3),
        "action_parser": Field("str", choices=ACTION_PARSERS),
        "state_mutators": Field("list[str]", choices=STATE_MUTATORS),
        "kickoff_jitter": {"car_xy_uu": _NONNEG, "car_yaw_rad": _NONNEG, "ball_xy_uu": _NONNEG},
        "random_start_share": _UNIT,
        "episode_seconds": Field("float", low=0.1),
        "no_touch_timeout_seconds": Field("float", low=0.1),
        "no_touch_timeout_terminal": Field("bool"),
        "meshes_path": Field("path?"),
    },
    "rewards": {name: Field("float") for name in REWARD_PARTS},
    "ray": {
        "address": Field("str"),
        "actors": Field("int", low=0),
        "cpus_per_actor": Field("float", low=0.0),
        "workers_per_actor": Field("int", low=0),
        "num_cpus": Field("int", low=0),
        "object_store_mb": Field("int", low=0),
    },
    "league": {
        "matches": {name: Field("int", low=0) for name in MATCH_SIZES},
        "shares": {"past": _NONNEG, "scripted": _NONNEG, "self": _NONNEG},
        "scripted": Field("list[str]", choices=SCRIPTED_OPPONENTS),
        "snapshot_every": _POS_INT,
        "pool_size": _POS_INT,
        "min_pick_weight": _UNIT,
    },
    # A section whose schema is a pydantic model (lists of stages do not fit the Field tree).
    "curriculum": CurriculumConfig,
    "training": {
        "total_timesteps": _POS_INT,
        "n_steps": Field("int", low=2),
        "pipeline_groups": Field("int", low=0, high=16),
        "mirror": Field("bool"),
        "batch_size": Field("int", low=2),
        "n_epochs": _POS_INT,
        "gamma": Field("float", low=0.0, high=1.0),
        "gae_lambda": _UNIT,
        "clip_range": Field("float", low=1e-6, high=1.0),
        "vf_coef": _NONNEG,
        "max_grad_norm": Field("float", low=1e-9),
        "learning_rate": Field("float", low=1e-12, high=1.0),
        "final_learning_rate": Field("float", low=0.0, high=1.0),
        "ent_coef": _NONNEG,
        "final_ent_coef": _NONNEG,
        "net_arch": {"pi": Field("list[int]", low=1), "vf": Field("list[int]", low=1)},
        "activation": Field("str", choices=ACTIVATIONS),
        "device": Field("str", choices=DEVICES),
        "torch_threads": Field("int", low=0),
        "update_threads": Field("int", low=0),
        "seed": Field("int", low=0),
    },
    "normalize": {
        "norm_obs": Field("bool"),
        "norm_reward": Field("bool"),
        "clip_obs": Field("float", low=1e-6),
        "clip_reward": Field("float", low=1e-6),
    },
    "checkpoints": {
        "save_freq": _POS_INT,
        "keep_last": Field("int", low=0),
        "min_free_mb": Field("int", low=0),
    },
    "evaluation": {
        "eval_freq": Field("int", low=0),
        "n_eval_episodes": _POS_INT,
    },
    "health": {
        "patience": _POS_INT,
        "approx_kl_max": Field("float", low=0.0),
        "clip_fraction_max": _UNIT,
        "grad_norm_max": Field("float", low=0.0),
    },
    "logging": {
        "progress_bar": Field("bool"),
        "log_interval": _POS_INT,
        "stdout_table": Field("bool"),
    },
}


def _allowed(keys: Mapping[str, Any]) -> str:
    return ", ".join(sorted(keys))


def _suggest(key: str, keys: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(key, list(keys), n=1)
    return f" Did you mean '{close[0]}'?" if close else ""


#: Numbers in exponent form without a dot (``1e-4``, ``3E5``), which PyYAML's YAML 1.1 resolver leaves as strings.
_YAML11_EXPONENT = re.compile(r"^[-+]?\d+[eE][-+]?\d+$")


def _check_value(path: str, value: Any, spec: Field) -> Any:
    """Return ``value`` (ints widened to float where a float is expected) or raise ConfigError."""

    def fail(what: str) -> ConfigError:
        return ConfigError(f"config key '{path}': {what} (got {value!r}); allowed: {spec.describe()}.")

    kind = spec.kind
    if kind == "bool":
        if not isinstance(value, bool):
            raise fail("expected true or false")
        return value
    if kind == "path?":
        if value is not None and not isinstance(value, str):
            raise fail("expected a folder path or null")
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise fail("expected a string")
        if spec.choices and value not in spec.choices:
            raise fail("unknown choice")
        return value
    if kind in ("int", "float"):
        if isinstance(value, str) and _YAML11_EXPONENT.match(value.strip()):
            value = float(value)  # YAML 1.1 reads 1e-4 (no dot) as a string; users mean the number
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise fail(f"expected a number ({kind})")
        if kind == "int":
            if isinstance(value, float) and not value.is_integer():
                raise fail("expected a whole number")
            value = int(value)
        else:
            value = float(value)
        if spec.low is not None and value < spec.low or spec.high is not None and value > spec.high:
            raise fail("out of range")
        return value
    if kind in ("list[str]", "list[int]"):
        if not isinstance(value, list) or not value:
            raise fail("expected a non-empty list")
        item_spec = Field(kind[5:-1], low=spec.low, high=spec.high, choices=spec.choices)
        return [_check_value(f"{path}[{i}]", item, item_spec) for i, item in enumerate(value)]
    raise AssertionError(f"unknown field kind {kind}")


def _is_model(spec: Any) -> bool:
    return isinstance(spec, type) and issubclass(spec, BaseModel)


def _validate_model(node: Any, model: type[BaseModel], prefix: str) -> dict[str, Any]:
    """A section checked by a pydantic model, its errors turned into :class:`ConfigError` naming the key."""
    try:
        return model.model_validate(node).model_dump()
    except ValidationError as exc:
        error = exc.errors()[0]
        key = prefix + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"])
        if error["type"] == "extra_forbidden":
            raise ConfigError(f"unknown config key '{key}' (see the repository's config.yaml for the keys this "
                              "section takes).") from None
        if error["type"] == "missing":
            raise ConfigError(f"config key '{key}' is missing; add it (see the repository's config.yaml).") from None
        raise ConfigError(f"config key '{key}': {error['msg']} (got {error.get('input')!r}).") from None


def _validate(node: Any, schema: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    where = prefix or "the top level"
    if not isinstance(node, dict):
        raise ConfigError(f"config section '{prefix}' must be a mapping of keys to values, got {node!r}.")
    for key in node:
        if key not in schema:
            name = f"{prefix}.{key}" if prefix else str(key)
            raise ConfigError(
                f"unknown config key '{name}'.{_suggest(str(key), schema)} Allowed keys in {where}: {_allowed(schema)}."
            )
    out: dict[str, Any] = {}
    for key, spec in schema.items():
        name = f"{prefix}.{key}" if prefix else key
        if key not in node:
            raise ConfigError(f"config key '{name}' is missing; add it (see the repository's config.yaml).")
        if isinstance(spec, dict):
            out[key] = _validate(node[key], spec, name)
        elif _is_model(spec):
            out[key] = _validate_model(node[key], spec, name)
        else:
            out[key] = _check_value(name, node[key], spec)
    return out


def _check_consistency(cfg: dict[str, Any]) -> None:
    """Rules that involve more than one key."""
    env, train = cfg["environment"], cfg["training"]
    for side in ("blue_size", "orange_size"):
        if env[side] > env["obs_zero_padding"]:
            raise ConfigError(
                f"config key 'environment.{side}' ({env[side]}) is larger than 'environment.obs_zero_padding' "
                f"({env['obs_zero_padding']}); raise obs_zero_padding to at least {env[side]}."
            )
    if env["vec_env"] == "selfplay":
        matches = env["selfplay"]["matches"]
        if sum(matches.values()) + sum(cfg["league"]["matches"].values()) == 0:
            raise ConfigError(
                "config sections 'environment.selfplay.matches' and 'league.matches': every count is 0; run at "
                "least one match (e.g. --set environment.selfplay.matches.1v1=16) or use "
                "environment.vec_env=subproc."
            )
        for name, count in matches.items():
            if count and MATCH_SIZES[name] > env["obs_zero_padding"]:
                raise ConfigError(
                    f"config key 'environment.selfplay.matches.{name}' ({count}) needs "
                    f"'environment.obs_zero_padding' >= {MATCH_SIZES[name]} (it is {env['obs_zero_padding']})."
                )
        if env["selfplay"]["backend"] == "ray" and not _ray_installed():
            raise ConfigError("config key 'environment.selfplay.backend' is 'ray', but Ray is not installed (an "
                              "optional install): pip install -r requirements-ray.txt, or set "
                              "environment.selfplay.backend=local.")
    league = cfg["league"]
    for name, count in league["matches"].items():
        if count and MATCH_SIZES[name] > env["obs_zero_padding"]:
            raise ConfigError(
                f"config key 'league.matches.{name}' ({count}) needs 'environment.obs_zero_padding' >= "
                f"{MATCH_SIZES[name]} (it is {env['obs_zero_padding']})."
            )
    if any(league["matches"].values()) and sum(league["shares"].values()) <= 0:
        raise ConfigError("config section 'league.shares': every share is 0; give past, scripted or self a "
                          "positive share, or set league.matches to 0.")
    mutators = env["state_mutators"]
    if mutators[0] == "jitter":
        raise ConfigError("config key 'environment.state_mutators': 'jitter' moves the cars and ball of a start state "
                          "set before it; put it after 'kickoff' (e.g. [kickoff, jitter]).")
    try:
        check_curriculum(cfg)
    except CurriculumError as exc:
        raise ConfigError(str(exc)) from None
    if train["mirror"] and env["obs_builder"] != "default":
        raise ConfigError(f"config key 'training.mirror' is true, but mirroring knows only the 'default' obs builder "
                          f"(environment.obs_builder is '{env['obs_builder']}'); set training.mirror=false or "
                          "environment.obs_builder=default.")
    if train["final_learning_rate"] > train["learning_rate"]:
        raise ConfigError("config key 'training.final_learning_rate' must be <= 'training.learning_rate'.")
    if not any(weight != 0 for weight in cfg["rewards"].values()):
        raise ConfigError("config section 'rewards': every weight is 0; give at least one part a non-zero weight.")


def _ray_installed() -> bool:
    try:
        return importlib.util.find_spec("ray") is not None
    except ValueError:  # sys.modules["ray"] is None: blocked
        return False


def league_match_counts(cfg: dict[str, Any]) -> dict[str, int]:
    """League matches per size, or none when they do not apply (``environment.vec_env: subproc``)."""
    if cfg["environment"]["vec_env"] != "selfplay":
        return {name: 0 for name in MATCH_SIZES}
    return cfg["league"]["matches"]


def check_rollout(cfg: dict[str, Any], num_envs: int) -> None:
    """The minibatch must fit in one rollout of ``num_envs`` x ``n_steps`` samples (known once the vec env is
    sized: in self-play it is the number of cars).

    :raises ConfigError: ``training.batch_size`` is larger than the rollout.
    """
    train = cfg["training"]
    rollout = num_envs * train["n_steps"]
    if train["batch_size"] > rollout:
        raise ConfigError(
            f"config key 'training.batch_size' ({train['batch_size']}) is larger than one rollout "
            f"({num_envs} envs x training.n_steps {train['n_steps']} = {rollout} samples); PPO would train on "
            f"one short minibatch. Set training.batch_size to at most {rollout} (ideally a divisor of it), or "
            "raise training.n_steps."
        )


def deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``base`` with ``override`` merged in (dicts merged recursively, anything else replaced)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``--set section.key=value``; the value is read as YAML (``0.99``, ``true``, ``[kickoff]``)."""
    if "=" not in text:
        raise ConfigError(f"--set '{text}': expected KEY=VALUE, e.g. --set training.gamma=0.99.")
    key, raw = text.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"--set '{text}': empty key; expected e.g. training.gamma=0.99.")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set '{text}': value is not valid YAML ({exc}).") from exc
    return parts, value


def apply_override(cfg: dict[str, Any], parts: list[str], value: Any) -> None:
    """Set ``cfg[parts[0]][parts[1]]... = value``, refusing keys the schema does not know."""
    node, schema = cfg, SCHEMA
    for i, part in enumerate(parts):
        dotted = ".".join(parts[: i + 1])
        keys = schema.model_fields if _is_model(schema) else schema
        if not isinstance(keys, Mapping) or part not in keys:
            allowed = _allowed(keys) if isinstance(keys, Mapping) else "(no sub-keys)"
            hint = _suggest(part, keys) if isinstance(keys, Mapping) else ""
            raise ConfigError(f"--set: unknown config key '{dotted}'.{hint} Allowed here: {allowed}.")
        if i == len(parts) - 1:
            node[part] = value
        else:
            node = node.setdefault(part, {})
            schema = keys[part].annotation if _is_model(schema) else schema[part]


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file '{path}' not found; pass an existing file with --config or drop --config.")
    if path.stat().st_size == 0 or not path.read_text().strip():
        raise ConfigError(f"config file '{path}' is empty; put the sections you want to change in it (see the "
                          "repository's config.yaml), or drop --config to train on the defaults.")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file '{path}' is not valid YAML: {exc}") from exc
    if data is None:
        raise ConfigError(f"config file '{path}' holds only comments; put the sections you want to change in it "
                          "(see the repository's config.yaml), or drop --config to train on the defaults.")
    if not isinstance(data, dict):
        raise ConfigError(f"config file '{path}' must hold a mapping of sections (environment:, training:, ...).")
    return data


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> dict[str, Any]:
    """Load the defaults, merge ``path`` over them, apply ``--set`` overrides, validate.

    :param path: a user config file; None uses ``./config.yaml`` when the current folder has one,
        else the repository's ``config.yaml`` alone.
    :param overrides: ``["training.gamma=0.99", ...]``.
    :return: the validated config as nested dicts (numbers converted to the schema's types).
    :raises ConfigError: with a message naming the bad key and what is allowed.
    """
    cfg = _read_yaml(DEFAULT_CONFIG_PATH)
    if path is None and Path("config.yaml").is_file():
        path = "config.yaml"
    if path is not None and Path(path).resolve() != DEFAULT_CONFIG_PATH:
        cfg = deep_merge(cfg, _read_yaml(Path(path)))  # unknown keys survive the merge and fail validation
    for text in overrides or []:
        apply_override(cfg, *parse_override(text))
    cfg = _validate(cfg, SCHEMA, "")
    _check_consistency(cfg)
    return cfg

