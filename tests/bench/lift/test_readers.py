"""Reading 2D whole-body keypoint files (COCO-WholeBody annotations, MMPose-style predictions, npy/npz) and
filling missing keypoints."""
import json

import numpy as np
import pytest

from bench.errors import DataError
from bench.lift.filling import fill_missing, fill_track, missing_mask, outside_count
from bench.lift.readers import read_keypoints, read_people
from bench.skeleton import C133_GROUPS, NUM_KEYPOINTS, PART_ATTACH

FIELDS = {"keypoints": ("body",), "foot_kpts": ("left_foot", "right_foot"), "face_kpts": ("face",),
          "lefthand_kpts": ("left_hand",), "righthand_kpts": ("right_hand",)}
LEFT_HAND = list(C133_GROUPS["left_hand"])
FACE = list(C133_GROUPS["face"])


def pose(seed: int, frames: int = 1) -> np.ndarray:
    """(frames, 133, 2) distinct pixel coordinates."""
    return np.random.default_rng(seed).uniform(10, 990, size=(frames, NUM_KEYPOINTS, 2)).round(2)


def coco_annotation(points: np.ndarray, visibility: np.ndarray, **extra) -> dict:
    """A COCO-WholeBody annotation of one person: (133, 2) pixels and (133,) v split into the five fields."""
    flat = np.concatenate([points, visibility[:, None]], axis=1)
    annotation = {"category_id": 1, "iscrowd": 0, "bbox": [0, 0, 100, 200], "area": 20000.0,
                  "num_keypoints": int((visibility[:17] > 0).sum()), "face_box": [0, 0, 10, 10],
                  "lefthand_box": [0, 0, 10, 10], "righthand_box": [0, 0, 10, 10], "face_valid": True,
                  "lefthand_valid": True, "righthand_valid": True, "foot_valid": True}
    for field, groups in FIELDS.items():
        annotation[field] = flat[[i for g in groups for i in C133_GROUPS[g]]].reshape(-1).tolist()
    return {**annotation, **extra}


@pytest.fixture
def coco_file(tmp_path):
    """Three video frames (listed out of order), two tracked people; person 8 enters at the second frame, has
    unlabelled (v = 0) and occluded (v = 1) keypoints and an invalid left hand in the last frame."""
    a, b = pose(0, 3), pose(1, 3)
    v = np.full(NUM_KEYPOINTS, 2.0)
    v_b = v.copy()
    v_b[[3, 4]] = 0.0   # ears not labelled
    v_b[FACE[:5]] = 1.0  # labelled but occluded
    images = [{"id": 12, "file_name": "000012.jpg", "width": 640, "height": 480},
              {"id": 10, "file_name": "000010.jpg", "width": 640, "height": 480},
              {"id": 11, "file_name": "000011.jpg", "width": 640, "height": 480}]
    annotations = [coco_annotation(a[0], v, id=1, image_id=10, track_id=3),
                   coco_annotation(b[1], v_b, id=2, image_id=11, track_id=8),
                   coco_annotation(a[1], v, id=3, image_id=11, track_id=3),
                   coco_annotation(a[2], v, id=4, image_id=12, track_id=3),
                   coco_annotation(b[2], v_b, id=5, image_id=12, track_id=8, lefthand_valid=False),
                   {"id": 6, "image_id": 12, "iscrowd": 1, "category_id": 1}]
    path = tmp_path / "person_keypoints_clip.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations,
                                "categories": [{"id": 1, "name": "person"}]}))
    return path, a, b


