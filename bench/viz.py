"""Draw whole-body skeletons, 2D and 3D, with the parts coloured: the one drawing module of pafuse-bench.

Poses are in the j134 layout of :mod:`bench.skeleton` (pelvis first) and are drawn with ``skeleton.BONES``; each part
(body with feet, face, left hand, right hand) has its colour in ``PART_COLOURS``, named by a legend on every picture
(``add_part_legend``).

* 2D poses are image pixels (x right, y down) and are drawn with y pointing down, as on the image, on axes
  labelled ``x (px)`` and ``y (px)``.
* 3D poses are camera-frame metres (x right, y down, z away from the camera, as H3WB's ``camera_3d``) and are drawn
  with height up: the plot's axes are (x, z, -y), seen from the fixed ``VIEW``.

:class:`Skeleton2D` and :class:`Skeleton3D` own the artists of one skeleton on an existing axes and move them in place
(``update``), so an animation re-renders one figure instead of building a figure per frame. :class:`PoseFigure` puts
the 2D input beside the 3D pose with axes limits fixed over a whole clip; :func:`render_clip` writes a clip's PNG
frames and animated GIF; :func:`sheet_figure` (saved by :func:`render_sheet`) puts several people (everyone in a still
image) on one picture, each person's 2D beside their 3D. Matplotlib is used through its Agg canvas directly, so no
global backend is changed.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator
from mpl_toolkits.mplot3d.art3d import Line3DCollection
from PIL import Image

from bench.io import atomic_path
from bench.skeleton import BONES, NUM_JOINTS, PARTS

PART_COLOURS = {"body": "#3465a4", "face": "#4e9a06", "left_hand": "#cc0000", "right_hand": "#f57900"}
"""Colour of each part's bones and keypoints (left hand red, right hand orange)."""
PART_NAMES = {"body": "body and feet", "face": "face", "left_hand": "left hand", "right_hand": "right hand"}
"""Each part as the pictures' legend names it (the body part holds the 17 body keypoints, the 6 foot keypoints and
the pelvis)."""
FILLED_COLOUR = "#555555"
VIEW = (15.0, -60.0)
"""Fixed 3D view (elevation, azimuth) in degrees: from slightly above, 30 degrees to the side of the camera."""
SHEET_HEADING_PX, SHEET_LEGEND_PX = 24, 22
"""Pixels of a sheet kept above its rows for the heading and below them for the legend."""
_MARKER_SIZE = {"body": 3.0, "face": 1.0, "left_hand": 1.5, "right_hand": 1.5}


def _check_pose(pose: np.ndarray, dims: int) -> np.ndarray:
    pose = np.asarray(pose, dtype=np.float64)
    if pose.shape[-2:] != (NUM_JOINTS, dims):
        raise ValueError(f"expected poses (..., {NUM_JOINTS}, {dims}) in the j134 layout, got shape {pose.shape}")
    return pose


def to_plot_3d(pose: np.ndarray) -> np.ndarray:
    """Camera-frame points (..., 3) -> plot axes (x, z, -y), so that height is up."""
    return np.stack([pose[..., 0], pose[..., 2], -pose[..., 1]], axis=-1)


def limits_2d(poses: np.ndarray, margin: float = 0.1) -> tuple[float, float, float, float]:
    """Square (x0, x1, y0, y1) pixel limits holding every finite point of poses (..., J, 2), plus a margin."""
    points = poses.reshape(-1, 2)
    points = points[np.isfinite(points).all(axis=1)]
    low, high = points.min(axis=0), points.max(axis=0)
    centre, half = (low + high) / 2, max((high - low).max() / 2 * (1 + margin), 1.0)
    return centre[0] - half, centre[0] + half, centre[1] - half, centre[1] + half


def limits_3d(poses: np.ndarray, margin: float = 0.05) -> tuple[np.ndarray, float]:
    """Cube limits in plot axes holding every point of camera-frame poses (..., J, 3): (centre (3,), half side)."""
    points = to_plot_3d(poses.reshape(-1, 3))
    centre = (points.min(axis=0) + points.max(axis=0)) / 2
    return centre, max(np.abs(points - centre).max() * (1 + margin), 1e-3)


