"""The npz loader's tolerance: the file names people hold, quirks of real files, sample ids, mirror lists."""
import warnings

import numpy as np
import pytest

from bench import skeleton
from bench.data.h3wb import load_h3wb
from bench.errors import DataError
from bench.io import save_npz
from bench.skeleton import flip_permutation

CAM = "54138969"


def _object(value):
    holder = np.empty((), dtype=object)
    holder[()] = value
    return holder


def _view(frames: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {"camera_3d": rng.normal(0, 300, (frames, 133, 3)) + np.array([0, 0, 4500.0]),
            "pose_2d": rng.uniform(0, 1000, (frames, 133, 2)), "sample_id": np.arange(frames) + 7}


def _tree(frames: int = 3, subject: str = "S1") -> dict:
    return {subject: {"Directions 1": {"frame_id": np.arange(frames) * 5 + 10, CAM: _view(frames)}}}


def _write(path, data, metadata=None, **extra):
    arrays = {"train_data": _object(data), **extra}
    if metadata is not None:
        arrays["metadata"] = _object(metadata)
    return save_npz(path, **arrays)


def _calibration() -> dict:
    return {"K": np.eye(3, dtype=np.float32)[None] * 1.1455, "R": np.eye(3, dtype=np.float32)[None],
            "T": np.array([[[-0.08, 0.43, 4.45]]], np.float32), "Distortion": np.zeros((1, 5), np.float32)}


def _same(a, b):
    assert (a.subject, a.action, a.camera, a.resolution, a.segment) == (b.subject, b.action, b.camera, b.resolution,
                                                                         b.segment)
    for name in ("frame_ids", "sample_ids", "pose_2d", "pose_3d"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def test_mmpose_like_file_loads_like_the_plain_layout(tmp_path):
    """One sample, a scalar sample_id, mmpose's tuple-keyed top-level bbox, full camera metadata: same arrays."""
    plain = _tree(frames=1)
    quirky = _tree(frames=1)
    quirky["S1"]["Directions 1"][CAM]["sample_id"] = 7  # a plain int, not an array of one
    bbox = {("S1", "Directions 1", CAM, 10): {"x_min": 1.0, "y_min": 2.0, "x_max": 300.0, "y_max": 400.0}}
    metadata = {"S1": {CAM: _calibration()}}
    _write(tmp_path / "plain" / "h3wb_train.npz", plain, metadata)
    _write(tmp_path / "mmpose" / "h3wb_train_bbox.npz", quirky, metadata, bbox=_object(bbox))
    (expected,) = load_h3wb(tmp_path / "plain", subjects=["S1"])
    (found,) = load_h3wb(tmp_path / "mmpose", subjects=["S1"])
    _same(found, expected)
    assert found.sample_ids.tolist() == [7] and found.frames == 1
    assert {k: v.shape for k, v in found.calibration.items()} == {"K": (1, 3, 3), "R": (1, 3, 3), "T": (1, 1, 3),
                                                                  "Distortion": (1, 5)}


def test_extra_keys_at_every_level_are_ignored(tmp_path):
    data = _tree()
    action = data["S1"]["Directions 1"]
    action["global_3d"] = np.zeros((3, 133, 3))
    action["bbox"] = {"x_min": 0}                 # a dict that is not a camera view
    action["note"] = "anything"
    action[CAM]["bbox"] = np.zeros((3, 4))
    action[CAM]["score"] = {"a": 1}
    data["S1"]["subject_info"] = "height 1.80"     # not an action
    data["S1"]["extra dict"] = {"x": 1}             # a dict with neither frames nor views
    data["S1"][7] = {"y": 2}                        # keys of another type
    data["version"] = 3                             # not a subject
    metadata = {"S1": {CAM: {**_calibration(), "name": "cam 1"}, "other": {}}, "body": list(range(17)), 5: (1, 2)}
    _write(tmp_path / "a" / "h3wb_train.npz", _tree())
    _write(tmp_path / "b" / "h3wb_train.npz", data, metadata, bbox=_object({("S1", "x"): 1}), version=np.array(2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (found,) = load_h3wb(tmp_path / "b", subjects=["S1"])
    _same(found, load_h3wb(tmp_path / "a", subjects=["S1"])[0])


@pytest.mark.parametrize("value, expected", [
    (np.array([3, 1, 2]), [1, 2, 3]),      # per frame, sorted with the frames (frame ids 30, 10, 20)
    (np.int64(4), None), (4, None),        # one id for three frames: not per frame, so dropped
    (None, None),                          # absent
])
def test_sample_id_forms(tmp_path, value, expected):
    data = _tree()
    data["S1"]["Directions 1"]["frame_id"] = np.array([30, 10, 20])
    view = data["S1"]["Directions 1"][CAM]
    if value is None:
        del view["sample_id"]
    else:
        view["sample_id"] = value
    _write(tmp_path / "h3wb_train.npz", data)
    (sequence,) = load_h3wb(tmp_path, subjects=["S1"], max_gap=100)
    assert (None if sequence.sample_ids is None else sequence.sample_ids.tolist()) == expected


@pytest.mark.parametrize("name", ["h3wb_train.npz", "train_h3wb.npz", "h3wb_train_bbox.npz"])
def test_every_name_of_the_training_file(tmp_path, name):
    _write(tmp_path / name, _tree())
    assert [s.subject for s in load_h3wb(tmp_path, subjects=["S1"])] == ["S1"]


def test_a_subject_in_two_files_names_both(tmp_path):
    _write(tmp_path / "h3wb_train.npz", _tree())
    _write(tmp_path / "train_h3wb.npz", _tree())
    with pytest.raises(DataError, match=r"h3wb_train\.npz and .*train_h3wb\.npz: subject S1: expected each subject "
                                        r"in one file only"):
        load_h3wb(tmp_path, subjects=["S1"])


def test_a_list_of_files_and_all_subjects(tmp_path):
    first = _write(tmp_path / "one" / "train_h3wb.npz", _tree(subject="S1"))
    second = save_npz(tmp_path / "two" / "task1_test_3d.npz", data=_object(_tree(subject="S8")))
    sequences = load_h3wb([first, second], subjects=None)
    assert [s.subject for s in sequences] == ["S1", "S8"]
    assert [s.subject for s in load_h3wb(str(second), subjects=["S8"])] == ["S8"]


def _mirror_metadata(pairs) -> dict:
    return {"left_side": [left for left, _ in pairs], "right_side": [right for _, right in pairs]}


def test_mirror_lists_that_agree_say_nothing(tmp_path):
    pairs = [(b, a) for a, b in skeleton.MIRROR_PAIRS_C133]  # orientation does not matter
    # A midline keypoint on both lists is dropped from both, as PAFUSE does.
    metadata = {"left_side": [0] + [left for left, _ in pairs], "right_side": [right for _, right in pairs] + [0]}
    _write(tmp_path / "h3wb_train.npz", _tree(), metadata)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (sequence,) = load_h3wb(tmp_path, subjects=["S1"])
    assert sequence.mirror_pairs == skeleton.MIRROR_PAIRS_C133
    np.testing.assert_array_equal(flip_permutation(sequence.mirror_pairs), skeleton.FLIP_PERMUTATION)


def test_mirror_lists_that_disagree_warn_and_win_only_on_request(tmp_path):
    pairs = list(skeleton.MIRROR_PAIRS_C133)
    pairs[0] = (1, 4)  # left eye with right ear
    pairs[1] = (2, 3)  # right eye with left ear
    path = _write(tmp_path / "h3wb_train.npz", _tree(), _mirror_metadata(pairs))
    expected = (rf"{path.name}: metadata left_side/right_side .* pairs only in the file "
                r"\[\(1, 4\), \(2, 3\)\], pairs only in bench.skeleton \[\(1, 2\), \(3, 4\)\]")
    with pytest.warns(UserWarning, match=expected):
        (plain,) = load_h3wb(tmp_path, subjects=["S1"])
    assert plain.mirror_pairs == skeleton.MIRROR_PAIRS_C133
    with pytest.warns(UserWarning, match="mirroring with the file's pairs"):
        (chosen,) = load_h3wb(tmp_path, subjects=["S1"], mirror_from_file=True)
    assert chosen.mirror_pairs == tuple(pairs)
    permutation = flip_permutation(chosen.mirror_pairs)
    assert permutation[2] == 5 and permutation[5] == 2 and permutation[0] == 0


def test_unreadable_mirror_lists_warn_unless_used(tmp_path):
    _write(tmp_path / "h3wb_train.npz", _tree(), {"left_side": [1, 3], "right_side": [2]})
    with pytest.warns(UserWarning, match=r"expected as many left as right keypoints .* found 2 left and 1 right"):
        load_h3wb(tmp_path, subjects=["S1"])
    with pytest.raises(DataError, match=r"metadata/left_side, right_side: expected as many left as right"):
        load_h3wb(tmp_path, subjects=["S1"], mirror_from_file=True)
