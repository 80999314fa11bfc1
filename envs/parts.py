"""Users' own rlgym components, built from their config entry and named in every error they raise.

A user's obs builder, state mutator or done condition that raises mid-run would otherwise surface as a bare
traceback from inside a worker; wrapped here, the error starts with the config key of the part
(``environment.state_mutators[1] (my_bot.setters:ShotSetter) raised in apply()``) and the part's own exception
and traceback follow as its cause. rlgym has no such wrapper: its components are called directly by ``RLGym``.
Rewards are named by :class:`envs.rewards.NamedPartsReward` (it already holds each part's name).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List

from rlgym.api import AgentID, DoneCondition, ObsBuilder, StateMutator

from config.parts import build_part
from config.schema import PartSpec


class PartRaised(RuntimeError):
    """The user's part at config key ``key`` raised in ``method``; its exception is the ``__cause__``."""

    def __init__(self, key: str, cls: str, method: str):
        super().__init__(f"{key} ({cls}) raised in {method}(); its traceback is above")
        self.key = key


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