def add_part_legend(figure: Figure, filled: bool, **where) -> None:
    """A one-line legend of the part colours on ``figure`` (and of the grey cross of a filled keypoint, where
    ``filled``); ``where`` places it (``loc``, ``bbox_to_anchor``)."""
    handles = [Line2D([], [], color=colour, marker="o", markersize=3, linewidth=1.5, label=PART_NAMES[part])
               for part, colour in PART_COLOURS.items()]
    if filled:
        handles.append(Line2D([], [], color=FILLED_COLOUR, marker="x", markersize=4, linestyle="none",
                              label="filled keypoint"))
    figure.legend(handles=handles, ncol=len(handles), frameon=False, fontsize=7, handlelength=1.5, **where)


class Skeleton2D:
    """The bones and keypoints of one 2D skeleton on ``ax``; filled keypoints get a grey cross on top.

    Args:
        ax: a 2D matplotlib Axes.
        line_width: bone width in points.
    """

    def __init__(self, ax, line_width: float = 1.0):
        self.bones = {part: ax.add_collection(LineCollection([], colors=colour, linewidths=line_width))
                      for part, colour in PART_COLOURS.items()}
        self.points = {part: ax.plot([], [], "o", color=colour, markersize=_MARKER_SIZE[part])[0]
                       for part, colour in PART_COLOURS.items()}
        self.filled = ax.plot([], [], "x", color=FILLED_COLOUR, markersize=4, markeredgewidth=1.0)[0]

    def artists(self) -> list:
        """Every artist of the skeleton."""
        return [*self.bones.values(), *self.points.values(), self.filled]

    def update(self, pose: np.ndarray, filled: np.ndarray | None = None) -> None:
        """Move the artists to ``pose`` (134, 2) pixels; ``filled`` (134,) bool marks filled keypoints."""
        pose = _check_pose(pose, 2)
        for part, collection in self.bones.items():
            collection.set_segments(pose[np.asarray(BONES[part])])
            self.points[part].set_data(pose[list(PARTS[part]), 0], pose[list(PARTS[part]), 1])
        shown = pose[filled] if filled is not None else pose[:0]
        self.filled.set_data(shown[:, 0], shown[:, 1])


class Skeleton3D:
    """The bones and keypoints of one 3D skeleton on a 3D ``ax`` (camera-frame metres, drawn height up)."""

    def __init__(self, ax, line_width: float = 1.0):
        self.bones = {part: ax.add_collection3d(Line3DCollection([], colors=colour, linewidths=line_width),
                                                autolim=False)
                      for part, colour in PART_COLOURS.items()}
        self.points = {part: ax.plot([], [], [], "o", color=colour, markersize=_MARKER_SIZE[part])[0]
                       for part, colour in PART_COLOURS.items()}

    def artists(self) -> list:
        """Every artist of the skeleton."""
        return [*self.bones.values(), *self.points.values()]

    def update(self, pose: np.ndarray) -> None:
        """Move the artists to ``pose`` (134, 3) camera-frame metres."""
        shown = to_plot_3d(_check_pose(pose, 3))
        for part, collection in self.bones.items():
            collection.set_segments(shown[np.asarray(BONES[part])])
            joints = shown[list(PARTS[part])]
            self.points[part].set_data_3d(joints[:, 0], joints[:, 1], joints[:, 2])


