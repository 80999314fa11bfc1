"""Offline rendering of recorded evaluation episodes to GIF / MP4 (no game client needed).

Typical use::

    frames = [frame_from_state(env.state, episode=1, reward=r, blue_score=0, orange_score=0), ...]
    write_animation(frames, "runs/eval.gif", fps=15)   # 15 fps = real time at tick_skip 8

Units: positions in Unreal Units (uu), times in seconds, images are
``(FIG_HEIGHT_PX, FIG_WIDTH_PX, 3)`` uint8 RGB arrays.
"""
from .animation import ALLOWED_EXTENSIONS, write_animation
from .frames import Frame, frame_from_state
from .scene import FrameRenderer, ball_pixel, render_frame
from .style import (
    BALL_COLOR,
    BLUE_TEAM_COLOR,
    FIG_HEIGHT_PX,
    FIG_WIDTH_PX,
    GOAL_MARKER_COLOR,
    ORANGE_TEAM_COLOR,
    PAD_LIT_COLOR,
    PAD_USED_COLOR,
    TOUCH_COLOR,
)

__all__ = [
    "ALLOWED_EXTENSIONS", "BALL_COLOR", "BLUE_TEAM_COLOR", "FIG_HEIGHT_PX", "FIG_WIDTH_PX", "Frame",
    "FrameRenderer", "GOAL_MARKER_COLOR", "ORANGE_TEAM_COLOR", "PAD_LIT_COLOR", "PAD_USED_COLOR",
    "TOUCH_COLOR", "ball_pixel", "frame_from_state", "render_frame", "write_animation",
]
