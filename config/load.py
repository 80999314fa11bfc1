"""Load ``config.yaml``: merge, override, validate into a typed :class:`~config.schema.Config`.

The repository's ``config.yaml`` holds every default (documented there). A user file given with ``--config`` is
merged over it, then ``--set section.key=value`` overrides are applied, and the result is validated by the pydantic
schema (``config/schema.py``), then by the rules that involve several keys (:func:`check_rules`), then every custom
part is imported and checked (``config/parts.py``). Anything wrong raises :class:`ConfigError` naming the key and
the fix. Nothing here holds a default value.
"""

from __future__ import annotations

import copy
import difflib
import importlib.util
import json
import re
import typing
from pathlib import Path
from typing import Any, Mapping, Optional

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from config.parts import PartError, check_parts
from config.schema import (BUILTIN, CUSTOM, MATCH_SIZES, REWARD_PARTS, Config, ConfigError, PartSpec, part_name,
                           reward_weight)
from config.sizing import minibatch, resolve_scale
from config.stages import check as check_stages

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = REPO_ROOT / "config.yaml"
#: The JSON Schema of config.yaml, for editors (``python train_sb3.py --write-schema`` rewrites it).
SCHEMA_PATH = REPO_ROOT / "config.schema.json"


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader reading ``1e-4`` and ``1e6`` (no dot) as numbers, as YAML 1.2 does (1.1: strings)."""


_Loader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(r"^[-+]?\d+[eE][-+]?\d+$"), list("-+0123456789"))


def _refuse_duplicates(node: yaml.Node, path: str) -> None:
    """A key given twice in one mapping is an error: PyYAML keeps the last one silently, so a second ``touch:``
    under ``rewards:`` would replace the first without a word."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                where = f"'{path}'" if path else "the top level"
                raise ConfigError(f"key '{key}' appears twice in {where} (lines {seen[key] + 1} and "
                                  f"{key_node.start_mark.line + 1}); keep one (names must be unique).")
            seen[key] = key_node.start_mark.line
            _refuse_duplicates(value_node, f"{path}.{key}" if path else str(key))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _refuse_duplicates(item, f"{path}[{i}]")


def read_yaml_text(text: str, where: str) -> Any:
    """YAML as this trainer reads it: duplicate keys refused, ``1e6`` a number."""
    try:
        node = yaml.compose(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
        if node is not None:
            _refuse_duplicates(node, "")
        return yaml.load(text, Loader=_Loader)  # noqa: S506
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where} is not valid YAML: {exc}") from None


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file '{path}' not found; pass an existing file with --config or drop --config.")
    data = read_yaml_text(path.read_text(), f"config file '{path}'")
    if data is None:
        raise ConfigError(f"config file '{path}' is empty (or only comments); put the sections you want to change in "
                          "it (see the repository's config.yaml), or drop --config to train on the defaults.")
    if not isinstance(data, dict):
        raise ConfigError(f"config file '{path}' must hold a mapping of sections (environment:, training:, ...).")
    return data


def deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``base`` with ``override`` merged in (dicts merged recursively, anything else replaced)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


# ---------------------------------------------------------------------------------------------------- schema walk


