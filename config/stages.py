"""What a curriculum stage resolves to, and the rules a ``curriculum:`` section must keep with the rest.

A stage names only what it changes; anything it leaves out is the top-level value (``league.shares``,
``league.scripted``, and the split of the learning cars between self-play and league matches that
``environment.selfplay.matches`` and ``league.matches`` make). A stage's ``league_share`` re-splits the same learning
cars (SB3's ``num_envs`` stays fixed for a run) at the same team sizes: a 1v1 self-play match's 2 learning cars become
two 1v1 league matches, so a stage follows whatever match counts the user configured.
"""

from __future__ import annotations

from config.schema import MATCH_SIZES, Config, ConfigError, ScriptedName


def active(cfg: Config) -> bool:
    """The curriculum applies: enabled, and self-play mode (subproc runs have no league matches)."""
    return cfg.curriculum.enabled and cfg.environment.vec_env == "selfplay"


def split_matches(selfplay: dict[str, int], league: dict[str, int], league_share: float) -> tuple[dict[str, int],
                                                                                                  dict[str, int]]:
    """Self-play and league match counts with the same learning cars per team size as ``selfplay`` + ``league``,
    about ``league_share`` of them in league matches (rounded to whole self-play matches)."""
    out_selfplay, out_league = {}, {}
    for name in MATCH_SIZES:
        teams = 2 * selfplay.get(name, 0) + league.get(name, 0)  # learning teams of this size
        pairs = round((1.0 - league_share) * teams / 2)
        out_selfplay[name], out_league[name] = pairs, teams - 2 * pairs
    return out_selfplay, out_league


def stage_config(cfg: Config, index: int) -> Config:
    """The config as stage ``index`` plays it: its matches, league shares and scripted bots (those with a weight
    above 0) in place of the top-level ones. ``cfg`` itself (what ``config.yaml`` of the run folder holds) is not
    changed."""
    stage = cfg.curriculum.stages[index]
    out = cfg.model_copy(deep=True)
    if stage.league_share is not None:
        out.environment.selfplay.matches, out.league.matches = split_matches(
            cfg.environment.selfplay.matches, cfg.league.matches, stage.league_share)
    if stage.shares is not None:
        out.league.shares = stage.shares.model_copy()
    out.league.scripted = list(scripted_weights(cfg, index))
    return out


def scripted_weights(cfg: Config, index: int) -> dict[ScriptedName, float]:
    """Weight of each scripted bot in stage ``index`` (only bots with a weight above 0; the top-level
    ``league.scripted`` list weighs each of its bots 1)."""
    stage = cfg.curriculum.stages[index]
    if stage.scripted is None:
        return {name: 1.0 for name in cfg.league.scripted}
    return {name: float(weight) for name, weight in stage.scripted.items() if weight > 0}


def learning_cars(selfplay: dict[str, int], league: dict[str, int]) -> int:
    """SB3 slots of a layout: both teams of a self-play match, one team of a league match."""
    return sum(2 * MATCH_SIZES[n] * c for n, c in selfplay.items()) + sum(MATCH_SIZES[n] * c for n, c in league.items())


def check(cfg: Config) -> None:
    """Rules that involve the rest of the config (the schema checked each field).

    :raises ConfigError: naming the key and the fix.
    """
    cur = cfg.curriculum
    names = [stage.name for stage in cur.stages]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(f"config key 'curriculum.stages': two stages are named '{name}'; give each its own name.")
    if cur.pin is not None and cur.pin not in names:
        raise ConfigError(f"config key 'curriculum.pin': no stage is named '{cur.pin}'; use one of "
                         f"{', '.join(names)} or null (follow the gates).")
    for i, stage in enumerate(cur.stages):
        key = f"curriculum.stages[{i}] ('{stage.name}')"
        league = stage_config(cfg, i).league
        has_league = any(league.matches.values())
        if has_league and league.shares.total() <= 0:
            raise ConfigError(f"config key '{key}.shares': every share is 0; give past, scripted or self a positive "
                             "share.")
        if has_league and league.shares.scripted > 0 and not league.scripted:
            raise ConfigError(f"config key '{key}.scripted': every weight is 0 but the scripted share is "
                             f"{league.shares.scripted:g}; give a scripted bot a weight above 0.")
        gate = stage.advance
        if gate is None:
            continue
        if i == len(cur.stages) - 1:
            raise ConfigError(f"config key '{key}.advance': the last stage has no stage to advance to; remove its "
                             "advance gate or add a stage after it.")
        if not has_league:
            raise ConfigError(f"config key '{key}.advance': the gate reads league games, but this stage has no league "
                             "matches; give it a league_share above 0 or remove the gate.")
        played = (league.shares.past > 0 if gate.opponent == "past"
                  else league.shares.scripted > 0 and gate.opponent in league.scripted)
        if not played:
            raise ConfigError(f"config key '{key}.advance.opponent': '{gate.opponent}' is not played in this stage "
                             "(its share or weight is 0), so the gate could never open; give it a share or gate on "
                             "an opponent the stage plays.")
