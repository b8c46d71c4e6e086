"""H3WB's JSON release: sequences rebuilt from image paths, the writer, the leaderboard export and its score."""
import json
import shutil

import numpy as np
import pytest
import torch

from bench import metrics
from bench.data import cameras
from bench.data.h3wb import load_h3wb
from bench.data.h3wb_json_format import TEST_2D, TEST_3D, TRAIN_IMAGES, TRAIN_JSON, TRAIN_PARTS
from bench.data.h3wb_json_write import export_h3wb_predictions, h3wb_leaderboard_score, write_h3wb_json
from bench.errors import DataError

CAM = "55011271"


@pytest.fixture(scope="module")
def npz_sequences(tiny_data):
    return load_h3wb(tiny_data, subjects=None)


@pytest.fixture(scope="module")
def json_folder(tiny_data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("h3wb-json")
    write_h3wb_json(tiny_data, folder)
    return folder


@pytest.fixture(scope="module")
def json_sequences(json_folder):
    return load_h3wb(json_folder, subjects=None)


def _assert_same(found, expected, exact_3d=True):
    """Same takes, frames and ids; poses equal up to the float tolerance of a JSON round trip.

    Tolerance: the writer stores float32 metres as float64 millimetres (exact), so the 133 keypoints come back
    bit-identical in 3D; the pelvis (the mean of the hips, recomputed from the float32 values) may differ by one
    float32 step (atol 1e-6 m). 2D goes through pixels and back: within 1e-6 normalized units (1e-3 px).
    """
    assert [(s.subject, s.action, s.camera, s.segment) for s in found] == \
        [(s.subject, s.action, s.camera, s.segment) for s in expected]
    for a, b in zip(found, expected):
        np.testing.assert_array_equal(a.frame_ids, b.frame_ids)
        np.testing.assert_array_equal(a.sample_ids, b.sample_ids)
        assert a.resolution == b.resolution and a.pose_2d.dtype == a.pose_3d.dtype == np.float32
        if exact_3d:
            np.testing.assert_array_equal(a.pose_3d[:, 1:], b.pose_3d[:, 1:])
        np.testing.assert_allclose(a.pose_3d, b.pose_3d, rtol=0, atol=1e-6)
        np.testing.assert_allclose(a.pose_2d, b.pose_2d, rtol=0, atol=1e-6)


def test_written_json_loads_like_the_npz(json_folder, json_sequences, npz_sequences):
    assert sorted(p.name for p in json_folder.iterdir()) == sorted([TEST_2D, TEST_3D, TRAIN_IMAGES, TRAIN_JSON])
    train = json.loads((json_folder / TRAIN_JSON).read_text())
    assert all("image_path" not in sample for sample in train.values())  # joined from RGBto3D_train.json
    _assert_same(json_sequences, npz_sequences)
    assert all(s.calibration == {} for s in json_sequences)
    assert [s.subject for s in load_h3wb(json_folder, subjects=["S8"])] == ["S8"] * 8


def test_release_frame_drops_the_camera_translation(npz_sequences, tmp_path):
    test = [s for s in npz_sequences if s.subject == "S8"]
    written = write_h3wb_json(test, tmp_path, release_frame=True)
    assert [p.name for p in written] == [TEST_2D, TEST_3D]
    found = load_h3wb(tmp_path, subjects=["S8"])
    for a, b in zip(found, test):
        translation = b.calibration["T"].reshape(3).astype(np.float64)
        np.testing.assert_allclose(a.pose_3d, b.pose_3d - translation, rtol=0, atol=1e-5)
        np.testing.assert_allclose(a.pose_3d - a.pose_3d[:, :1], b.pose_3d - b.pose_3d[:, :1], rtol=0, atol=1e-5)


def test_train_parts_give_the_same_sequences(json_folder, json_sequences, tmp_path):
    samples = json.loads((json_folder / TRAIN_JSON).read_text())
    ids = sorted(samples, key=int)
    assert [int(i) for i in ids] == list(range(len(ids)))  # parts number their samples from 0 each
    for index, chunk in enumerate(np.array_split(np.array(ids), len(TRAIN_PARTS))):
        part = {str(local): samples[key] for local, key in enumerate(chunk)}
        (tmp_path / TRAIN_PARTS[index]).write_text(json.dumps(part))
    shutil.copy(json_folder / TRAIN_IMAGES, tmp_path / TRAIN_IMAGES)
    found = load_h3wb(tmp_path, subjects=["S1", "S5", "S6", "S7"])
    _assert_same(found, [s for s in json_sequences if s.subject != "S8"])


def _pose(rng, frames):
    pixels = rng.uniform(100, 900, (frames, 133, 2))
    millimetres = rng.normal(0, 300, (frames, 133, 3)) + np.array([0, 0, 4500.0])
    return pixels, millimetres


def _points(array, axes):
    return {str(j): dict(zip(axes, map(float, point))) for j, point in enumerate(array)}


def _release(frames=(30, 10, 20), camera=CAM, prefix="", with_paths=True, seed=0):
    """Samples in the JSON layout: ids 0.., one take of S1 in the given (unsorted) frame order."""
    pixels, millimetres = _pose(np.random.default_rng(seed), len(frames))
    samples = {}
    for index, frame in enumerate(frames):
        samples[str(index)] = {"keypoints_2d": _points(pixels[index], "xy"),
                               "keypoints_3d": _points(millimetres[index], "xyz")}
        if with_paths:
            samples[str(index)]["image_path"] = f"{prefix}S1/Images/Eating 2.{camera}/frame_{frame:04d}.jpg"
    return samples, pixels, millimetres


def _dump(path, content):
    path.write_text(json.dumps(content))
    return path


def test_sequences_are_rebuilt_from_image_paths(tmp_path):
    samples, pixels, millimetres = _release(prefix="original\\")
    _dump(tmp_path / TEST_3D, {k: {**v, "image_path": v["image_path"].replace("S1", "S8")} for k, v in samples.items()})
    (sequence,) = load_h3wb(tmp_path, subjects=["S8"])
    assert (sequence.subject, sequence.action, sequence.camera) == ("S8", "Eating 2", CAM)
    assert sequence.frame_ids.tolist() == [10, 20, 30] and sequence.sample_ids.tolist() == [1, 2, 0]
    width, height = cameras.RESOLUTIONS[CAM]
    order = [1, 2, 0]
    np.testing.assert_allclose(sequence.pose_3d[:, 1:], millimetres[order] / 1000, rtol=1e-6)
    np.testing.assert_allclose(sequence.pose_2d[:, 1:], cameras.normalize_screen_coordinates(pixels[order], width,
                                                                                             height), atol=1e-6)
    pieces = load_h3wb(tmp_path, subjects=["S8"], max_gap=5)
    assert [p.frame_ids.tolist() for p in pieces] == [[10], [20], [30]]


def _case(tmp_path, case):
    """Write the files of one bad-input case; return the source to load."""
    samples, _, _ = _release(with_paths=case not in ("no_paths", "test_no_paths", "join_missing"))
    name = TRAIN_JSON
    if case == "missing_joint":
        del samples["1"]["keypoints_2d"]["57"]
    elif case == "not_a_number":
        samples["0"]["keypoints_3d"]["3"]["z"] = None
    elif case == "nan":
        samples["2"]["keypoints_2d"]["4"]["y"] = float("nan")
    elif case == "bad_path":
        samples["1"]["image_path"] = "images/img_0001.jpg"
    elif case == "unknown_camera":
        samples = _release(camera="12345678")[0]
    elif case == "same_frame":
        samples["1"]["image_path"] = samples["0"]["image_path"]
    elif case == "bad_id":
        samples["abc"] = samples.pop("2")
    elif case == "no_field":
        del samples["2"]["keypoints_3d"]
    elif case == "test_no_paths":
        name = TEST_3D
    elif case == "join_missing":
        _dump(tmp_path / TRAIN_IMAGES, {"0": {"image_path": "S1/Images/Eating 2.55011271/frame_0001.jpg"}})
    elif case == "whole_and_part":
        return [_dump(tmp_path / TRAIN_JSON, samples), _dump(tmp_path / TRAIN_PARTS[0], samples)]
    elif case == "unknown_name":
        return [_dump(tmp_path / "my_h3wb.json", samples)]
    elif case == "invalid_json":
        (tmp_path / TRAIN_JSON).write_text("{not json")
        return tmp_path
    _dump(tmp_path / name, samples)
    return tmp_path


@pytest.mark.parametrize("case, match", [
    ("no_paths", (r"2Dto3D_train.json: image_path: expected image paths to rebuild the sequences .* only "
                  r"single-frame evaluation is possible: add RGBto3D_train.json \(same sample ids\) beside it, "
                  r"found no image_path")),
    ("test_no_paths", (r"2Dto3D_test_3d.json: image_path: .*only single-frame evaluation is possible: the JSON "
                       r"test files have none: use the npz test file task1_test_3d.npz")),
    ("join_missing", r"2Dto3D_train.json: sample 1/image_path: expected an image path here or in RGBto3D_train.json"),
    ("missing_joint", r"2Dto3D_train.json: sample 1/keypoints_2d: expected joint ids '0'..'132', found no joint '57'"),
    ("not_a_number", r"sample 0/keypoints_3d/3: expected a dict with numbers 'x', 'y', 'z', found a dict"),
    ("nan", r"sample 2/keypoints_2d/4/y: expected a finite number, found nan"),
    ("no_field", r"sample 2: expected key 'keypoints_3d', found keys \['image_path', 'keypoints_2d'\]"),
    ("bad_path", (r"sample 1/image_path: expected a Human3.6M frame path like 'S5/Images/Directions 2.60457274/"
                  r"frame_0125.jpg', found 'images/img_0001.jpg'")),
    ("unknown_camera", r"sample \d/image_path: expected a calibrated camera id .*found camera '12345678'"),
    ("same_frame", (r"samples 0 and 1: expected one sample per frame and camera, found both at "
                    r"S1/Eating 2.55011271 frame 30")),
    ("bad_id", r"sample 'abc': expected integer sample ids as keys"),
    ("whole_and_part", (r"2Dto3D_train.json and .*2Dto3D_train_part1.json: file name: expected either "
                        r"2Dto3D_train.json or its parts")),
    ("unknown_name", r"my_h3wb.json: file name: expected one of the H3WB JSON files"),
    ("invalid_json", r"2Dto3D_train.json: file: expected a JSON document, found invalid JSON"),
])
def test_bad_json_gives_one_clear_error(tmp_path, case, match):
    source = _case(tmp_path, case)
    with pytest.raises(DataError, match=match):
        load_h3wb(source, subjects=["S8" if case == "test_no_paths" else "S1"])


def test_a_file_without_3d_alone_is_ignored_with_a_warning(tmp_path):
    samples, _, _ = _release()
    source = _dump(tmp_path / TRAIN_IMAGES, samples)
    with pytest.warns(UserWarning, match=r"RGBto3D_train.json: ignored: its samples have no 3D; add "
                                         r"2Dto3D_train.json or 2Dto3D_train_part1.json beside it"), \
            pytest.raises(DataError, match=r"subject S1: expected the subject in the data, found subjects \[\]"):
        load_h3wb([source], subjects=["S1"])


def test_export_and_score_match_bench_metrics(json_folder, json_sequences, tmp_path):
    test = [s for s in json_sequences if s.subject == "S8"]
    rng = np.random.default_rng(3)
    predictions = [(s.pose_3d + rng.normal(0, 0.03, s.pose_3d.shape)).astype(np.float32) for s in test]
    path = export_h3wb_predictions(zip(test, predictions), tmp_path / "pred.json")
    gt_file = json_folder / TEST_3D
    written = json.loads(path.read_text())
    assert sorted(map(int, written)) == sorted(map(int, json.loads(gt_file.read_text())))  # one per test sample
    assert set(written[str(test[0].sample_ids[0])]) == {"keypoints_3d"}

    score = h3wb_leaderboard_score(path, gt_file)
    pred = torch.from_numpy(np.concatenate(predictions).astype(np.float64))
    gt = torch.from_numpy(np.concatenate([s.pose_3d for s in test]).astype(np.float64))
    expected = metrics.summarize(metrics.whole_body_errors(pred, gt, protocol="h3wb"))
    assert score["samples"] == len(pred)
    for key in metrics.METRIC_KEYS:
        assert score[key] == pytest.approx(expected[key], rel=1e-9), key
    assert score["WB"] > 10  # 3 cm of noise per coordinate: tens of mm, so the comparison is not vacuous

    by_id = {int(i): p[1:] for s, poses in zip(test, predictions) for i, p in zip(s.sample_ids, poses)}
    again = export_h3wb_predictions(by_id, tmp_path / "pred_by_id.json")  # (133, 3) poses keyed by sample id
    assert json.loads(again.read_text()) == written
    assert h3wb_leaderboard_score(gt_file, gt_file)["WB"] == 0.0


def test_score_needs_every_ground_truth_sample(json_folder, json_sequences, tmp_path):
    (first, *_) = [s for s in json_sequences if s.subject == "S8"]
    path = export_h3wb_predictions([(first, first.pose_3d)], tmp_path / "pred.json")
    with pytest.raises(DataError, match=r"pred.json: sample \d+: expected a prediction for each of the \d+ samples "
                                        r"of 2Dto3D_test_3d.json, found none"):
        h3wb_leaderboard_score(path, json_folder / TEST_3D)
    with pytest.raises(ValueError, match="expected one per sample, found it twice"):
        export_h3wb_predictions([(first, first.pose_3d), (first, first.pose_3d)], tmp_path / "twice.json")
    with pytest.raises(ValueError, match=r"expected shape \(134, 3\) or \(133, 3\)"):
        export_h3wb_predictions({1: np.zeros((17, 3))}, tmp_path / "bad.json")
