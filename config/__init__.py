"""The trainer's configuration: the typed schema of ``config.yaml`` (``schema``), its loading and validation
(``load``), users' own rlgym parts named by import path (``parts``) and what a curriculum stage resolves to
(``stages``). This package sits below every other one: it imports none of them."""

from config.load import check_rollout, league_match_counts, load_config
from config.schema import Config, ConfigError

__all__ = ["Config", "ConfigError", "check_rollout", "league_match_counts", "load_config"]