class PoseFigure:
    """The 2D input beside the 3D pose, with axes limits fixed over a clip and a fixed view; one figure, reused.

    Args:
        pose_2d: (T, 134, 2) pixels of the whole clip (sets the 2D limits).
        pose_3d: (T, 134, 3) camera-frame metres, e.g. root-relative (sets the 3D limits).
        size: picture (width, height) in pixels.
        dpi: dots per inch (sets the size of text and lines relative to the picture).
        filled: (T, 134) bool flags of the clip's filled keypoints; the legend shows the grey cross when any is.
    """

    def __init__(self, pose_2d: np.ndarray, pose_3d: np.ndarray, size: tuple[int, int] = (800, 400),
                 dpi: int = 100, filled: np.ndarray | None = None):
        pose_2d, pose_3d = _check_pose(pose_2d, 2), _check_pose(pose_3d, 3)
        self.figure = Figure(figsize=(size[0] / dpi, size[1] / dpi), dpi=dpi)
        self.canvas = FigureCanvasAgg(self.figure)
        ax2d = self.figure.add_axes((0.09, 0.2, 0.38, 0.68))
        ax3d = self.figure.add_axes((0.5, 0.1, 0.48, 0.82), projection="3d")
        self.skeleton_2d, self.skeleton_3d = Skeleton2D(ax2d), Skeleton3D(ax3d)
        self._style_2d(ax2d, limits_2d(pose_2d))  # after the artists, which would otherwise autoscale the axes
        self._style_3d(ax3d, *limits_3d(pose_3d))
        add_part_legend(self.figure, filled is not None and bool(np.any(filled)), loc="lower center",
                        bbox_to_anchor=(0.5, 0.0))
        self.title = self.figure.text(0.5, 0.96, "", ha="center", va="top", fontsize=9)
        self._moving = [*self.skeleton_2d.artists(), *self.skeleton_3d.artists(), self.title]
        for artist in self._moving:
            artist.set_animated(True)  # left out of the cached background, drawn on it per frame
        self._background = None

    @staticmethod
    def _style_2d(ax, limits) -> None:
        x0, x1, y0, y1 = limits
        ax.set_xlim(x0, x1)
        ax.set_ylim(y1, y0)  # image rows grow downwards
        ax.set_aspect("equal")
        ax.set_title("2D input", fontsize=8)
        ax.set_xlabel("x (px)", fontsize=7, labelpad=1)
        ax.set_ylabel("y (px)", fontsize=7, labelpad=1)
        ax.tick_params(labelsize=6)

    @staticmethod
    def _style_3d(ax, centre: np.ndarray, half: float) -> None:
        labels = ("x (m)", "depth z (m)", "up -y (m)")
        for axis, (low, high), label in zip("xyz", zip(centre - half, centre + half), labels):
            getattr(ax, f"set_{axis}lim")(low, high)
            getattr(ax, f"set_{axis}label")(label, fontsize=6, labelpad=-8)
        for axis in (ax.xaxis, ax.yaxis, ax.zaxis):
            axis.set_major_locator(MaxNLocator(4))   # fewer ticks: six or more run into each other in a small panel
        ax.set_box_aspect((1, 1, 1))
        ax.view_init(*VIEW)
        ax.tick_params(labelsize=5, pad=-3)
        ax.set_title("3D (m)", fontsize=8)

    def draw(self, pose_2d: np.ndarray, pose_3d: np.ndarray, filled: np.ndarray | None = None,
             title: str = "") -> np.ndarray:
        """Render one frame: 2D (134, 2) pixels, 3D (134, 3) metres; returns the picture (height, width, 3) uint8."""
        self.skeleton_2d.update(pose_2d, filled)
        self.skeleton_3d.update(pose_3d)
        self.title.set_text(title)
        if self._background is None:
            # Axes, ticks and labels never change (fixed limits and view): render them once, then blit the
            # skeletons onto that picture instead of redrawing the figure.
            self.canvas.draw()
            self._background = self.canvas.copy_from_bbox(self.figure.bbox)
        self.canvas.restore_region(self._background)
        for artist in self._moving:
            if hasattr(artist, "do_3d_projection"):
                artist.do_3d_projection()  # 3D collections project their segments when the axes draws them
            artist.axes.draw_artist(artist) if artist.axes else self.figure.draw_artist(artist)
        return np.asarray(self.canvas.buffer_rgba())[..., :3].copy()


