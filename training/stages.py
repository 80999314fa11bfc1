"""Apply curriculum stages to a run: the config a stage plays, and the switch to the next stage mid-run.

At a stage change the vec env is rebuilt with the stage's matches (same number of learning cars, so SB3's model
and rollout buffer are unchanged) and put under the run's own ``VecMonitor`` and ``VecNormalize`` (whose statistics
carry on). The switch happens after a rollout was collected and its advantages computed: the cut episodes were
bootstrapped from their last observation like truncated ones, and the next rollout starts from the new matches'
first observations. Why not SB3: it has no notion of changing the envs under a model; ``set_env`` would rebuild
the wrappers and lose the normalizer's running statistics.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Callable, Mapping, Optional, Protocol

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from config.schema import Config, ScriptedName, Shares
from config.stages import active, learning_cars, scripted_weights, stage_config
from config import league_match_counts
from curriculum.curriculum import Curriculum
from envs.components import team_sizes
from training.model_files import read_model_data
from vecenv.base import MatchesVecEnv, Opponents

#: The matches of stage ``i`` are seeded from ``seed + i * STAGE_SEED_STRIDE``: a new stage never replays the
#: episodes that the first stage's matches played.
STAGE_SEED_STRIDE = 7919
#: Attribute of the model (saved in every zip SB3 writes) that holds the stage's name.
STAGE_ATTRIBUTE = "curriculum_stage"


def start_curriculum(cfg: Config, resume_model: Optional[Path]) -> Optional[Curriculum]:
    """The run's curriculum (None when off or in subproc mode): a new run starts at the first stage (or the pinned
    one), a resumed run at the stage saved in its model file. A model saved before the curriculum existed starts
    at the first stage with a warning; nothing else of it changes."""
    if not active(cfg):
        return None
    saved = None
    if resume_model is not None:
        data = read_model_data(resume_model)
        saved = data.get(STAGE_ATTRIBUTE)
        if saved is None and cfg.curriculum.pin is None:
            first = cfg.curriculum.stages[0].name
            warnings.warn(f"curriculum: '{resume_model}' was saved without a curriculum stage (a run from before "
                          f"the curriculum, or one with curriculum.enabled false); starting at the first stage "
                          f"'{first}'. Its weights, normalizer and step count are kept.", RuntimeWarning, stacklevel=2)
    return Curriculum.resume(cfg.curriculum, saved)


def stage_cfg(cfg: Config, curriculum: Optional[Curriculum]) -> Config:
    """The config the current stage plays (``cfg`` itself without a curriculum)."""
    return cfg if curriculum is None else stage_config(cfg, curriculum.index)


def stage_seed(seed: int, curriculum: Optional[Curriculum]) -> int:
    return seed if curriculum is None else seed + curriculum.index * STAGE_SEED_STRIDE


def has_league(cfg: Config, curriculum: Optional[Curriculum]) -> bool:
    """Some stage (or the config without a curriculum) plays league matches: the run needs its league."""
    if curriculum is None:
        return any(league_match_counts(cfg).values())
    return any(any(stage_config(cfg, i).league.matches.values()) for i in range(len(curriculum.cfg.stages)))


class StageLeague(Opponents, Protocol):
    """What a stage change asks of the run's league (:class:`league.league.League`, a layer above this one)."""

    def set_mix(self, shares: Shares, scripted_weights: Mapping[ScriptedName, float]) -> None:
        """The opponent kinds' shares and the scripted bots' weights of the stage."""

    def resize(self, n_matches: int) -> None:
        """The vec env was rebuilt with ``n_matches`` league matches."""


class StageSwitch:
    """Puts a run into its curriculum's current stage: the league's opponent mix, and (mid-run) the matches.

    :param cfg: the run's config (unresolved: with its curriculum section).
    :param num_envs: the run's learning cars (every stage has as many).
    :param seed: the run's base seed.
    :param league: the run's :class:`league.league.League` (None: no league).
    :param make_vec_env: ``(cfg, num_envs, seed) -> VecEnv`` (``training.setup.make_vec_env``).
    """

    def __init__(self, cfg: Config, curriculum: Curriculum, num_envs: int, seed: int, league: Optional[StageLeague],
                 make_vec_env: Callable[[Config, int, int], VecEnv]):
        self.cfg, self.curriculum, self.num_envs, self.seed = cfg, curriculum, num_envs, seed
        self.league, self.make_vec_env = league, make_vec_env
        self._resolved_cfg = cfg  # replaced on the first read (_resolved_for is None until then)
        self._resolved_for: Optional[int] = None

    def apply_mix(self) -> None:
        """The stage's league shares and scripted weights."""
        if self.league is not None:
            self.league.set_mix(self._resolved().league.shares, scripted_weights(self.cfg, self.curriculum.index))

    def league_car_share(self) -> float:
        """Share of the learning cars that play league matches in the current stage."""
        return learning_cars({}, self._resolved().league.matches) / self.num_envs

    def _resolved(self) -> Config:
        """The current stage's config, resolved once per stage (the callback asks after every rollout)."""
        if self._resolved_for != self.curriculum.index:
            self._resolved_cfg, self._resolved_for = stage_cfg(self.cfg, self.curriculum), self.curriculum.index
        return self._resolved_cfg

    def switch(self, model: BaseAlgorithm) -> None:
        """The curriculum advanced: rebuild the matches for its stage under the model's wrappers."""
        resolved = self._resolved()
        norm = model.get_vec_normalize_env()
        assert norm is not None, "the run's VecNormalize"
        monitor = norm.venv
        assert isinstance(monitor, VecEnvWrapper), "the run's VecMonitor"
        # The old matches go first: on Ray their actors hold the CPUs the new ones need (and a Ray this process
        # started stops with them; the new env starts it again).
        monitor.venv.close()
        new = self.make_vec_env(resolved, self.num_envs, stage_seed(self.seed, self.curriculum))
        monitor.venv = new
        if new.num_envs != monitor.num_envs:
            raise RuntimeError(f"curriculum stage '{self.curriculum.stage.name}' built {new.num_envs} learning cars, "
                               f"the run has {monitor.num_envs}")
        if self.league is not None:
            self.league.resize(len(team_sizes(resolved.league.matches)))
            assert isinstance(new, MatchesVecEnv), "league matches run in a self-play vec env"
            new.set_opponents(self.league)
        self.apply_mix()
        model._last_obs = norm.reset()
        model._last_episode_starts = np.ones(self.num_envs, dtype=bool)
        setattr(model, STAGE_ATTRIBUTE, self.curriculum.stage.name)
