"""Users' own rlgym v2 components, named by import path in ``config.yaml``: import, check, build.

A part is ``{class: "my_bot.rewards:AerialTouchReward", kwargs: {min_height: 300}}``. Its module is imported
from the current folder (added to ``sys.path`` when missing, so ``python train_sb3.py`` run from a bot
project finds ``my_bot/``) or the Python path. Worker processes started with ``spawn`` inherit that
``sys.path``; the Ray backend ships the part's top-level package to every node (:func:`module_roots`).

:func:`check_parts` runs when the config loads, before any worker starts: the module must import, hold the
name, the name must be a subclass of the right rlgym base class, and its constructor must accept the kwargs.
It does not construct the parts (a constructor may be slow or need RocketSim); a constructor that raises
stops the worker that builds it, with the part named in the error (:func:`build_part`).
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import traceback
from pathlib import Path
from typing import Any, Iterator, Optional

from rlgym.api import DoneCondition, ObsBuilder, RewardFunction, StateMutator

from config.schema import Config, EnvironmentConfig, PartSpec, Rewards


class PartError(ValueError):
    """A custom part cannot be used; the message names the config key, what is wrong and the fix."""


def _ensure_on_path(folder: Optional[str]) -> None:
    """``folder`` (or the current folder) on ``sys.path``, where spawned worker processes inherit it."""
    if folder is not None:
        resolved = str(Path(folder).expanduser().resolve())
        if resolved not in sys.path:
            sys.path.insert(0, resolved)
        return
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)


def split_path(path: str) -> tuple[str, str]:
    """``"pkg.mod:Name"`` or ``"pkg.mod.Name"`` -> ``("pkg.mod", "Name")``."""
    module, sep, name = path.partition(":")
    if not sep:
        module, _, name = path.rpartition(".")
    return module, name


def import_class(key: str, spec: PartSpec) -> type:
    """The class ``spec`` names (imported from ``spec.path``, else the current folder or the Python path).

    :raises PartError: the module does not import (its error is in the message) or has no such name.
    """
    path = spec.cls
    module_name, name = split_path(path)
    if not module_name or not name:
        raise PartError(f"config key '{key}': class '{path}' is not an import path; write it as "
                        "'module:ClassName' (e.g. 'my_bot.rewards:AerialTouchReward').")
    if spec.path is not None and not Path(spec.path).expanduser().is_dir():
        raise PartError(f"config key '{key}.path': folder '{spec.path}' does not exist; point it at the folder that "
                        f"holds the '{module_name.split('.')[0]}' module, or remove it.")
    _ensure_on_path(spec.path)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any import-time error of the user's module is reported as is
        where = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        where_from = (f"from '{spec.path}'" if spec.path is not None else "from the current folder or the Python path: "
                      f"run from the folder that holds it, give its folder as {key}.path, or add it to PYTHONPATH")
        raise PartError(f"config key '{key}': module '{module_name}' does not import ({where}). It is imported "
                        f"{where_from}.") from None
    if not hasattr(module, name):
        public = sorted(n for n, v in vars(module).items() if isinstance(v, type) and not n.startswith("_"))
        raise PartError(f"config key '{key}': module '{module_name}' has no '{name}'"
                        + (f"; its classes: {', '.join(public)}." if public else "."))
    return getattr(module, name)


def check_class(key: str, spec: PartSpec, base: type) -> type:
    """The class of ``spec``, checked against ``base`` and its constructor against ``spec.kwargs``.

    :raises PartError: naming ``key``.
    """
    cls = import_class(key, spec)
    if not isinstance(cls, type) or not issubclass(cls, base):
        raise PartError(f"config key '{key}': '{spec.cls}' is not a subclass of rlgym's {base.__name__} (it is "
                        f"{cls!r}); derive it from rlgym.api.{base.__name__}.")
    try:
        inspect.signature(cls).bind(**spec.kwargs)
    except TypeError as exc:
        raise PartError(f"config key '{key}.kwargs': {cls.__name__} does not accept {spec.kwargs} ({exc}); "
                        f"its constructor is {cls.__name__}{inspect.signature(cls)}.") from None
    except ValueError:  # a builtin or C-extension constructor without a signature: left to the build
        pass
    return cls


def build_part(key: str, spec: PartSpec, base: type) -> Any:
    """An instance of ``spec``'s class.

    :raises PartError: the constructor raised (the part and its traceback are in the message).
    """
    cls = check_class(key, spec, base)
    try:
        return cls(**spec.kwargs)
    except Exception:  # noqa: BLE001 - the user's constructor: report which part failed and how
        raise PartError(f"config key '{key}': {spec.cls}(**{spec.kwargs}) raised:\n{traceback.format_exc()}") from None


def custom_parts(env: EnvironmentConfig, rewards: Rewards) -> Iterator[tuple[str, PartSpec, type]]:
    """Every custom part of a config's ``environment`` and ``rewards`` sections: ``(config key, spec, rlgym base
    class)``."""
    if isinstance(env.obs_builder, PartSpec):
        yield "environment.obs_builder", env.obs_builder, ObsBuilder
    for i, mutator in enumerate(env.state_mutators):
        if isinstance(mutator, PartSpec):
            yield f"environment.state_mutators[{i}]", mutator, StateMutator
    for kind in ("terminal", "truncation"):
        for i, condition in enumerate(getattr(env.done_conditions, kind)):
            yield f"environment.done_conditions.{kind}[{i}]", condition, DoneCondition
    for name, reward in rewards.items():
        if isinstance(reward, PartSpec):
            yield f"rewards.{name}", reward, RewardFunction


def check_parts(cfg: Config) -> None:
    """Import and check every custom part of ``cfg`` (see the module docstring).

    :raises PartError: naming the first bad part's key.
    """
    for key, spec, base in custom_parts(cfg.environment, cfg.rewards):
        check_class(key, spec, base)


def module_root(spec: PartSpec) -> Path:
    """The top-level package folder (or single-module file) that defines ``spec``'s class: what must be copied to
    another machine (Ray's ``runtime_env={"py_modules": ...}``) or into an exported bot for the class to import."""
    import_class("", spec)
    top = importlib.import_module(split_path(spec.cls)[0].split(".")[0])
    path = Path(inspect.getfile(top)).resolve()
    return path.parent if path.name == "__init__.py" else path


def with_paths(cfg: Config) -> Config:
    """A copy of ``cfg`` in which every custom part records the absolute folder it was imported from (``path``):
    what a run folder's ``config.yaml`` holds, so that the run rebuilds the same parts from any folder."""
    out = cfg.model_copy(deep=True)
    for _, spec, _ in custom_parts(out.environment, out.rewards):
        spec.path = str(module_root(spec).parent)
    return out


def module_roots(env: EnvironmentConfig, rewards: Rewards) -> list[Path]:
    """:func:`module_root` of every custom part, each once."""
    return list(dict.fromkeys(module_root(spec) for _, spec, _ in custom_parts(env, rewards)))