def save_png(picture: np.ndarray, path: str | Path) -> Path:
    """Write an (height, width, 3) uint8 picture as a PNG, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(picture).save(tmp, format="PNG")
    return path


def save_gif(pictures: list[np.ndarray], path: str | Path, fps: float) -> Path:
    """Write (height, width, 3) uint8 pictures as a looping animated GIF at ``fps`` frames per second."""
    path = Path(path)
    # A fast octree palette of 64 colours suits flat plots (white, greys, four part colours and their blends).
    frames = [Image.fromarray(p).quantize(colors=64, method=Image.Quantize.FASTOCTREE) for p in pictures]
    with atomic_path(path) as tmp:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], loop=0,
                       duration=max(int(round(1000 / fps)), 20))
    return path


def render_clip(pose_2d: np.ndarray, pose_3d: np.ndarray, filled: np.ndarray | None = None, *,
                frames_dir: str | Path | None = None, gif: str | Path | None = None, fps: float = 10.0,
                titles: list[str] | None = None, size: tuple[int, int] = (800, 400),
                max_gif_frames: int = 300) -> list[Path]:
    """Draw every frame of a clip; write PNGs ``frames_dir/000000.png ...`` and/or an animated GIF.

    Args:
        pose_2d: (T, 134, 2) pixels.
        pose_3d: (T, 134, 3) camera-frame metres.
        filled: (T, 134) bool, keypoints that were filled rather than detected (grey crosses), or None.
        frames_dir: folder for one PNG per frame, or None.
        gif: path of the GIF, or None. A GIF holds every frame in memory while written, so clips longer than
            ``max_gif_frames`` keep every k-th frame in it (played k times slower per frame to keep the timing).
        fps: frames per second of the clip.
        titles: one title per frame (default: the frame number).
        size: picture (width, height) in pixels.

    Returns:
        The files written (PNGs in frame order, then the GIF).
    """
    pose_2d, pose_3d = _check_pose(pose_2d, 2), _check_pose(pose_3d, 3)
    if frames_dir is None and gif is None:
        return []
    if len(pose_2d) != len(pose_3d) or len(pose_2d) == 0:
        raise ValueError(f"2D and 3D clips should have the same T >= 1 frames, got {len(pose_2d)} and {len(pose_3d)}")
    figure = PoseFigure(pose_2d, pose_3d, size=size, filled=filled)
    stride = -(-len(pose_2d) // max_gif_frames)
    written, pictures = [], []
    for frame in range(len(pose_2d)):
        if frames_dir is None and frame % stride:
            continue  # only the GIF is wanted and this frame is not in it
        picture = figure.draw(pose_2d[frame], pose_3d[frame], None if filled is None else filled[frame],
                              titles[frame] if titles else f"frame {frame}")
        if frames_dir is not None:
            written.append(save_png(picture, Path(frames_dir) / f"{frame:06d}.png"))
        if gif is not None and frame % stride == 0:
            pictures.append(picture)
    if gif is not None:
        written.append(save_gif(pictures, gif, fps / stride))
    return written


def render_sheet(poses_2d: np.ndarray, poses_3d: np.ndarray, path: str | Path, filled: np.ndarray | None = None,
                 **options) -> Path:
    """Write :func:`sheet_figure` as a PNG at ``path`` (``options`` are its keyword arguments); returns ``path``."""
    figure = sheet_figure(poses_2d, poses_3d, filled, **options)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return save_png(np.asarray(canvas.buffer_rgba())[..., :3].copy(), path)


def sheet_figure(poses_2d: np.ndarray, poses_3d: np.ndarray, filled: np.ndarray | None = None, *,
                 titles: list[str] | None = None, heading: str = "", row_size: tuple[int, int] = (640, 300),
                 dpi: int = 100) -> Figure:
    """One picture of several people (e.g. everyone in a still image): per row, a person's 2D beside their 3D,
    the part colours' legend below the rows.

    Args:
        poses_2d: (P, 134, 2) pixels, one pose per person.
        poses_3d: (P, 134, 3) camera-frame metres.
        filled: (P, 134) bool, keypoints that were filled rather than detected (grey crosses), or None.
        titles: one title per person (default ``person p``).
        heading: a line above the rows (e.g. the image's name).
        row_size: (width, height) in pixels of one row; the picture is ``SHEET_LEGEND_PX`` (and, with a heading,
            ``SHEET_HEADING_PX``) taller than the rows.
    """
    poses_2d, poses_3d = _check_pose(poses_2d, 2), _check_pose(poses_3d, 3)
    if poses_2d.ndim != 3 or len(poses_2d) != len(poses_3d) or len(poses_2d) == 0:
        raise ValueError(f"expected P >= 1 people in 2D and 3D, got shapes {poses_2d.shape} and {poses_3d.shape}")
    people = len(poses_2d)
    width, height = row_size
    top = SHEET_HEADING_PX if heading else 0
    total = people * height + top + SHEET_LEGEND_PX
    figure = Figure(figsize=(width / dpi, total / dpi), dpi=dpi)
    row = height / total  # one row's height as a fraction of the figure
    for p in range(people):
        bottom = 1 - top / total - (p + 1) * row
        ax2d = figure.add_axes((0.1, bottom + 0.17 * row, 0.38, 0.71 * row))
        ax3d = figure.add_axes((0.52, bottom + 0.02 * row, 0.44, 0.9 * row), projection="3d")
        Skeleton2D(ax2d).update(poses_2d[p], None if filled is None else filled[p])
        Skeleton3D(ax3d).update(poses_3d[p])
        PoseFigure._style_2d(ax2d, limits_2d(poses_2d[p]))
        PoseFigure._style_3d(ax3d, *limits_3d(poses_3d[p]))
        ax2d.set_title(f"{titles[p] if titles else f'person {p}'}: 2D input", fontsize=8)
    if heading:
        figure.text(0.5, 1 - 4 / total, heading, ha="center", va="top", fontsize=9)
    add_part_legend(figure, filled is not None and bool(np.any(filled)), loc="lower center",
                    bbox_to_anchor=(0.5, 0.0))
    return figure
