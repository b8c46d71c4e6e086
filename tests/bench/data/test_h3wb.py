"""The H3WB loader on hand-built files in the official layout, and every bad-input case."""
import numpy as np
import pytest

from bench import skeleton
from bench.data import cameras
from bench.data.h3wb import load_h3wb, read_tree
from bench.errors import DataError
from bench.io import save_npz

CAM = "54138969"


def _view(frames: int, offset: float = 0.0) -> dict:
    rng = np.random.default_rng(frames)
    camera_3d = rng.normal(0, 300, (frames, 133, 3)) + np.array([0, 0, 4500.0]) + offset
    pose_2d = rng.uniform(0, 1000, (frames, 133, 2))
    return {"camera_3d": camera_3d, "pose_2d": pose_2d, "sample_id": np.arange(frames) + 100}


def _calibration() -> dict:
    return {"K": np.eye(3, dtype=np.float32)[None], "R": np.eye(3, dtype=np.float32)[None],
            "T": np.zeros((1, 1, 3), np.float32), "Distortion": np.zeros((1, 5), np.float32)}


def _official(tmp_path, train_data=None, metadata=None, **extra):
    """Write an h3wb_train.npz with the official layout (plus ``extra`` keys, e.g. mmpose's bbox)."""
    train_data = train_data if train_data is not None else {
        "S1": {"Directions 1": {"frame_id": np.array([30, 10, 20, 400]), "global_3d": np.zeros((4, 133, 3)),
                                CAM: _view(4)}}}
    metadata = metadata if metadata is not None else {"S1": {CAM: _calibration()}, "notes": [1, 3]}
    path = tmp_path / "h3wb_train.npz"
    save_npz(path, train_data=np.array(train_data, dtype=object), metadata=np.array(metadata, dtype=object),
             **extra)
    return path


def test_official_layout_is_read_sorted_in_metres_and_normalized(tmp_path):
    path = _official(tmp_path, bbox=np.zeros((4, 4)))
    (sequence,) = load_h3wb(tmp_path, subjects=["S1"])
    raw = read_tree(path)[0]["S1"]["Directions 1"][CAM]
    order = [1, 2, 0, 3]  # frame ids 10, 20, 30, 400
    assert sequence.frame_ids.tolist() == [10, 20, 30, 400]
    assert sequence.sample_ids.tolist() == [101, 102, 100, 103]
    assert sequence.pose_3d.shape == (4, 134, 3) and sequence.pose_3d.dtype == np.float32
    np.testing.assert_allclose(sequence.pose_3d[:, 1:], raw["camera_3d"][order] / 1000, rtol=1e-6)
    hips = raw["camera_3d"][order][:, list(skeleton.HIPS_C133)].mean(1) / 1000
    np.testing.assert_allclose(sequence.pose_3d[:, 0], hips, rtol=1e-6)
    width, height = cameras.RESOLUTIONS[CAM]
    u, v = raw["pose_2d"][order][..., 0], raw["pose_2d"][order][..., 1]
    np.testing.assert_allclose(sequence.pose_2d[:, 1:, 0], 2 * u / width - 1, atol=1e-6)
    np.testing.assert_allclose(sequence.pose_2d[:, 1:, 1], 2 * v / width - height / width, atol=1e-6)
    assert sequence.resolution == (1000, 1002) and set(sequence.calibration) == {"K", "R", "T", "Distortion"}


def test_max_gap_splits_a_take(tmp_path):
    _official(tmp_path)
    pieces = load_h3wb(tmp_path, subjects=["S1"], max_gap=50)
    assert [p.frame_ids.tolist() for p in pieces] == [[10, 20, 30], [400]]
    assert [p.segment for p in pieces] == [0, 1]
    assert len(load_h3wb(tmp_path, subjects=["S1"])) == 1


