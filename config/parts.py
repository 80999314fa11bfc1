"""The custom parts of a whole config: check them all when it loads, and record where each was imported from.

Importing, checking and building one part is ``envs/parts.py`` (the env code builds them).
"""

from __future__ import annotations

from config.schema import Config
from envs.parts import PartError, check_class, custom_parts, module_root

__all__ = ["PartError", "check_parts", "with_paths"]


def check_parts(cfg: Config) -> None:
    """Import and check every custom part of ``cfg`` (``envs.parts.check_class``).

    :raises PartError: naming the first bad part's key.
    """
    for key, spec, base in custom_parts(cfg.environment, cfg.rewards):
        check_class(key, spec, base)


def with_paths(cfg: Config) -> Config:
    """A copy of ``cfg`` in which every custom part records the absolute folder it was imported from (``path``):
    what a run folder's ``config.yaml`` holds, so that the run rebuilds the same parts from any folder."""
    out = cfg.model_copy(deep=True)
    for _, spec, _ in custom_parts(out.environment, out.rewards):
        spec.path = str(module_root(spec).parent)
    return out