def test_coco_wholebody_file_gives_one_track_per_person_in_image_id_order(coco_file):
    path, a, b = coco_file
    first, second = read_keypoints(path)
    assert (first.person, second.person) == ("3", "8")
    np.testing.assert_array_equal(first.frame_ids, [10, 11, 12])
    np.testing.assert_array_equal(second.frame_ids, [11, 12])
    assert first.keypoints.shape == (3, NUM_KEYPOINTS, 2) and second.keypoints.shape == (2, NUM_KEYPOINTS, 2)
    np.testing.assert_allclose(first.keypoints, a)
    np.testing.assert_allclose(second.keypoints, b[1:])
    assert first.image_size == second.image_size == (640, 480)
    assert np.all(first.scores == 1.0)
    assert np.all(second.scores[:, [3, 4]] == 0.0) and np.all(second.scores[:, FACE[:5]] == 1.0)
    assert np.all(second.scores[1, LEFT_HAND] == 0.0) and np.all(second.scores[0, LEFT_HAND] == 1.0)


def test_coco_people_without_track_ids_are_linked_by_position_not_by_list_order(tmp_path):
    a, b = pose(0), pose(1)
    v = np.full(NUM_KEYPOINTS, 2.0)
    images = [{"id": i, "width": 1000, "height": 1000} for i in (0, 1, 2)]
    annotations = [coco_annotation(a[0] + i, v, image_id=i) for i in (0, 1, 2)]
    annotations.insert(1, coco_annotation(b[0] - 1, v, image_id=1))  # b comes first in image 1
    annotations += [coco_annotation(b[0] - i, v, image_id=i) for i in (0, 2)]
    path = tmp_path / "ann.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations}))
    people = read_people(path)
    assert people.mode == "video" and "frame ids 1 apart" in people.summary
    first, second = people.tracks
    np.testing.assert_allclose(first.keypoints, a[0] + np.arange(3)[:, None, None])
    np.testing.assert_allclose(second.keypoints, b[0] - np.arange(3)[:, None, None])


def test_coco_without_image_size_needs_the_image_size_argument(tmp_path):
    v = np.full(NUM_KEYPOINTS, 2.0)
    path = tmp_path / "ann.json"
    path.write_text(json.dumps({"images": [{"id": 5, "file_name": "a.jpg"}],
                                "annotations": [coco_annotation(pose(0)[0], v, image_id=5)]}))
    with pytest.raises(DataError, match=r"ann\.json: image 5 \(a\.jpg\): expected the image size: in the file "
                                        r"\(COCO 'width' and 'height', an npz 'image_size'\), from an image file "
                                        r"beside it, or pass --image-size W H, found no size"):
        read_keypoints(path)
    assert read_keypoints(path, image_size=(1920, 1080))[0].image_size == (1920, 1080)


def test_mmpose_prediction_list_with_scores_and_track_ids(tmp_path):
    a, b = pose(0, 3), pose(1, 3)
    scores = np.random.default_rng(2).uniform(0, 1, size=(3, NUM_KEYPOINTS)).round(3)
    frames = [[{"keypoints": a[t].tolist(), "keypoint_scores": scores[t].tolist(), "bbox": [[0, 0, 5, 5]],
                "bbox_score": 0.9, "track_id": 0},
               {"keypoints": b[t].tolist(), "keypoint_scores": [1.0] * NUM_KEYPOINTS, "track_id": 1}]
              for t in range(3)]
    path = tmp_path / "results_clip.json"
    path.write_text(json.dumps(frames))
    first, second = read_keypoints(path, image_size=(1280, 720))
    np.testing.assert_allclose(first.keypoints, a)
    np.testing.assert_allclose(first.scores, scores)
    np.testing.assert_allclose(second.keypoints, b)
    np.testing.assert_array_equal(first.frame_ids, [0, 1, 2])
    assert first.image_size == (1280, 720)