def _model_of(annotation: Any) -> Optional[type[BaseModel]]:
    """The pydantic model a field holds, looking through ``Annotated``, ``Optional``, ``list`` and the built-in-or-part
    unions (``Optional[Shares]`` -> ``Shares``); None for plain values and mappings."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) is dict:
        return None
    return next((m for m in map(_model_of, typing.get_args(annotation)) if m is not None), None)


def _keys_at(loc: tuple) -> dict[str, Any]:
    """The keys the section at ``loc`` (a pydantic error's path) takes, by the names config.yaml uses."""
    keys: dict[str, Any] = {f.alias or n: f.annotation for n, f in Config.model_fields.items()}
    for part in loc:
        if isinstance(part, str) and part not in (BUILTIN, CUSTOM):
            annotation = keys.get(part)
            model = _model_of(annotation)
            keys = ({f.alias or n: f.annotation for n, f in model.model_fields.items()} if model
                    else dict(getattr(annotation, "__annotations__", {})))  # a TypedDict: the match counts
    return keys


def _key(loc: tuple) -> str:
    key = ""
    for part in loc:
        if part in (BUILTIN, CUSTOM, "[key]"):
            continue
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    return key


def _suggest(key: str, keys: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(key, list(keys), n=1)
    return f" Did you mean '{close[0]}'?" if close else ""


def _explain(error: ErrorDetails) -> str:
    """One pydantic error as a sentence naming the key and the fix."""
    loc = tuple(error["loc"])
    key, kind = _key(loc), error["type"]
    if kind == "extra_forbidden":
        keys = _keys_at(loc[:-1])
        where = _key(loc[:-1]) or "the top level"
        return (f"unknown config key '{key}'.{_suggest(str(loc[-1]), keys)} Allowed keys in {where}: "
                f"{', '.join(sorted(keys))}.")
    if kind == "missing" and CUSTOM in loc:
        return (f"config key '{key}' is missing: a custom part is written {{class: 'module:ClassName', kwargs: {{...}}}}"
                + (", with a weight under rewards." if loc[0] == "rewards" else "."))
    if kind == "missing":
        return f"config key '{key}' is missing; add it (see the repository's config.yaml)."
    text = f"config key '{key}': {error['msg']} (got {error.get('input')!r})."
    if BUILTIN in loc and kind == "literal_error":
        text += " A custom part is written {class: 'module:ClassName', kwargs: {...}}."
    return text


def validate(data: Any) -> Config:
    """``data`` (plain nested dicts) as a :class:`Config`, checked by the schema and :func:`check_rules`."""
    if not isinstance(data, dict):
        raise ConfigError(f"the config must be a mapping of sections (environment:, training:, ...), got {data!r}.")
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_explain(exc.errors()[0])) from None
    check_rules(cfg)
    return cfg


# ---------------------------------------------------------------------------------------------------- overrides


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``--set section.key=value``; the value is read as YAML (``0.99``, ``true``, ``[kickoff]``)."""
    if "=" not in text:
        raise ConfigError(f"--set '{text}': expected KEY=VALUE, e.g. --set training.gamma=0.99.")
    key, raw = text.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"--set '{text}': empty key; expected e.g. training.gamma=0.99.")
    return parts, read_yaml_text(raw, f"--set '{text}': the value")


def apply_override(data: dict[str, Any], parts: list[str], value: Any) -> None:
    """Set ``data[parts[0]][parts[1]]... = value`` (validation then judges the key and the value)."""
    node = data
    for i, part in enumerate(parts[:-1]):
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            dotted = ".".join(parts[: i + 1])
            raise ConfigError(f"--set: config key '{dotted}' holds a value, not a section; set '{dotted}' itself.")
    node[parts[-1]] = value


# ---------------------------------------------------------------------------------------------------- rules


def _ray_installed() -> bool:
    try:
        return importlib.util.find_spec("ray") is not None
    except ValueError:  # sys.modules["ray"] is None: blocked
        return False


def league_match_counts(cfg: Config) -> dict[str, int]:
    """League matches per size, or none when they do not apply (``environment.vec_env: subproc``)."""
    if cfg.environment.vec_env != "selfplay":
        return {name: 0 for name in MATCH_SIZES}
    return dict(cfg.league.matches)


def check_rules(cfg: Config) -> None:
    """Rules that involve more than one key, then the curriculum's rules.

    :raises ConfigError: naming the key and the fix.
    """
    env, train, league = cfg.environment, cfg.training, cfg.league
    if not isinstance(env.obs_builder, PartSpec):  # the built-in obs builders hold obs_zero_padding cars per team
        teams = {f"environment.{side}": getattr(env, side) for side in ("blue_size", "orange_size")}
        teams |= {f"{section}.{name}": MATCH_SIZES[name] for section, counts in (
            ("environment.selfplay.matches", env.selfplay.matches), ("league.matches", league.matches))
            for name, count in counts.items() if count}
        key, size = max(teams.items(), key=lambda item: item[1])
        if size > env.obs_zero_padding:
            raise ConfigError(f"config key '{key}' needs teams of {size} cars, more than 'environment.obs_zero_padding' "
                              f"({env.obs_zero_padding}); raise obs_zero_padding to at least {size}.")
    if env.vec_env == "selfplay":
        if sum(env.selfplay.matches.values()) + sum(league.matches.values()) == 0:
            raise ConfigError(
                "config sections 'environment.selfplay.matches' and 'league.matches': every count is 0; run at "
                "least one match (e.g. --set environment.selfplay.matches.1v1=16) or use "
                "environment.vec_env=subproc.")
        if env.selfplay.backend == "ray" and not _ray_installed():
            raise ConfigError("config key 'environment.selfplay.backend' is 'ray', but Ray is not installed (an "
                              "optional install): pip install -r requirements-ray.txt, or set "
                              "environment.selfplay.backend=local.")
    if any(league.matches.values()) and league.shares.total() <= 0:
        raise ConfigError("config section 'league.shares': every share is 0; give past, scripted or self a "
                          "positive share, or set league.matches to 0.")
    if env.state_mutators[0] == "jitter":
        raise ConfigError("config key 'environment.state_mutators': 'jitter' moves the cars and ball of a start state "
                          "set before it; put it after 'kickoff' (e.g. [kickoff, jitter]).")
    if train.mirror and env.obs_builder != "default":
        raise ConfigError(f"config key 'training.mirror' is true, but mirroring knows only the 'default' obs builder "
                          f"(environment.obs_builder is '{part_name(env.obs_builder)}'); set training.mirror=false or "
                          "environment.obs_builder=default.")
    if train.final_learning_rate > train.learning_rate:
        raise ConfigError("config key 'training.final_learning_rate' must be <= 'training.learning_rate'.")
    for name, reward in cfg.rewards.items():
        if not isinstance(reward, PartSpec) and name not in REWARD_PARTS:
            raise ConfigError(f"config key 'rewards.{name}': '{name}' is not a built-in reward part "
                              f"({', '.join(REWARD_PARTS)}).{_suggest(name, dict.fromkeys(REWARD_PARTS))} A custom "
                              f"part is written {name}: {{class: 'module:ClassName', weight: 1.0, kwargs: {{...}}}}.")
    if not any(reward_weight(reward) != 0 for reward in cfg.rewards.values()):
        raise ConfigError("config section 'rewards': every weight is 0; give at least one part a non-zero weight.")
    check_stages(cfg)


def check_rollout(cfg: Config, num_envs: int) -> None:
    """The minibatch must fit in one rollout of ``num_envs`` x ``n_steps`` samples (known once the vec env is
    sized: in self-play it is the number of cars).

    :raises ConfigError: ``training.batch_size`` is larger than the rollout.
    """
    train = cfg.training
    rollout = num_envs * train.n_steps
    if minibatch(train, num_envs) > rollout:
        raise ConfigError(
            f"config key 'training.batch_size' ({train.batch_size}) is larger than one rollout "
            f"({num_envs} envs x training.n_steps {train.n_steps} = {rollout} samples); PPO would train on "
            f"one short minibatch. Set training.batch_size to at most {rollout} (ideally a divisor of it), or "
            "raise training.n_steps.")


# ---------------------------------------------------------------------------------------------------- entry points


def load_config(path: str | Path | None = None, overrides: Optional[list[str]] = None,
                check_custom: bool = True) -> Config:
    """Load the defaults, merge ``path`` over them, apply ``--set`` overrides, validate.

    :param path: a user config file; None uses ``./config.yaml`` when the current folder has one,
        else the repository's ``config.yaml`` alone.
    :param overrides: ``["training.gamma=0.99", ...]``.
    :param check_custom: import and check the custom parts (``config/parts.py``).
    :return: the validated, typed config.
    :raises ConfigError: with a message naming the bad key and what is allowed.
    """
    data = _read_yaml(DEFAULT_CONFIG_PATH)
    if path is None and Path("config.yaml").is_file():
        path = "config.yaml"
    counts_given = False  # the user's own file or --set gives match counts (environment.selfplay.scale: auto)
    if path is not None and Path(path).resolve() != DEFAULT_CONFIG_PATH:
        user = _read_yaml(Path(path))
        counts_given = "matches" in _section(user, "environment", "selfplay") or "matches" in _section(user, "league")
        data = deep_merge(data, user)  # unknown keys survive the merge and fail validation
    for text in overrides or []:
        parts, value = parse_override(text)
        counts_given |= parts[:3] == ["environment", "selfplay", "matches"] or parts[:2] == ["league", "matches"]
        apply_override(data, parts, value)
    cfg = resolve_scale(validate(data), counts_given)
    if check_custom:
        try:
            check_parts(cfg)
        except PartError as exc:
            raise ConfigError(str(exc)) from None
    return cfg


def _section(data: Any, *keys: str) -> dict[str, Any]:
    """``data[keys[0]][keys[1]]...`` of a user's YAML, or ``{}`` where it is missing or not a mapping."""
    for key in keys:
        data = data.get(key) if isinstance(data, dict) else None
    return data if isinstance(data, dict) else {}


def to_yaml(cfg: Config) -> str:
    """``cfg`` as YAML, in the order and spelling of ``config.yaml``."""
    return yaml.safe_dump(cfg.dump(), sort_keys=False)


def json_schema() -> str:
    """The JSON Schema of ``config.yaml`` (a user file may give any subset of it: it is merged over the defaults,
    so the schema's ``required`` lists only apply to the merged whole)."""
    return json.dumps(Config.model_json_schema(by_alias=True), indent=1, sort_keys=True) + "\n"
