"""Draws one :class:`~render.frames.Frame` into an RGB image with matplotlib (Agg).

Layout (top to bottom): a header (episode, reward, score, match clock, event),
a top view of the field (horizontal axis = world ``y`` with the blue goal on
the left, vertical axis = world ``x``; this is the true view from above), a
side view (horizontal = world ``y``, vertical = world ``z``) on the same scale,
and an optional progress bar.

One figure is built per :class:`FrameRenderer`; the static field is rasterised
once and each frame only redraws the moving artists over that cached
background (blitting), so rendering is deterministic and fast.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Iterable, TypeVar

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PatchCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, Patch, Polygon, Rectangle
from matplotlib.text import Text
from rlgym.rocket_league.common_values import BALL_RESTING_HEIGHT, BLUE_TEAM

from . import field
from .style import (
    BACKGROUND_COLOR, BALL_COLOR, BALL_DRAW_RADIUS_UU, BIG_PAD_RADIUS_UU, BLUE_GOAL_COLOR,
    BLUE_TEAM_COLOR, BOOST_BAR_BG_COLOR, BOOST_BAR_COLOR, BOOST_BAR_HEIGHT_UU, BOOST_BAR_LENGTH_UU,
    BOOST_BAR_OFFSET_UU, BOTTOM_MARGIN_PX, CAR_DRAW_SCALE, DPI, FIELD_COLOR, FIG_HEIGHT_PX,
    FIG_WIDTH_PX, GOAL_MARKER_COLOR, HEADER_HEIGHT_PX, HEIGHT_RING_COLOR, HEIGHT_RING_GAIN,
    HEIGHT_RING_MIN_UU, LINE_COLOR, ORANGE_GOAL_COLOR, ORANGE_TEAM_COLOR, PAD_LIT_COLOR,
    PAD_USED_COLOR, PROGRESS_COLOR, PROGRESS_HEIGHT_PX, PROGRESS_TRACK_COLOR, SIDE_CAR_MARKER_PT,
    SIDE_MARGIN_PX, SIDE_VIEW_HEIGHT_PX, SIDE_Z_MAX_UU, SIDE_Z_MIN_UU, SMALL_PAD_RADIUS_UU,
    TEXT_COLOR, TOP_VIEW_HEIGHT_PX, TOP_X_LIMIT_UU, TOP_Y_LIMIT_UU, TOUCH_COLOR,
    TOUCH_RING_RADIUS_UU, VIEW_GAP_PX, mpl_color,
)

if TYPE_CHECKING:
    from rlgym.rocket_league.api import Car

    from .frames import Frame

#: Car outline in units of (hitbox length, hitbox width) along (forward, right):
#: a rectangle with a pointed nose so the heading is unambiguous.
_CAR_SHAPE = np.array([(-0.5, -0.5), (0.22, -0.5), (0.5, 0.0), (0.22, 0.5), (-0.5, 0.5)])
_HEADER_FONT_PT = 9.5
_SCORE_FONT_PT = 11.0
_GOAL_FONT_PT = 30.0
#: Vertical centres of the two header text rows, as fractions of the header height.
_HEADER_ROW_1 = 0.63
_HEADER_ROW_2 = 0.2
#: An artist type :meth:`FrameRenderer._add` takes and gives back.
_A = TypeVar("_A", bound=Artist)
_Z_BASE = {"field": 1.0, "goal": 1.5, "goal_marker": 1.6, "lines": 2.0, "pads": 3.0,
           "car": 5.0, "boost": 6.0, "ring": 7.0, "touch": 8.0, "text": 9.0, "ball": 10.0}


def _axes_rect(bottom_px: float, height_px: float,
               left_px: float = SIDE_MARGIN_PX) -> tuple[float, float, float, float]:
    """Figure-fraction ``(left, bottom, width, height)`` for an axes given in pixels."""
    width_px = FIG_WIDTH_PX - 2 * left_px
    return (left_px / FIG_WIDTH_PX, bottom_px / FIG_HEIGHT_PX, width_px / FIG_WIDTH_PX, height_px / FIG_HEIGHT_PX)


def _top(xy: np.ndarray) -> np.ndarray:
    """World ``(x, y)`` points (``(..., 2)``, uu) -> top-view data coords ``(y, x)``."""
    return np.asarray(xy, dtype=float)[..., ::-1]


def _clock(time_s: float) -> str:
    """Match clock ``m:ss`` (whole seconds, rounded down) of a time in seconds."""
    total = max(0, int(time_s))
    return f"{total // 60}:{total % 60:02d}"


def _heading_xy(car: "Car") -> np.ndarray:
    """Unit vector (world ``x``, ``y``) the car's nose points to, seen from above.

    Falls back to the roof direction when the car points straight up or down.
    """
    rot = car.physics.rotation_mtx
    forward, up = rot[:, 0], rot[:, 2]
    flat = np.array(forward[:2], dtype=float)
    if np.hypot(*flat) < 0.1:
        flat = -np.sign(forward[2] or 1.0) * np.array(up[:2], dtype=float)
    norm = np.hypot(*flat)
    return flat / norm if norm > 1e-9 else np.array([1.0, 0.0])


@dataclass
class _CarArtists:
    """Artists of one car: top-view body, boost bar background and fill."""

    body: Polygon
    bar_bg: Rectangle
    bar_fill: Rectangle

    def all(self) -> tuple[Artist, ...]:
        return (self.body, self.bar_bg, self.bar_fill)


class FrameRenderer:
    """Renders frames into ``(FIG_HEIGHT_PX, FIG_WIDTH_PX, 3)`` uint8 RGB images.

    Reuses one matplotlib figure; not thread-safe (use one renderer per thread).
    """

    def __init__(self) -> None:
        self._fig = Figure(figsize=(FIG_WIDTH_PX / DPI, FIG_HEIGHT_PX / DPI), dpi=DPI,
                           facecolor=mpl_color(BACKGROUND_COLOR))
        self._canvas = FigureCanvasAgg(self._fig)
        side_bottom = BOTTOM_MARGIN_PX + PROGRESS_HEIGHT_PX + VIEW_GAP_PX
        top_bottom = side_bottom + SIDE_VIEW_HEIGHT_PX + VIEW_GAP_PX
        self._ax_top = self._new_axes(_axes_rect(top_bottom, TOP_VIEW_HEIGHT_PX),
                                      (-TOP_Y_LIMIT_UU, TOP_Y_LIMIT_UU), (-TOP_X_LIMIT_UU, TOP_X_LIMIT_UU))
        self._ax_side = self._new_axes(_axes_rect(side_bottom, SIDE_VIEW_HEIGHT_PX),
                                       (-TOP_Y_LIMIT_UU, TOP_Y_LIMIT_UU), (SIDE_Z_MIN_UU, SIDE_Z_MAX_UU))
        self._ax_head = self._new_axes(_axes_rect(FIG_HEIGHT_PX - HEADER_HEIGHT_PX, HEADER_HEIGHT_PX), (0, 1), (0, 1))
        self._dynamic: list[Artist] = []
        self._draw_static()
        self._create_dynamic()
        self._dynamic.sort(key=lambda a: a.get_zorder())  # stable: insertion order within a layer
        self._cars: list[_CarArtists] = []
        self._canvas.draw()
        #: RGBA pixels of the static scene, copied back into the canvas before each frame.
        self._background = np.array(np.asarray(self._canvas.buffer_rgba()))

    # ------------------------------------------------------------------ setup
    def _new_axes(self, rect: tuple[float, float, float, float], xlim: tuple[float, float],
                  ylim: tuple[float, float]) -> Axes:
        ax = self._fig.add_axes(rect)
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        ax.set_autoscale_on(False)
        ax.set_axis_off()
        return ax

    def _add(self, ax: Axes, artist: _A, layer: str, *, dynamic: bool = True) -> _A:
        """Adds ``artist`` to ``ax`` at the z-order of ``layer``; dynamic ones are blitted per frame."""
        artist.set_zorder(_Z_BASE[layer])
        if isinstance(artist, Text):
            ax.add_artist(artist)
        elif isinstance(artist, Line2D):
            ax.add_line(artist)
        elif isinstance(artist, PatchCollection):
            ax.add_collection(artist, autolim=False)
        else:
            assert isinstance(artist, Patch)
            ax.add_patch(artist)
        if dynamic:
            artist.set_animated(True)
            self._dynamic.append(artist)
        return artist

    def _draw_static(self) -> None:
        """Field, goals, lines: drawn once into the cached background."""
        top, side = self._ax_top, self._ax_side
        outline = _top(field.arena_outline_xy())
        line: dict[str, Any] = dict(edgecolor=mpl_color(LINE_COLOR), linewidth=1.2, joinstyle="miter")
        self._add(top, Polygon(outline, closed=True, facecolor=mpl_color(FIELD_COLOR), edgecolor="none"),
                  "field", dynamic=False)
        for sign, color in ((-1, BLUE_GOAL_COLOR), (1, ORANGE_GOAL_COLOR)):
            x0, y0, wx, dy = field.goal_rect_xy(sign)
            self._add(top, Rectangle((y0, x0), dy, wx, facecolor=mpl_color(color), edgecolor="none"),
                      "goal", dynamic=False)
            y0s, z0, dys, hz = field.goal_rect_yz(sign)
            self._add(side, Rectangle((y0s, z0), dys, hz, facecolor=mpl_color(color), **line),
                      "goal", dynamic=False)
        self._add(top, Polygon(outline, closed=True, fill=False, **line), "lines", dynamic=False)
        self._add(top, Line2D([0.0, 0.0], [-field.SIDE_WALL_X, field.SIDE_WALL_X], color=mpl_color(LINE_COLOR),
                              linewidth=1.0), "lines", dynamic=False)
        self._add(top, Circle((0.0, 0.0), field.CENTER_CIRCLE_RADIUS, fill=False, edgecolor=mpl_color(LINE_COLOR),
                              linewidth=1.0), "lines", dynamic=False)
        side_outline = field.side_outline_yz()
        self._add(side, Polygon(side_outline, closed=True, facecolor=mpl_color(FIELD_COLOR), **line),
                  "field", dynamic=False)
        self._add(side, Line2D([0.0, 0.0], [0.0, field.CEILING_Z], color=mpl_color(LINE_COLOR), linewidth=0.8,
                               linestyle=(0, (2, 2))), "lines", dynamic=False)
        head = self._ax_head
        self._add(head, Text(0.5, _HEADER_ROW_1, "–", color=mpl_color(TEXT_COLOR), fontsize=_SCORE_FONT_PT,
                             ha="center", va="center", fontweight="bold"), "text", dynamic=False)

    def _create_dynamic(self) -> None:
        """Pads, goal markers, ball, rings and header texts (updated every frame)."""
        top, side, head = self._ax_top, self._ax_side, self._ax_head
        pads = field.boost_pads()
        self._pad_is_big = np.array([p.is_big for p in pads])
        circles = [Circle((p.y, p.x), BIG_PAD_RADIUS_UU if p.is_big else SMALL_PAD_RADIUS_UU) for p in pads]
        self._pads = self._add(top, PatchCollection(circles, edgecolor="none", linewidth=0), "pads")

        self._goal_marks: dict[int, tuple[Rectangle, Rectangle]] = {}
        for sign in (-1, 1):
            x0, y0, wx, dy = field.goal_rect_xy(sign)
            y0s, z0, dys, hz = field.goal_rect_yz(sign)
            marks = (Rectangle((y0, x0), dy, wx), Rectangle((y0s, z0), dys, hz))
            for mark, ax in zip(marks, (top, side)):
                mark.set(facecolor=mpl_color(GOAL_MARKER_COLOR), edgecolor="none", visible=False)
                self._add(ax, mark, "goal_marker")
            self._goal_marks[sign] = marks

        self._height_ring = self._add(top, Circle((0, 0), BALL_DRAW_RADIUS_UU, fill=False, linewidth=1.0,
                                                  edgecolor=mpl_color(HEIGHT_RING_COLOR), linestyle=(0, (2, 1.5))),
                                      "ring")
        self._touch_ring = self._add(top, Circle((0, 0), TOUCH_RING_RADIUS_UU, fill=False, linewidth=2.0,
                                                 edgecolor=mpl_color(TOUCH_COLOR)), "touch")
        ball_style: dict[str, Any] = dict(facecolor=mpl_color(BALL_COLOR), edgecolor="none", linewidth=0)
        self._ball_top = self._add(top, Circle((0, 0), BALL_DRAW_RADIUS_UU, **ball_style), "ball")
        self._ball_side = self._add(side, Circle((0, 0), BALL_DRAW_RADIUS_UU, **ball_style), "ball")
        self._side_cars = {
            team: self._add(side, Line2D([], [], linestyle="none", marker="s", markersize=SIDE_CAR_MARKER_PT,
                                         markerfacecolor=mpl_color(color), markeredgecolor="none"), "car")
            for team, color in ((0, BLUE_TEAM_COLOR), (1, ORANGE_TEAM_COLOR))
        }
        self._goal_text = self._add(top, Text(0.0, 0.0, "GOAL!", color=mpl_color(GOAL_MARKER_COLOR),
                                              fontsize=_GOAL_FONT_PT, fontweight="bold", ha="center",
                                              va="center"), "text")

        text: dict[str, Any] = dict(color=mpl_color(TEXT_COLOR), fontsize=_HEADER_FONT_PT, va="center")
        self._txt_episode = self._add(head, Text(0.0, _HEADER_ROW_1, "", ha="left", fontweight="bold", **text), "text")
        self._txt_reward = self._add(head, Text(0.0, _HEADER_ROW_2, "", ha="left", **text), "text")
        self._txt_clock = self._add(head, Text(0.5, _HEADER_ROW_2, "", ha="center", **text), "text")
        self._txt_event = self._add(head, Text(1.0, _HEADER_ROW_1, "", ha="right", fontweight="bold", **text), "text")
        self._txt_height = self._add(head, Text(1.0, _HEADER_ROW_2, "", ha="right", **text), "text")
        score: dict[str, Any] = dict(color="white", fontsize=_SCORE_FONT_PT, fontweight="bold", va="center")
        self._txt_blue = self._add(head, Text(0.47, _HEADER_ROW_1, "", ha="right", **score), "text")
        self._txt_orange = self._add(head, Text(0.53, _HEADER_ROW_1, "", ha="left", **score), "text")
        self._txt_blue.set_bbox(dict(boxstyle="round,pad=0.15", facecolor=mpl_color(BLUE_TEAM_COLOR), edgecolor="none"))
        self._txt_orange.set_bbox(dict(boxstyle="round,pad=0.15", facecolor=mpl_color(ORANGE_TEAM_COLOR),
                                       edgecolor="none"))

    def _car_artists(self, index: int) -> _CarArtists:
        """The ``index``-th pooled car artist set, created on first use."""
        while len(self._cars) <= index:
            arts = _CarArtists(
                body=Polygon(_CAR_SHAPE, closed=True, edgecolor=(0, 0, 0, 0.6), linewidth=0.6),
                bar_bg=Rectangle((0, 0), BOOST_BAR_LENGTH_UU, BOOST_BAR_HEIGHT_UU,
                                 facecolor=mpl_color(BOOST_BAR_BG_COLOR), edgecolor="none"),
                bar_fill=Rectangle((0, 0), BOOST_BAR_LENGTH_UU, BOOST_BAR_HEIGHT_UU,
                                   facecolor=mpl_color(BOOST_BAR_COLOR), edgecolor="none"),
            )
            self._add(self._ax_top, arts.body, "car")
            self._add(self._ax_top, arts.bar_bg, "boost")
            self._add(self._ax_top, arts.bar_fill, "boost")
            self._dynamic.sort(key=lambda a: a.get_zorder())
            self._cars.append(arts)
        return self._cars[index]

    # ------------------------------------------------------------------ public
    @property
    def image_shape(self) -> tuple[int, int, int]:
        """Shape ``(height_px, width_px, 3)`` of every rendered image."""
        return (FIG_HEIGHT_PX, FIG_WIDTH_PX, 3)

    def ball_pixel(self, frame: "Frame") -> tuple[int, int]:
        """Pixel ``(col, row)`` of the ball centre in the top view of ``render(frame)``.

        ``row`` counts from the top of the image, as in ``image[row, col]``.
        """
        x, y = frame.state.ball.position[:2]
        disp_x, disp_y = self._ax_top.transData.transform((float(y), float(x)))
        return int(np.floor(disp_x)), FIG_HEIGHT_PX - 1 - int(np.floor(disp_y))

    def render(self, frame: "Frame", progress: float | None = None) -> np.ndarray:
        """Draws ``frame``; returns a new ``(FIG_HEIGHT_PX, FIG_WIDTH_PX, 3)`` uint8 RGB array.

        Args:
            frame: the step to draw.
            progress: optional position in the recording, ``0..1``; draws a
                progress bar along the bottom edge when given.
        """
        self._update(frame)
        np.asarray(self._canvas.buffer_rgba())[...] = self._background
        for artist in self._dynamic:
            if artist.get_visible():
                self._fig.draw_artist(artist)
        image = np.array(np.asarray(self._canvas.buffer_rgba())[:, :, :3])
        if progress is not None:
            _draw_progress(image, progress)
        return image

    # ------------------------------------------------------------------ update
    def _update(self, frame: "Frame") -> None:
        state = frame.state
        timers = np.asarray(state.boost_pad_timers, dtype=float)
        lit = timers <= 0.0
        colors = np.where(lit[:, None], mpl_color(PAD_LIT_COLOR), mpl_color(PAD_USED_COLOR))
        # matplotlib's stubs leave out the (N, 4) RGBA array that set_facecolor takes (one colour per pad)
        self._pads.set_facecolor(colors)  # type: ignore[arg-type]

        bx, by, bz = (float(v) for v in state.ball.position)
        self._ball_top.set_center((by, bx))
        self._ball_side.set_center((by, bz))
        height = bz - BALL_RESTING_HEIGHT
        self._height_ring.set_visible(height > HEIGHT_RING_MIN_UU)
        self._height_ring.set_center((by, bx))
        self._height_ring.set_radius(BALL_DRAW_RADIUS_UU + HEIGHT_RING_GAIN * max(height, 0.0))
        self._touch_ring.set_visible(frame.touched)
        self._touch_ring.set_center((by, bx))

        scored_sign = 1 if by > 0 else -1
        for sign, marks in self._goal_marks.items():
            for mark in marks:
                mark.set_visible(frame.goal and sign == scored_sign)
        self._goal_text.set_visible(frame.goal)

        self._update_cars(state.cars.values())

        self._txt_episode.set_text(f"Episode {frame.episode}")
        self._txt_reward.set_text(f"reward {frame.reward:+.3f}")
        self._txt_clock.set_text(_clock(frame.time_s))
        self._txt_blue.set_text(f"{frame.blue_score}")
        self._txt_orange.set_text(f"{frame.orange_score}")
        if frame.goal:
            self._txt_event.set_text("GOAL!")
            self._txt_event.set_color(mpl_color(GOAL_MARKER_COLOR))
        elif frame.touched:
            self._txt_event.set_text("TOUCH")
            self._txt_event.set_color(mpl_color(TOUCH_COLOR))
        else:
            self._txt_event.set_text("")
        self._txt_height.set_text(f"ball z {bz:.0f} uu")

    def _update_cars(self, cars: Iterable[Car]) -> None:
        side_points: dict[int, tuple[list[float], list[float]]] = {0: ([], []), 1: ([], [])}
        cars = list(cars)
        for index, car in enumerate(cars):
            arts = self._car_artists(index)
            pos = np.asarray(car.physics.position, dtype=float)
            heading = _heading_xy(car)
            across = np.array([-heading[1], heading[0]])
            length, width = field.hitbox_length_width(car.hitbox_type)
            shape = _CAR_SHAPE * (CAR_DRAW_SCALE * np.array([length, width]))
            world = pos[:2] + shape[:, :1] * heading + shape[:, 1:] * across
            alpha = 0.35 if car.is_demoed else 1.0
            color = BLUE_TEAM_COLOR if car.team_num == BLUE_TEAM else ORANGE_TEAM_COLOR
            arts.body.set_xy(_top(world))
            arts.body.set_facecolor(mpl_color(color, alpha))
            # Boost bar above the car on screen (toward +x), below it near the +x wall.
            offset = BOOST_BAR_OFFSET_UU if pos[0] + BOOST_BAR_OFFSET_UU + BOOST_BAR_HEIGHT_UU < TOP_X_LIMIT_UU \
                else -BOOST_BAR_OFFSET_UU
            corner = (pos[1] - BOOST_BAR_LENGTH_UU / 2, pos[0] + offset - BOOST_BAR_HEIGHT_UU / 2)
            arts.bar_bg.set_xy(corner)
            arts.bar_fill.set_xy(corner)
            arts.bar_fill.set_width(BOOST_BAR_LENGTH_UU * float(np.clip(car.boost_amount, 0.0, 100.0)) / 100.0)
            for artist in arts.all():
                artist.set_visible(True)
            team = 0 if car.team_num == BLUE_TEAM else 1
            side_points[team][0].append(pos[1])
            side_points[team][1].append(pos[2])
        for arts in self._cars[len(cars):]:
            for artist in arts.all():
                artist.set_visible(False)
        for team, (ys, zs) in side_points.items():
            self._side_cars[team].set_data(ys, zs)


def _draw_progress(image: np.ndarray, progress: float) -> None:
    """Paints a progress bar (``0..1`` of the width) into the bottom margin of ``image`` in place."""
    height, width, _ = image.shape
    row1 = height - BOTTOM_MARGIN_PX
    row0 = row1 - PROGRESS_HEIGHT_PX
    col0, col1 = SIDE_MARGIN_PX, width - SIDE_MARGIN_PX
    image[row0:row1, col0:col1] = PROGRESS_TRACK_COLOR
    filled = int(round(float(np.clip(progress, 0.0, 1.0)) * (col1 - col0)))
    image[row0:row1, col0:col0 + filled] = PROGRESS_COLOR


@lru_cache(maxsize=1)
def default_renderer() -> FrameRenderer:
    """The process-wide renderer used by :func:`render_frame` and :func:`ball_pixel`."""
    return FrameRenderer()


def render_frame(frame: "Frame", progress: float | None = None) -> np.ndarray:
    """Renders one frame; returns a ``(FIG_HEIGHT_PX, FIG_WIDTH_PX, 3)`` uint8 RGB image.

    Args:
        frame: the step to draw.
        progress: optional ``0..1`` position in the recording for the bottom progress bar.
    """
    return default_renderer().render(frame, progress)


def ball_pixel(frame: "Frame", renderer: FrameRenderer | None = None) -> tuple[int, int]:
    """Pixel ``(col, row)`` where the ball centre of ``frame`` is drawn in the top view.

    ``render_frame(frame)[row, col]`` is ``BALL_COLOR``.
    """
    return (renderer or default_renderer()).ball_pixel(frame)