def test_mmpose_inferencer_layout_and_a_single_frame_list(tmp_path):
    a = pose(0, 2)
    info = {"meta_info": {"dataset_name": "coco_wholebody"},
            "instance_info": [{"frame_id": 7, "instances": [{"keypoints": a[1].tolist(),
                                                              "keypoint_scores": [0.9] * NUM_KEYPOINTS}]},
                              {"frame_id": 6, "instances": [{"keypoints": a[0].tolist(),
                                                              "keypoint_scores": [0.8] * NUM_KEYPOINTS}]}]}
    (tmp_path / "video.json").write_text(json.dumps(info))
    (track,) = read_keypoints(tmp_path / "video.json", image_size=(64, 48))
    np.testing.assert_array_equal(track.frame_ids, [6, 7])
    np.testing.assert_allclose(track.keypoints, a)
    np.testing.assert_allclose(track.scores[:, 0], [0.8, 0.9])
    (tmp_path / "image.json").write_text(json.dumps([{"keypoints": a[0].tolist(),
                                                      "keypoint_scores": [1.0] * NUM_KEYPOINTS}]))
    (single,) = read_keypoints(tmp_path / "image.json", image_size=(64, 48))
    assert single.keypoints.shape == (1, NUM_KEYPOINTS, 2)
    np.testing.assert_allclose(single.keypoints[0], a[0])


def test_npy_with_a_score_channel_and_npz_with_its_own_size_and_frame_ids(tmp_path):
    a = pose(0, 4)
    scores = np.full((4, NUM_KEYPOINTS), 0.9)
    scores[2, 5] = 0.1
    np.save(tmp_path / "kp.npy", np.concatenate([a, scores[..., None]], axis=-1))
    (track,) = read_keypoints(tmp_path / "kp.npy", image_size=(1000, 1000))
    np.testing.assert_allclose(track.keypoints, a)
    np.testing.assert_allclose(track.scores, scores)
    np.testing.assert_array_equal(track.frame_ids, np.arange(4))
    np.savez(tmp_path / "kp.npz", keypoints=a, image_size=np.array([320, 240]), frame_ids=np.array([3, 5, 9, 11]))
    (track,) = read_keypoints(tmp_path / "kp.npz", image_size=(1000, 1000))
    assert track.image_size == (320, 240)  # the file's size wins
    np.testing.assert_array_equal(track.frame_ids, [3, 5, 9, 11])
    assert np.all(track.scores == 1.0)
    np.save(tmp_path / "one.npy", a[0])
    assert read_keypoints(tmp_path / "one.npy", image_size=(10, 10))[0].keypoints.shape == (1, NUM_KEYPOINTS, 2)


def test_nan_coordinates_are_missing_keypoints(tmp_path):
    a = pose(0, 3)
    a[1, 9] = np.nan
    np.save(tmp_path / "kp.npy", a)
    (track,) = read_keypoints(tmp_path / "kp.npy", image_size=(1000, 1000))
    missing = missing_mask(track.keypoints, track.scores)
    assert missing.sum() == 1 and missing[1, 9] and track.scores[1, 9] == 0.0


def test_interpolation_fills_gaps_linearly_and_ends_with_the_nearest_frame():
    keypoints = np.zeros((5, NUM_KEYPOINTS, 2))
    keypoints[:, :, 0] = np.arange(5)[:, None] * 10.0  # x = 10 t for every keypoint
    missing = np.zeros((5, NUM_KEYPOINTS), dtype=bool)
    missing[[1, 2], 7] = True   # inside: linear
    missing[[0, 4], 8] = True   # ends: nearest seen frame
    keypoints[missing] = np.nan
    filled = fill_missing(keypoints, missing)
    np.testing.assert_allclose(filled[:, 7, 0], [0, 10, 20, 30, 40])
    np.testing.assert_allclose(filled[:, 8, 0], [10, 10, 20, 30, 30])
    assert np.isfinite(filled).all()


def test_a_hand_never_seen_collapses_onto_its_wrist_and_is_flagged(tmp_path):
    a = pose(0, 3)
    scores = np.ones((3, NUM_KEYPOINTS))
    scores[:, LEFT_HAND] = 0.05
    np.savez(tmp_path / "kp.npz", keypoints=a, scores=scores, image_size=np.array([1000, 1000]))
    (track,) = read_keypoints(tmp_path / "kp.npz")
    filled, flags = fill_track(track)
    wrist = PART_ATTACH["left_hand"] - 1  # j134 -> c133
    np.testing.assert_allclose(filled[:, LEFT_HAND], np.repeat(a[:, wrist:wrist + 1], len(LEFT_HAND), axis=1))
    assert flags.sum() == 3 * len(LEFT_HAND) and flags[:, LEFT_HAND].all()


