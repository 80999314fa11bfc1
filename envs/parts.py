"""Users' own rlgym v2 components, named by import path in ``config.yaml``: import, check, build, and name in
every error they raise.

A part is ``{class: "my_bot.rewards:AerialTouchReward", kwargs: {min_height: 300}}``. Its module is imported
from ``path`` when given, else from the current folder (added to ``sys.path`` when missing, so ``python
train_sb3.py`` run from a bot project finds ``my_bot/``) or the Python path. Worker processes started with
``spawn`` inherit that ``sys.path``; the Ray backend ships the part's top-level package to every node
(:func:`module_roots`).

:func:`check_class` runs for every part when the config loads (``config/parts.py``), before any worker starts: the
module must import, hold the name, the name must be a subclass of the right rlgym base class, and its constructor
must accept the kwargs. It does not construct the parts (a constructor may be slow or need RocketSim).

A built part is wrapped (:class:`NamedObsBuilder`, ...) so that an error it raises mid-run starts with its config
key (``environment.state_mutators[1] (my_bot.setters:ShotSetter) raised in apply()``) and the part's own exception
and traceback follow as its cause; rlgym has no such wrapper (``RLGym`` calls components directly). Reward parts are
named by :class:`envs.rewards.NamedPartsReward`, which holds each part's name.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import traceback
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

from rlgym.api import AgentID, DoneCondition, ObsBuilder, RewardFunction, StateMutator

from envs.schema import EnvironmentConfig, PartSpec, Rewards


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

    Not pydantic's ``ImportString``: that imports while the config validates, knows no ``path`` folder, and its
    error names neither the config key nor the module's own import error.

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


def module_root(spec: PartSpec) -> Path:
    """The top-level package folder (or single-module file) that defines ``spec``'s class: what must be copied to
    another machine (Ray's ``runtime_env={"py_modules": ...}``) or into an exported bot for the class to import."""
    import_class("", spec)
    top = importlib.import_module(split_path(spec.cls)[0].split(".")[0])
    path = Path(inspect.getfile(top)).resolve()
    return path.parent if path.name == "__init__.py" else path


def module_roots(env: EnvironmentConfig, rewards: Rewards) -> list[Path]:
    """:func:`module_root` of every custom part, each once."""
    return list(dict.fromkeys(module_root(spec) for _, spec, _ in custom_parts(env, rewards)))


class PartRaised(RuntimeError):
    """The user's part at config key ``key`` raised in ``method``; its exception is the ``__cause__``."""

    def __init__(self, key: str, cls: str, method: str):
        super().__init__(f"{key} ({cls}) raised in {method}(); its traceback is above")


def _guard(key: str, spec: PartSpec, method: str, call: Callable[[], Any]) -> Any:
    try:
        return call()
    except Exception as exc:
        raise PartRaised(key, spec.cls, method) from exc


class NamedObsBuilder(ObsBuilder):
    """A user's ``ObsBuilder`` (``part``), each call guarded by :func:`_guard`."""

    def __init__(self, key: str, spec: PartSpec):
        self.key, self.spec = key, spec
        self.part: ObsBuilder = build_part(key, spec, ObsBuilder)

    def get_obs_space(self, agent: AgentID) -> Any:
        return _guard(self.key, self.spec, "get_obs_space", lambda: self.part.get_obs_space(agent))

    def reset(self, agents: List[AgentID], initial_state: Any, shared_info: Dict[str, Any]) -> None:
        _guard(self.key, self.spec, "reset", lambda: self.part.reset(agents, initial_state, shared_info))

    def build_obs(self, agents: List[AgentID], state: Any, shared_info: Dict[str, Any]) -> Dict[AgentID, Any]:
        return _guard(self.key, self.spec, "build_obs", lambda: self.part.build_obs(agents, state, shared_info))


class NamedStateMutator(StateMutator):
    """A user's ``StateMutator``, guarded."""

    def __init__(self, key: str, spec: PartSpec):
        self.key, self.spec = key, spec
        self.part: StateMutator = build_part(key, spec, StateMutator)

    def apply(self, state: Any, shared_info: Dict[str, Any]) -> None:
        _guard(self.key, self.spec, "apply", lambda: self.part.apply(state, shared_info))


class NamedDoneCondition(DoneCondition):
    """A user's ``DoneCondition``, guarded."""

    def __init__(self, key: str, spec: PartSpec):
        self.key, self.spec = key, spec
        self.part: DoneCondition = build_part(key, spec, DoneCondition)

    def reset(self, agents: List[AgentID], initial_state: Any, shared_info: Dict[str, Any]) -> None:
        _guard(self.key, self.spec, "reset", lambda: self.part.reset(agents, initial_state, shared_info))

    def is_done(self, agents: List[AgentID], state: Any, shared_info: Dict[str, Any]) -> Dict[AgentID, bool]:
        return _guard(self.key, self.spec, "is_done", lambda: self.part.is_done(agents, state, shared_info))
