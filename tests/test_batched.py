"""The self-play worker's batched step (``vecenv/batched.py``) gives what rlgym's per-match ``RLGym.step`` gives.

Two worker match groups, one batched and one stepping each match through rlgym, run the same seeded matches
on the same actions; every shared array must agree after every step: observations bit for bit, done flags,
goals, touches and outcomes exactly, rewards and reward parts to float32 rounding.
"""

from __future__ import annotations

import multiprocessing as mp

import numpy as np
import pytest

from config import load_config
from vecenv.worker import MatchGroup, SharedArrays, plan_workers
from tests.helpers import BallIntoOrangeGoalMutator

ALL_PARTS = {"goal": 10.0, "touch": 1.0, "player_to_ball": 5.0, "speed_to_ball": 2.0, "face_ball": 0.5,
             "ball_to_goal": 10.0, "boost_gain": 1.0}


def _groups(cfg: dict, sizes: list[int], league_sizes: list[int], weights: dict, mutator=None) -> tuple:
    plan = plan_workers(sizes, 1, league_sizes)[0]
    n_slots = plan.slots.stop
    n_opp = sum(league_sizes)
    ctx = mp.get_context("spawn")
    groups = []
    for batched in (True, False):
        arrays = SharedArrays(ctx, n_slots, 172, len([w for w in weights.values() if w]), n_opp, len(league_sizes))
        group = MatchGroup(plan, arrays, cfg.environment, weights, mutator, batched=batched)
        group.reset(seed=3, generation=0)
        groups.append(group)
    assert groups[0].batched is not None and groups[1].batched is None
    return groups


def _compare(fast: MatchGroup, slow: MatchGroup, step: int) -> None:
    f, s = fast.arrays, slow.arrays
    where = f"after step {step}"
    np.testing.assert_array_equal(f.obs, s.obs, err_msg=where)
    np.testing.assert_array_equal(f.opp_obs, s.opp_obs, err_msg=where)
    for name in ("terminated", "truncated", "touched", "goal", "outcome", "learner_team"):
        np.testing.assert_array_equal(getattr(f, name), getattr(s, name), err_msg=f"{name} {where}")
    done = f.terminated | f.truncated
    np.testing.assert_array_equal(f.terminal_obs[done], s.terminal_obs[done], err_msg=where)
    np.testing.assert_allclose(f.rewards, s.rewards, rtol=1e-5, atol=1e-6, err_msg=where)
    np.testing.assert_allclose(f.parts, s.parts, rtol=1e-5, atol=1e-6, err_msg=where)


@pytest.mark.parametrize("sizes, league_sizes, steps, goals, no_touch_terminal", [
    ([1, 1, 1], [1, 1], 900, False, False),  # default shape: 1v1 self-play + league 1v1; timeouts and no-touch ends
    ([2, 3], [2], 300, False, False),        # mixed team sizes: ally / enemy blocks and padding
    ([1, 2], [1, 1], 60, True, False),       # every episode ends in a goal (rewards of both signs, league outcomes)
    ([1, 1, 1], [1, 1], 600, False, True),   # no-touch timeout as a termination
])
def test_batched_step_equals_rlgym_step(sizes, league_sizes, steps, goals, no_touch_terminal):
    cfg = load_config(None, ["environment.no_touch_timeout_seconds=4", "environment.episode_seconds=20",
                             "environment.random_start_share=0.5",
                             f"environment.no_touch_timeout_terminal={str(no_touch_terminal).lower()}"])
    fast, slow = _groups(cfg, sizes, league_sizes, ALL_PARTS, BallIntoOrangeGoalMutator() if goals else None)
    rng = np.random.default_rng(0)
    ends = scored = touches = goalless_terminations = 0
    for step in range(steps):
        actions = rng.integers(0, 90, fast.arrays.actions.shape)
        opp_actions = rng.integers(0, 90, fast.arrays.opp_actions.shape)
        kinds = rng.integers(0, 4, fast.arrays.opp_kind.shape) if step % 50 == 0 else fast.arrays.opp_kind
        for group in (fast, slow):
            group.arrays.actions[:] = actions
            group.arrays.opp_actions[:] = opp_actions
            group.arrays.opp_kind[:] = kinds
            group.step()
        _compare(fast, slow, step)
        ends += int((fast.arrays.terminated | fast.arrays.truncated).sum())
        scored += int((fast.arrays.goal != 0).sum())
        touches += int(fast.arrays.touched.sum())
        goalless_terminations += int((fast.arrays.terminated & (fast.arrays.goal == 0)).sum())
    assert ends > 0 and (touches > 0 or goals)  # the comparison went through episode ends and ball touches
    if goals:
        assert scored > 0 and (fast.arrays.outcome != 0).any()
    # a termination without a goal is exactly a no-touch timeout in terminal mode
    assert (goalless_terminations > 0) == no_touch_terminal