def _write(path, content):
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, np.ndarray):
        np.save(path, content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


BODY_ONLY = {"images": [{"id": 1, "width": 10, "height": 10}],
             "annotations": [{"id": 4, "image_id": 1, "keypoints": [1.0, 2.0, 2] * 17}]}
BAD_FILES = [
    ("empty.json", b"", "empty.json: file: expected a keypoint file (.json, .npy or .npz), found an empty file"),
    ("bad.json", "{not json", "bad.json: file: expected a JSON document, found invalid JSON"),
    ("body.json", BODY_ONLY, "body.json: annotations[0] (id 4): expected COCO-WholeBody's 133 keypoints in fields "
                             "keypoints, foot_kpts, face_kpts, lefthand_kpts, righthand_kpts, found no 'foot_kpts'"),
    ("coco17.json", [[{"keypoints": [[1.0, 2.0]] * 17, "keypoint_scores": [1.0] * 17}]],
     "coco17.json: frame 0/instance 0/keypoints: expected shape (133, 2 or 3) in COCO-WholeBody order, found 17 "
     "keypoints"),
    ("coco17.npy", np.zeros((4, 17, 2)), "coco17.npy: array: expected shape (T, 133, 2 or 3) in COCO-WholeBody "
                                         "order, found 17 keypoints"),
    ("nan.npy", np.full((3, NUM_KEYPOINTS, 2), np.nan), "nan.npy: person 0: expected at least one keypoint with "
                                                         "finite coordinates and a score >= 0.3, found none"),
    ("empty_list.json", [], "empty_list.json: top level: expected a non-empty list of frames"),
    ("nobody.json", [[], []], "nobody.json: instances: expected at least one person, found none in 2 frames"),
    ("pose.txt", "1 2 3", "pose.txt: file name: expected one of the suffixes .json, .jsonl, .npy, .npz, found '.txt'"),
]


@pytest.mark.parametrize("name, content, message", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_files_give_an_error_naming_the_file_and_what_was_expected(name, content, message, tmp_path):
    path = _write(tmp_path / name, content)
    with pytest.raises(DataError) as error:
        for track in read_keypoints(path, image_size=(100, 100)):
            fill_track(track)
    assert str(error.value).startswith(str(tmp_path)) and message in str(error.value)


def test_the_same_person_twice_in_one_frame_is_an_error(tmp_path):
    v = np.full(NUM_KEYPOINTS, 2.0)
    content = {"images": [{"id": 1, "width": 10, "height": 10}],
               "annotations": [coco_annotation(pose(0)[0], v, image_id=1, track_id=2),
                               coco_annotation(pose(1)[0], v, image_id=1, track_id=2)]}
    with pytest.raises(DataError, match="annotations\\[1\\]: expected one instance per person and frame, found "
                                        "person 2 twice in that frame"):
        read_keypoints(_write(tmp_path / "twice.json", content))


def test_the_mode_comes_from_the_layout_and_can_be_forced(tmp_path):
    a = pose(0, 3)
    np.save(tmp_path / "clip.npy", a)
    clip = read_people(tmp_path / "clip.npy", image_size=(1000, 1000))
    assert clip.mode == "video" and "a video's layout" in clip.summary and [t.frames for t in clip.tracks] == [3]
    still = read_people(tmp_path / "clip.npy", image_size=(1000, 1000), mode="images")
    assert still.mode == "images" and "(--images)" in still.summary
    assert [(t.frames, t.image, t.frame_ids.tolist()) for t in still.tracks] == [
        (1, f"frame-{i}", [i]) for i in range(3)]
    (tmp_path / "one.json").write_text(json.dumps([{"keypoints": p.tolist()} for p in a]))  # one image, 3 people
    image = read_people(tmp_path / "one.json", image_size=(1000, 1000))
    assert image.mode == "images" and "one image" in image.summary and [t.person for t in image.tracks] == [
        "0", "1", "2"]


def test_track_ids_on_some_instances_only_is_an_error(tmp_path):
    a = pose(0, 2)
    frames = [[{"keypoints": a[0].tolist(), "track_id": 1}], [{"keypoints": a[1].tolist()}]]
    (tmp_path / "mixed.json").write_text(json.dumps(frames))
    with pytest.raises(DataError, match="mixed.json: frame 1/instance 0: expected a track id on every instance or "
                                        "on none"):
        read_keypoints(tmp_path / "mixed.json", image_size=(1000, 1000))


def test_detections_without_a_usable_keypoint_are_left_out_of_linking_and_counted(tmp_path):
    a = pose(0, 3)
    frames = [[{"keypoints": a[t].tolist(), "keypoint_scores": [0.9] * NUM_KEYPOINTS},
               {"keypoints": a[t].tolist(), "keypoint_scores": [0.1] * NUM_KEYPOINTS}] for t in range(3)]
    (tmp_path / "faint.json").write_text(json.dumps(frames))
    people = read_people(tmp_path / "faint.json", image_size=(1000, 1000))
    assert [t.frames for t in people.tracks] == [3] and people.skipped == 3
    assert "3 detections without a usable keypoint left out" in people.summary


def test_a_point_far_outside_the_image_is_missing_filled_and_counted(tmp_path):
    a = pose(0, 3)
    a[1, 9] = [1e30, 5.0]       # an overflow
    a[2, 4] = [-2500.0, 10.0]   # more than one image width to the left
    a[0, 3] = [-900.0, 10.0]    # outside, but within one image size: data
    np.save(tmp_path / "kp.npy", a)
    (track,) = read_keypoints(tmp_path / "kp.npy", image_size=(1000, 1000))
    filled, flags = fill_track(track)
    assert flags.sum() == 2 and flags[1, 9] and flags[2, 4] and outside_count(track) == 2
    np.testing.assert_allclose(filled[1, 9], (a[0, 9] + a[2, 9]) / 2)  # interpolated, not 1e30
    assert filled[0, 3, 0] == -900.0


@pytest.mark.parametrize("name, content, message", [
    ("scores.json", [[{"keypoints": [[1.0, 2.0]] * NUM_KEYPOINTS, "keypoint_scores": ["0.9"] * NUM_KEYPOINTS}]],
     "scores.json: frame 0/instance 0/keypoint_scores: expected numbers, found a string '0.9' at index 0"),
    ("dicts.json", [[{"keypoints": [{"x": 1.0, "y": 2.0}] * NUM_KEYPOINTS}]],
     "dicts.json: frame 0/instance 0/keypoints: expected numbers, found a dict with keys ['x', 'y'] at index 0"),
    ("frame_id.json", [{"frame_id": "7", "instances": []}],
     "frame_id.json: frame 0/frame_id: expected an integer frame id, found a string '7'"),
])
def test_strings_and_dicts_in_prediction_lists_name_the_file_frame_person_and_field(tmp_path, name, content, message):
    (tmp_path / name).write_text(json.dumps(content))
    with pytest.raises(DataError) as error:
        read_keypoints(tmp_path / name, image_size=(100, 100))
    assert message in str(error.value)


def test_string_arrays_and_sizes_in_an_npz_name_the_file_and_key(tmp_path):
    a = pose(0, 2)
    np.savez(tmp_path / "size.npz", keypoints=a, image_size=np.array(["640", "480"]))
    with pytest.raises(DataError, match="size.npz: image_size: expected an image size \\(width, height\\) of two "
                                        "positive numbers, found a string '640'"):
        read_keypoints(tmp_path / "size.npz")
    np.savez(tmp_path / "text.npz", keypoints=a.astype(str))
    with pytest.raises(DataError, match="text.npz: keypoints: expected numbers, found a string '.*' at index 0, 0, 0"):
        read_keypoints(tmp_path / "text.npz", image_size=(1000, 1000))
