"""Colours, sizes and pixel layout of the rendered frames.

Colours are ``(R, G, B)`` tuples of ints in ``0..255``. Pixel sizes are image
pixels; ``*_UU`` sizes are world Unreal Units drawn at the top view's scale.
The ball colour and the goal marker colour are used by nothing else, so tests
can find them by exact pixel value.
"""
from __future__ import annotations

import math

from rlgym.rocket_league.common_values import BACK_NET_Y, BALL_RADIUS, CEILING_Z, SIDE_WALL_X

RGB = tuple[int, int, int]

# --- colours -----------------------------------------------------------------
BACKGROUND_COLOR: RGB = (17, 21, 27)
FIELD_COLOR: RGB = (30, 62, 46)
LINE_COLOR: RGB = (150, 176, 164)
TEXT_COLOR: RGB = (222, 226, 232)
BLUE_TEAM_COLOR: RGB = (45, 125, 255)
ORANGE_TEAM_COLOR: RGB = (255, 140, 25)
BLUE_GOAL_COLOR: RGB = (26, 54, 112)
ORANGE_GOAL_COLOR: RGB = (112, 64, 22)
PAD_LIT_COLOR: RGB = (255, 212, 60)
PAD_USED_COLOR: RGB = (64, 84, 72)
BOOST_BAR_COLOR: RGB = (255, 186, 0)
BOOST_BAR_BG_COLOR: RGB = (78, 84, 92)
#: Colour of the ball disc (top and side view); used by nothing else.
BALL_COLOR: RGB = (244, 244, 244)
HEIGHT_RING_COLOR: RGB = (190, 196, 204)
#: Ring around the ball and header label on a step with a ball touch.
TOUCH_COLOR: RGB = (255, 70, 200)
#: Goal mouth fill and "GOAL!" text on the step a goal is scored; used by nothing else.
GOAL_MARKER_COLOR: RGB = (57, 255, 20)
PROGRESS_COLOR: RGB = (120, 130, 140)
PROGRESS_TRACK_COLOR: RGB = (38, 44, 52)

#: Every named colour, e.g. to seed a GIF palette with exact entries.
NAMED_COLORS: tuple[RGB, ...] = (
    BACKGROUND_COLOR, FIELD_COLOR, LINE_COLOR, TEXT_COLOR, BLUE_TEAM_COLOR, ORANGE_TEAM_COLOR,
    BLUE_GOAL_COLOR, ORANGE_GOAL_COLOR, PAD_LIT_COLOR, PAD_USED_COLOR, BOOST_BAR_COLOR,
    BOOST_BAR_BG_COLOR, BALL_COLOR, HEIGHT_RING_COLOR, TOUCH_COLOR, GOAL_MARKER_COLOR,
    PROGRESS_COLOR, PROGRESS_TRACK_COLOR,
)

# --- drawn sizes (uu, enlarged for visibility at ~0.04 px/uu) ------------------
#: Ball disc radius drawn in both views (uu).
BALL_DRAW_RADIUS_UU: float = 1.5 * BALL_RADIUS
#: Height ring radius grows by this many uu per uu of ball height above rest.
HEIGHT_RING_GAIN: float = 0.3
#: Minimum ball height above its resting height before the height ring shows (uu).
HEIGHT_RING_MIN_UU: float = 20.0
TOUCH_RING_RADIUS_UU: float = 2.6 * BALL_RADIUS
#: Cars are drawn as their hitbox footprint scaled by this factor.
CAR_DRAW_SCALE: float = 3.0
SMALL_PAD_RADIUS_UU: float = 80.0
BIG_PAD_RADIUS_UU: float = 150.0
BOOST_BAR_LENGTH_UU: float = 600.0
BOOST_BAR_HEIGHT_UU: float = 110.0
#: Distance from car centre to boost bar centre, across the screen (uu).
BOOST_BAR_OFFSET_UU: float = 360.0
#: Side-view marker size of a car (points).
SIDE_CAR_MARKER_PT: float = 4.0

# --- pixel layout ----------------------------------------------------------------
DPI: int = 100
#: Image width (px). Width and height are multiples of 16 so MP4 encoders need no resize.
FIG_WIDTH_PX: int = 480
SIDE_MARGIN_PX: int = 4
#: Empty world margin around the arena in both views (uu).
VIEW_MARGIN_UU: float = 150.0
#: Top view: horizontal axis = world y (incl. goals), vertical axis = world x.
TOP_Y_LIMIT_UU: float = BACK_NET_Y + VIEW_MARGIN_UU
TOP_X_LIMIT_UU: float = SIDE_WALL_X + VIEW_MARGIN_UU
SIDE_Z_MIN_UU: float = -VIEW_MARGIN_UU / 2
SIDE_Z_MAX_UU: float = CEILING_Z + VIEW_MARGIN_UU / 2
#: Pixels per uu, shared by the top and side views (equal aspect).
PX_PER_UU: float = (FIG_WIDTH_PX - 2 * SIDE_MARGIN_PX) / (2 * TOP_Y_LIMIT_UU)
TOP_VIEW_HEIGHT_PX: float = 2 * TOP_X_LIMIT_UU * PX_PER_UU
SIDE_VIEW_HEIGHT_PX: float = (SIDE_Z_MAX_UU - SIDE_Z_MIN_UU) * PX_PER_UU
VIEW_GAP_PX: int = 5
PROGRESS_HEIGHT_PX: int = 3
BOTTOM_MARGIN_PX: int = 3
HEADER_MIN_PX: int = 36
_content_px = TOP_VIEW_HEIGHT_PX + VIEW_GAP_PX + SIDE_VIEW_HEIGHT_PX + VIEW_GAP_PX + PROGRESS_HEIGHT_PX + BOTTOM_MARGIN_PX
#: Image height (px), rounded up to a multiple of 16; the spare pixels go to the header.
FIG_HEIGHT_PX: int = 16 * math.ceil((_content_px + HEADER_MIN_PX) / 16)
HEADER_HEIGHT_PX: float = FIG_HEIGHT_PX - _content_px


def mpl_color(rgb: RGB, alpha: float = 1.0) -> tuple[float, float, float, float]:
    """Converts an ``(R, G, B)`` 0..255 colour into a matplotlib RGBA 0..1 tuple."""
    return (rgb[0] / 255.0, rgb[1] / 255.0, rgb[2] / 255.0, alpha)
