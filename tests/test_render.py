"""Tests for the offline episode renderer (``render/``) on episodes recorded with real RocketSim."""
from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Any, Dict, List

import imageio.v2 as imageio
import numpy as np
import pytest
from PIL import Image
from rlgym.api import RLGym, StateMutator
from rlgym.rocket_league.action_parsers import LookupTableAction, RepeatAction
from rlgym.rocket_league.api import GameState
from rlgym.rocket_league.common_values import BACK_WALL_Y, BLUE_TEAM, ORANGE_TEAM
from rlgym.rocket_league.done_conditions import GoalCondition, TimeoutCondition
from rlgym.rocket_league.obs_builders import DefaultObs
from rlgym.rocket_league.reward_functions import CombinedReward, GoalReward, TouchReward
from rlgym.rocket_league.sim import RocketSimEngine
from rlgym.rocket_league.state_mutators import FixedTeamSizeMutator, KickoffMutator, MutatorSequence

from render import (
    BALL_COLOR,
    FIG_HEIGHT_PX,
    FIG_WIDTH_PX,
    GOAL_MARKER_COLOR,
    PAD_LIT_COLOR,
    Frame,
    ball_pixel,
    frame_from_state,
    render_frame,
    write_animation,
)
from render.style import PX_PER_UU, SIDE_MARGIN_PX, TOP_Y_LIMIT_UU

TICK_SKIP = 8
FPS = 15  # one frame per decision at tick_skip 8 (120 ticks/s) = real time
LEARNER = "blue-0"
COLOR_TOL = 3  # max per-channel difference when matching a named colour


class BallToMutator(StateMutator[GameState]):
    """Puts the ball at ``position`` (uu) moving with ``velocity`` (uu/s)."""

    def __init__(self, position: tuple[float, float, float], velocity: tuple[float, float, float]):
        self.position = np.array(position, dtype=np.float32)
        self.velocity = np.array(velocity, dtype=np.float32)

    def apply(self, state: GameState, shared_info: Dict[str, Any]) -> None:
        state.ball.position = self.position.copy()
        state.ball.linear_velocity = self.velocity.copy()


def make_env(*extra: StateMutator[GameState], timeout_s: float = 20.0) -> RLGym:
    """A 1v0 soccar env (kickoff, then ``extra`` mutators) with 15 Hz decisions."""
    return RLGym(
        state_mutator=MutatorSequence(FixedTeamSizeMutator(1, 0), KickoffMutator(), *extra),
        obs_builder=DefaultObs(zero_padding=1),
        action_parser=RepeatAction(LookupTableAction(), repeats=TICK_SKIP),
        reward_fn=CombinedReward((GoalReward(), 10.0), (TouchReward(), 1.0)),
        transition_engine=RocketSimEngine(),
        termination_cond=GoalCondition(),
        truncation_cond=TimeoutCondition(timeout_s),
    )


def record(env: RLGym, n_frames: int, seed: int, *, one_episode: bool = False) -> List[Frame]:
    """Steps ``env`` with random lookup-table actions and returns one frame per step.

    Resets after every episode until ``n_frames`` frames exist; with ``one_episode``
    it stops at the end of the first episode (goal or timeout) instead.
    """
    random.seed(seed)  # KickoffMutator draws spawn slots from `random`
    rng = np.random.default_rng(seed)
    n_actions = env.action_space(LEARNER)[1]
    frames: List[Frame] = []
    episode, scores = 0, {BLUE_TEAM: 0, ORANGE_TEAM: 0}
    done = True
    while len(frames) < n_frames:
        if done:
            if one_episode and episode == 1:
                break
            env.reset()
            episode += 1
        actions = {agent: np.array([[rng.integers(n_actions)]]) for agent in env.agents}
        _obs, rewards, terminated, truncated = env.step(actions)
        state = env.state
        if state.goal_scored:
            scores[state.scoring_team] += 1
        frames.append(frame_from_state(state, episode=episode, reward=rewards[LEARNER],
                                       blue_score=scores[BLUE_TEAM], orange_score=scores[ORANGE_TEAM]))
        done = any(terminated.values()) or any(truncated.values())
    return frames


def color_mask(image: np.ndarray, color: tuple[int, int, int], tol: int = COLOR_TOL) -> np.ndarray:
    """``(H, W)`` bool mask of pixels within ``tol`` of ``color`` on every channel."""
    return (np.abs(image.astype(int) - np.array(color)) <= tol).all(axis=-1)


@pytest.fixture(scope="module")
def kickoff_frames() -> List[Frame]:
    return record(make_env(), 30, seed=1)


@pytest.fixture(scope="module")
def flight_frames() -> List[Frame]:
    """Ball launched from the blue half toward +y and up, so it moves a lot between frames."""
    return record(make_env(BallToMutator((1500, -2000, 300), (-400, 1500, 900))), 25, seed=2, one_episode=True)


@pytest.fixture(scope="module")
def goal_frames() -> List[Frame]:
    """Ball placed in front of the orange goal, flying in: blue scores within a few steps."""
    return record(make_env(BallToMutator((0, 4500, 200), (0, 3000, 0))), 30, seed=3, one_episode=True)


# ----------------------------------------------------------------------------- 1. files
def test_gif_has_one_image_per_frame(kickoff_frames: List[Frame], tmp_path: Path) -> None:
    out = tmp_path / "nested" / "episode.gif"
    write_animation(kickoff_frames, out, fps=FPS)
    assert out.is_file()
    with Image.open(out) as gif:
        assert gif.size == (FIG_WIDTH_PX, FIG_HEIGHT_PX)
        assert gif.n_frames == len(kickoff_frames)
        total_ms = 0
        for i in range(gif.n_frames):
            gif.seek(i)
            total_ms += gif.info["duration"]
    # real-time playback: 30 frames at 15 fps = 2 s (GIF delays are in 1/100 s)
    assert abs(total_ms - 1000 * len(kickoff_frames) / FPS) <= 10