def test_test_file_and_train_file_merge(tmp_path):
    _official(tmp_path)
    test = {"S8": {"Walking 1": {"frame_id": np.arange(3), CAM: _view(3)}}}
    save_npz(tmp_path / "task1_test_3d.npz", data=np.array(test, dtype=object))
    sequences = load_h3wb(tmp_path, subjects=["S1", "S8"])
    assert [(s.subject, s.action) for s in sequences] == [("S1", "Directions 1"), ("S8", "Walking 1")]
    assert sequences[1].calibration == {}


def _tree(view=None, frame_id=None, camera=CAM):
    entry = {"frame_id": np.arange(4) if frame_id is None else frame_id, camera: _view(4) if view is None else view}
    return {"S1": {"Directions 1": entry}}


@pytest.mark.parametrize("case, match", [
    ("missing_file", r"h3wb_train.npz: file: expected an H3WB npz file, found no such file"),
    ("empty_folder", r"expected h3wb_train.npz and/or task1_test_3d.npz, found neither"),
    ("not_npz", r"expected an npz archive, found unreadable"),
    ("missing_top_key", r"top level: expected key 'train_data'.*found keys \['metadata', 'other'\]"),
    ("missing_pose_key", r"S1/Directions 1/54138969/pose_2d: expected key 'pose_2d'"),
    ("missing_frame_id", r"S1/Directions 1/frame_id: expected key 'frame_id'"),
    ("wrong_joints", r"S1/Directions 1/54138969/camera_3d: expected shape \(4, 133, 3\), found shape \(4, 17, 3\)"),
    ("wrong_frames", r"S1/Directions 1/54138969/pose_2d: expected shape \(4, 133, 2\), found shape \(3, 133, 2\)"),
    ("nan", r"S1/Directions 1/54138969/camera_3d: expected finite values, found nan at index \(2, 5, 1\)"),
    ("inf", r"S1/Directions 1/54138969/pose_2d: expected finite values, found inf"),
    ("unknown_camera", r"S1/Directions 1/12345: expected a calibrated camera id"),
    ("no_calibration", r"metadata/S1/54138969: expected a calibration dict with 'K', 'R', 'T', found nothing"),
    ("missing_subject", r"subject S5: expected the subject in the data, found subjects \['S1'\]"),
    ("no_frames", r"S1: expected at least one annotated frame, found no frames"),
])
def test_bad_input_gives_one_clear_error(tmp_path, case, match):
    subjects = ["S5"] if case == "missing_subject" else ["S1"]
    metadata = {"S1": {CAM: _calibration()}}
    if case == "missing_file":
        source = [tmp_path / "h3wb_train.npz"]
    elif case == "empty_folder":
        source = tmp_path
    elif case == "not_npz":
        (tmp_path / "h3wb_train.npz").write_text("not a zip")
        source = tmp_path
    elif case == "missing_top_key":
        save_npz(tmp_path / "h3wb_train.npz", metadata=np.array({}, dtype=object), other=np.zeros(1))
        source = tmp_path
    else:
        view = _view(4)
        frame_id = None
        camera = CAM
        if case == "missing_pose_key":
            del view["pose_2d"]
        elif case == "wrong_joints":
            view["camera_3d"] = view["camera_3d"][:, :17]
        elif case == "wrong_frames":
            view["pose_2d"] = view["pose_2d"][:3]
        elif case == "nan":
            view["camera_3d"][2, 5, 1] = np.nan
        elif case == "inf":
            view["pose_2d"][0, 0, 0] = np.inf
        elif case == "unknown_camera":
            camera = "12345"
        elif case == "no_calibration":
            metadata = {"S1": {}}
        tree = _tree(view, frame_id, camera)
        if case == "missing_frame_id":
            del tree["S1"]["Directions 1"]["frame_id"]
        if case == "no_frames":
            tree = {"S1": {}}
        _official(tmp_path, train_data=tree, metadata=metadata)
        source = tmp_path
    with pytest.raises(DataError, match=match):
        load_h3wb(source, subjects=subjects)
