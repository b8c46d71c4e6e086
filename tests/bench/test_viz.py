"""The whole-body drawing module: limits, the 3D display axes, artists that follow the pose, PNG and GIF files."""
import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from bench import viz
from bench.skeleton import BONES, NUM_JOINTS, PARTS


def clip(frames: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A random (T, 134, 2) pixel clip and (T, 134, 3) metre clip."""
    rng = np.random.default_rng(seed)
    return rng.uniform(100, 500, size=(frames, NUM_JOINTS, 2)), rng.normal(0, 0.4, size=(frames, NUM_JOINTS, 3))


def test_2d_limits_are_a_square_holding_every_point_with_a_margin():
    pose_2d = np.full((2, NUM_JOINTS, 2), (200.0, 230.0))
    pose_2d[0, 0], pose_2d[1, 1] = (100, 200), (300, 260)
    pose_2d[1, 5] = np.nan  # a missing point does not break the limits
    x0, x1, y0, y1 = viz.limits_2d(pose_2d, margin=0.1)
    assert (x0, x1) == pytest.approx((90, 310)) and (y0, y1) == pytest.approx((120, 340))


def test_3d_display_has_height_up_and_cube_limits():
    point = np.array([0.1, -1.5, 3.0])  # camera frame: y down, so -1.5 is above the camera centre
    np.testing.assert_allclose(viz.to_plot_3d(point), [0.1, 3.0, 1.5])
    centre, half = viz.limits_3d(np.stack([np.zeros(3), point]), margin=0.0)
    np.testing.assert_allclose(centre, [0.05, 1.5, 0.75])
    assert half == pytest.approx(1.5)


def test_skeleton_artists_follow_the_pose_part_by_part():
    pose_2d, pose_3d = clip(1)
    figure = Figure()
    skeleton_2d = viz.Skeleton2D(figure.add_subplot(1, 2, 1))
    skeleton_3d = viz.Skeleton3D(figure.add_subplot(1, 2, 2, projection="3d"))
    filled = np.zeros(NUM_JOINTS, dtype=bool)
    filled[[3, 7]] = True
    skeleton_2d.update(pose_2d[0], filled)
    skeleton_3d.update(pose_3d[0])
    for part, bones in BONES.items():
        segments = skeleton_2d.bones[part].get_segments()
        assert len(segments) == len(bones)
        np.testing.assert_allclose(segments[0], pose_2d[0, list(bones[0])])
        x, y = skeleton_2d.points[part].get_data()
        np.testing.assert_allclose(np.stack([x, y], axis=1), pose_2d[0, list(PARTS[part])])
        x, y, z = skeleton_3d.points[part].get_data_3d()
        np.testing.assert_allclose(np.stack([x, y, z], axis=1), viz.to_plot_3d(pose_3d[0, list(PARTS[part])]))
    np.testing.assert_allclose(np.stack(skeleton_2d.filled.get_data(), axis=1), pose_2d[0, [3, 7]])
    assert set(viz.PART_COLOURS) == set(BONES)


def test_render_clip_writes_one_png_per_frame_of_the_asked_size_and_a_gif(tmp_path):
    pose_2d, pose_3d = clip(4)
    files = viz.render_clip(pose_2d, pose_3d, frames_dir=tmp_path / "frames", gif=tmp_path / "clip.gif",
                            size=(320, 200), titles=[f"t{i}" for i in range(4)])
    assert [f.name for f in files] == ["000000.png", "000001.png", "000002.png", "000003.png", "clip.gif"]
    for png in files[:4]:
        with Image.open(png) as image:
            assert image.format == "PNG" and image.size == (320, 200)
        assert png.stat().st_size > 2000  # a drawn skeleton, not an empty canvas
    with Image.open(files[-1]) as gif:
        assert gif.format == "GIF" and gif.size == (320, 200) and gif.n_frames == 4


def test_a_long_clip_keeps_every_kth_frame_in_the_gif_and_no_pngs_when_none_asked(tmp_path):
    pose_2d, pose_3d = clip(7)
    files = viz.render_clip(pose_2d, pose_3d, gif=tmp_path / "clip.gif", size=(160, 100), max_gif_frames=3)
    assert files == [tmp_path / "clip.gif"] and not (tmp_path / "frames").exists()
    with Image.open(files[0]) as gif:
        assert gif.n_frames == 3  # frames 0, 3, 6


def test_frames_change_with_the_pose_but_the_axes_stay_fixed(tmp_path):
    pose_2d, pose_3d = clip(2)
    figure = viz.PoseFigure(pose_2d, pose_3d, size=(200, 100))
    first = figure.draw(pose_2d[0], pose_3d[0])
    limits = [ax.get_xlim() for ax in figure.figure.axes]
    second = figure.draw(pose_2d[1], pose_3d[1])
    assert first.shape == (100, 200, 3) and first.dtype == np.uint8
    assert np.any(first != second)
    assert [ax.get_xlim() for ax in figure.figure.axes] == limits


def test_poses_in_another_layout_are_refused():
    with pytest.raises(ValueError, match=r"expected poses \(\.\.\., 134, 2\) in the j134 layout, got shape "
                                         r"\(3, 133, 2\)"):
        viz.render_clip(np.zeros((3, 133, 2)), np.zeros((3, NUM_JOINTS, 3)))


def test_a_sheet_has_one_row_per_person_and_draws_each_pose(tmp_path):
    pose_2d, pose_3d = clip(2)
    path = viz.render_sheet(pose_2d, pose_3d, tmp_path / "sheet.png", np.zeros((2, NUM_JOINTS), dtype=bool),
                            titles=["person 0", "person 1"], heading="photo.jpg", row_size=(320, 150))
    with Image.open(path) as sheet:
        picture = np.asarray(sheet.convert("RGB"))
    assert picture.shape == (2 * 150 + 24 + 22, 320, 3)   # rows, heading and legend
    for row in range(2):  # both rows have coloured (non-grey) skeleton pixels in both halves
        band = picture[24 + 150 * row: 24 + 150 * (row + 1)].astype(int)
        coloured = np.abs(band - band.mean(axis=-1, keepdims=True)).max(axis=-1) > 40
        assert coloured[:, :160].any() and coloured[:, 160:].any()
    with pytest.raises(ValueError, match="expected P >= 1 people"):
        viz.render_sheet(pose_2d[:0], pose_3d[:0], tmp_path / "none.png")


PART_LEGEND = ["body and feet", "face", "left hand", "right hand"]


def test_clip_pictures_name_the_part_colours_and_label_the_2d_axes_in_pixels():
    pose_2d, pose_3d = clip(2)
    filled = np.zeros((2, NUM_JOINTS), dtype=bool)
    for flags, legend in ((filled, PART_LEGEND), (filled | (np.arange(NUM_JOINTS) == 5), [*PART_LEGEND,
                                                                                        "filled keypoint"])):
        figure = viz.PoseFigure(pose_2d, pose_3d, filled=flags).figure
        (shown,) = figure.legends
        assert [text.get_text() for text in shown.get_texts()] == legend
        colours = [line.get_color() for line in shown.legend_handles[:4]]
        assert colours == [viz.PART_COLOURS[part] for part in ("body", "face", "left_hand", "right_hand")]
        ax2d, ax3d = figure.axes
        assert (ax2d.get_xlabel(), ax2d.get_ylabel()) == ("x (px)", "y (px)")
        assert (ax3d.get_xlabel(), ax3d.get_ylabel(), ax3d.get_zlabel()) == ("x (m)", "depth z (m)", "up -y (m)")


def test_a_sheet_has_the_legend_and_2d_axis_labels_on_every_row():
    pose_2d, pose_3d = clip(3)
    figure = viz.sheet_figure(pose_2d, pose_3d, titles=["a", "b", "c"])
    assert [text.get_text() for text in figure.legends[0].get_texts()] == PART_LEGEND
    panels_2d = [ax for ax in figure.axes if ax.name != "3d"]
    assert [ax.get_title() for ax in panels_2d] == ["a: 2D input", "b: 2D input", "c: 2D input"]
    assert all((ax.get_xlabel(), ax.get_ylabel()) == ("x (px)", "y (px)") for ax in panels_2d)
