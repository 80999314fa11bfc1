"""Writes a sequence of frames to an animated GIF or an MP4 video."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from .frames import Frame
from .scene import FrameRenderer
from .style import NAMED_COLORS

#: File extensions :func:`write_animation` understands (lower case).
ALLOWED_EXTENSIONS: tuple[str, ...] = (".gif", ".mp4")
#: Colours in the single palette shared by all GIF frames (GIF allows at most 256).
GIF_PALETTE_SIZE: int = 96
#: Evenly spread frames sampled (plus the first goal and touch frames) to build the GIF palette.
GIF_PALETTE_SAMPLES: int = 5
#: GIF delays are stored in 1/100 s; viewers slow down delays below 20 ms.
_GIF_TICK_MS: int = 10
_GIF_MIN_DELAY_MS: int = 20
#: MP4 (H.264) constant rate factor: lower is better quality and larger (0..51).
MP4_CRF: int = 23


def write_animation(frames: Sequence[Frame], out_path: str | Path, fps: float) -> None:
    """Renders ``frames`` and writes them as one animation, one image per frame.

    A thin progress bar along the bottom shows the position in the recording.

    Args:
        frames: the steps to draw, in playback order (may span several episodes).
        out_path: destination ending in ``.gif`` or ``.mp4`` (case-insensitive);
            parent folders are created.
        fps: playback rate in frames per second; pass the decision rate for real
            time (15 for ``tick_skip`` 8 at 120 ticks/s). GIF delays are stored in
            1/100 s; the rounding error is carried over, so the average rate is
            exact up to 50 fps (the fastest rate GIF viewers honour).

    Raises:
        ValueError: unknown extension, no frames, or ``fps <= 0``.
    """
    path = Path(out_path)
    ext = path.suffix.lower()
    if ext not in ALLOWED_EXTENSIONS:
        raise ValueError(f"unsupported animation extension {path.suffix or '(none)'!r} in {str(path)!r}; "
                         f"allowed extensions: {', '.join(ALLOWED_EXTENSIONS)}")
    if len(frames) == 0:
        raise ValueError("write_animation needs at least one frame, got none")
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    renderer = FrameRenderer()
    if ext == ".gif":
        _write_gif(frames, path, fps, renderer)
    else:
        _write_mp4(frames, path, fps, renderer)


def gif_delays_ms(count: int, fps: float) -> list[int]:
    """Per-frame GIF delays (ms, multiples of 10, at least 20) whose running sum tracks ``i / fps``.

    Args:
        count: number of frames.
        fps: target frames per second.
    """
    ticks = [round(i * 1000.0 / fps / _GIF_TICK_MS) for i in range(count + 1)]
    return [max(_GIF_MIN_DELAY_MS, _GIF_TICK_MS * (b - a)) for a, b in zip(ticks, ticks[1:])]


def _progress(index: int, count: int) -> float:
    """Fraction ``0..1`` of the recording shown once frame ``index`` (0-based) of ``count`` is on screen."""
    return (index + 1) / count


def _gif_palette(frames: Sequence[Frame], renderer: FrameRenderer) -> Image.Image:
    """A 1x1 ``P`` image carrying the palette shared by all GIF frames.

    The palette holds every named colour exactly, then a median-cut palette of a
    few sample frames (antialiased edges and text), ``GIF_PALETTE_SIZE`` entries in all.
    """
    count = len(frames)
    picks = {round(i * (count - 1) / max(1, GIF_PALETTE_SAMPLES - 1)) for i in range(GIF_PALETTE_SAMPLES)}
    picks.update([i for i, f in enumerate(frames) if f.goal][:1])
    picks.update([i for i, f in enumerate(frames) if f.touched][:1])
    montage = np.concatenate([renderer.render(frames[i], _progress(i, count)) for i in sorted(picks)], axis=0)
    named = list(dict.fromkeys(NAMED_COLORS))
    adaptive = Image.fromarray(montage).quantize(colors=GIF_PALETTE_SIZE - len(named),
                                                 method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    adaptive_palette = adaptive.getpalette()
    assert adaptive_palette is not None  # quantize() makes a "P" image, which has a palette
    adaptive_rgb = adaptive_palette[: 3 * (GIF_PALETTE_SIZE - len(named))]
    palette = [c for rgb in named for c in rgb] + adaptive_rgb
    palette_image = Image.new("P", (1, 1))
    palette_image.putpalette(palette)
    return palette_image


def _write_gif(frames: Sequence[Frame], path: Path, fps: float, renderer: FrameRenderer) -> None:
    """Quantises every frame to one shared palette (no dithering) and saves a looping GIF."""
    palette = _gif_palette(frames, renderer)
    count = len(frames)
    images = [
        Image.fromarray(renderer.render(frame, _progress(i, count))).quantize(palette=palette,
                                                                              dither=Image.Dither.NONE)
        for i, frame in enumerate(frames)
    ]
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=gif_delays_ms(count, fps),
                   loop=0, optimize=True)


def _write_mp4(frames: Sequence[Frame], path: Path, fps: float, renderer: FrameRenderer) -> None:
    """Streams frames into an H.264 MP4 (yuv420p, plays in browsers) via imageio-ffmpeg."""
    import imageio.v2 as imageio

    count = len(frames)
    writer = imageio.get_writer(str(path), format="FFMPEG", mode="I", fps=float(fps), codec="libx264",
                                pixelformat="yuv420p", quality=None, macro_block_size=16,
                                output_params=["-crf", str(MP4_CRF)], ffmpeg_log_level="error")
    try:
        for i, frame in enumerate(frames):
            writer.append_data(renderer.render(frame, _progress(i, count)))
    finally:
        writer.close()