def test_mp4_has_one_image_per_frame(kickoff_frames: List[Frame], tmp_path: Path) -> None:
    out = tmp_path / "episode.MP4"
    write_animation(kickoff_frames, out, fps=FPS)
    assert out.is_file() and out.stat().st_size > 0
    reader = imageio.get_reader(str(out), format="FFMPEG")
    try:
        assert reader.count_frames() == len(kickoff_frames)
        assert reader.get_meta_data()["fps"] == pytest.approx(FPS)
        assert reader.get_data(0).shape == (FIG_HEIGHT_PX, FIG_WIDTH_PX, 3)
    finally:
        reader.close()


def test_render_frame_shape_and_determinism(kickoff_frames: List[Frame]) -> None:
    image = render_frame(kickoff_frames[5])
    assert image.shape == (FIG_HEIGHT_PX, FIG_WIDTH_PX, 3) and image.dtype == np.uint8
    render_frame(kickoff_frames[20])  # a different frame in between must leave no trace
    assert np.array_equal(render_frame(kickoff_frames[5]), image)


# ----------------------------------------------------------------------------- 2. ball follows the state
def test_ball_pixel_is_ball_color_and_follows_ball(flight_frames: List[Frame]) -> None:
    assert len(flight_frames) >= 10
    picks = flight_frames[::3]
    pixels = [ball_pixel(f) for f in picks]
    assert len(set(pixels)) == len(pixels), "the ball moves, so its pixel must change every 3 steps"
    for frame, (col, row) in zip(picks, pixels):
        image = render_frame(frame)
        assert color_mask(image, BALL_COLOR)[row, col], (frame.state.ball.position, image[row, col])
    # orientation: world +y is to the right, world +x is up in the top view
    ys = [f.state.ball.position[1] for f in picks]
    xs = [f.state.ball.position[0] for f in picks]
    assert np.corrcoef(ys, [c for c, _ in pixels])[0, 1] > 0.99
    assert np.corrcoef(xs, [r for _, r in pixels])[0, 1] < -0.99
    # where the ball was earlier, a later frame shows no ball
    first, last = flight_frames[0], flight_frames[-1]
    col, row = ball_pixel(first)
    assert np.hypot(*np.subtract(ball_pixel(last), (col, row))) > 20
    assert not color_mask(render_frame(last), BALL_COLOR)[row, col]


def test_kickoff_ball_is_at_field_centre(kickoff_frames: List[Frame]) -> None:
    col, row = ball_pixel(kickoff_frames[0])
    assert abs(col - (SIDE_MARGIN_PX + TOP_Y_LIMIT_UU * PX_PER_UU)) <= 1


def test_used_boost_pads_are_dimmed(kickoff_frames: List[Frame]) -> None:
    frame = kickoff_frames[0]
    lit = copy.copy(frame)
    lit.state = copy.copy(frame.state)
    lit.state.boost_pad_timers = np.zeros_like(frame.state.boost_pad_timers)
    used = copy.copy(lit)
    used.state = copy.copy(lit.state)
    used.state.boost_pad_timers = np.full_like(frame.state.boost_pad_timers, 4.0)
    assert color_mask(render_frame(lit), PAD_LIT_COLOR).sum() > 34 * 10
    assert color_mask(render_frame(used), PAD_LIT_COLOR).sum() == 0


# ----------------------------------------------------------------------------- 3. goal marker
def test_goal_frame_shows_goal_marker(goal_frames: List[Frame]) -> None:
    goal = goal_frames[-1]
    assert goal.goal and not any(f.goal for f in goal_frames[:-1])
    assert len(goal_frames) <= 10, "the ball should be in the goal within a few steps"
    assert goal.blue_score == 1 and goal.orange_score == 0
    marker = color_mask(render_frame(goal), GOAL_MARKER_COLOR)
    assert marker.sum() > 1000
    # the orange goal mouth (behind y = +BACK_WALL_Y, right side) is filled; the blue one is not
    orange_wall_col = int(SIDE_MARGIN_PX + (TOP_Y_LIMIT_UU + BACK_WALL_Y) * PX_PER_UU)
    blue_wall_col = int(SIDE_MARGIN_PX + (TOP_Y_LIMIT_UU - BACK_WALL_Y) * PX_PER_UU)
    assert marker[:, orange_wall_col + 2:].sum() > 500
    assert marker[:, :blue_wall_col - 1].sum() == 0
    for frame in (goal_frames[0], goal_frames[-2]):
        assert not frame.goal
        assert color_mask(render_frame(frame), GOAL_MARKER_COLOR).sum() == 0


# ----------------------------------------------------------------------------- 4. errors
@pytest.mark.parametrize("name", ["episode.avi", "episode.png", "episode"])
def test_bad_extension_raises(kickoff_frames: List[Frame], tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match=r"\.gif.*\.mp4"):
        write_animation(kickoff_frames, tmp_path / name, fps=FPS)
    assert not (tmp_path / name).exists()


def test_no_frames_raises(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="frame"):
        write_animation([], tmp_path / "empty.gif", fps=FPS)


# ----------------------------------------------------------------------------- 5. size
def test_twenty_second_gif_is_small(tmp_path: Path) -> None:
    frames = record(make_env(timeout_s=20.0), 20 * FPS, seed=4)
    out = tmp_path / "long.gif"
    write_animation(frames, out, fps=FPS)
    size_mb = out.stat().st_size / 1e6
    print(f"300-frame GIF: {size_mb:.2f} MB")
    assert size_mb < 5.0
    with Image.open(out) as gif:
        assert gif.n_frames == len(frames)
