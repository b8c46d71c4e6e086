"""OpenPose ``--write_json`` files mapped onto the 133 COCO-WholeBody keypoints."""
import json

import numpy as np
import pytest
from PIL import Image

from bench.errors import DataError
from bench.lift.readers import read_people
from bench.skeleton import KEYPOINT_NAMES

BODY_25 = ("Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "MidHip", "RHip",
           "RKnee", "RAnkle", "LHip", "LKnee", "LAnkle", "REye", "LEye", "REar", "LEar", "LBigToe", "LSmallToe",
           "LHeel", "RBigToe", "RSmallToe", "RHeel")  # OpenPose doc/02_output.md


def flat(count: int, base: float, confidence: float = 0.8) -> list:
    """``count`` keypoints whose x is ``base + index`` (so every value says where it came from)."""
    return [v for i in range(count) for v in (base + i, 2 * (base + i) / 3, confidence)]


def openpose_person(shift: float = 0.0, **fields) -> dict:
    entry = {"person_id": [-1], "pose_keypoints_2d": flat(25, 100 + shift), "face_keypoints_2d": flat(70, 200 + shift),
             "hand_left_keypoints_2d": flat(21, 300 + shift), "hand_right_keypoints_2d": flat(21, 400 + shift),
             "pose_keypoints_3d": [], "face_keypoints_3d": [], "hand_left_keypoints_3d": [],
             "hand_right_keypoints_3d": []}
    return {**entry, **fields}


def write(path, *people):
    path.write_text(json.dumps({"version": 1.3, "people": list(people)}))
    return path


def test_each_openpose_keypoint_lands_on_its_coco_wholebody_name(tmp_path):
    (track,) = read_people(write(tmp_path / "photo_keypoints.json", openpose_person()), image_size=(640, 480)).tracks
    x = dict(zip(KEYPOINT_NAMES, track.keypoints[0, :, 0]))
    coco_name = {"Nose": "nose", "REye": "right_eye", "LEye": "left_eye", "REar": "right_ear", "LEar": "left_ear"}
    for index, name in enumerate(BODY_25):
        if name in ("Neck", "MidHip"):
            assert 100 + index not in x.values()
            continue
        side = {"R": "right", "L": "left"}[name[0]] if name not in coco_name else None
        target = coco_name.get(name) or f"{side}_" + {
            "Shoulder": "shoulder", "Elbow": "elbow", "Wrist": "wrist", "Hip": "hip", "Knee": "knee",
            "Ankle": "ankle", "BigToe": "big_toe", "SmallToe": "small_toe", "Heel": "heel"}[name[1:]]
        assert x[target] == 100 + index, (name, target)
    for i in range(68):
        assert x[f"face-{i}"] == 200 + i
    assert 268 not in x.values() and 269 not in x.values()  # the pupils are dropped
    for side, base in (("left", 300), ("right", 400)):
        names = [n for n in KEYPOINT_NAMES if n.startswith(f"{side}_") and ("hand" in n or "finger" in n
                                                                            or "thumb" in n)]
        assert [x[n] for n in names] == [base + i for i in range(21)]
    np.testing.assert_allclose(track.keypoints[0, :, 1], 2 * track.keypoints[0, :, 0] / 3)
    assert np.all(track.scores == 0.8)


def test_confidence_zero_and_parts_not_computed_are_missing(tmp_path):
    body = flat(25, 100)
    body[3 * 19 + 2] = 0.0  # LBigToe not found
    person = openpose_person(pose_keypoints_2d=body, face_keypoints_2d=[], hand_right_keypoints_2d=[])
    (track,) = read_people(write(tmp_path / "a_keypoints.json", person), image_size=(640, 480)).tracks
    missing = {name for name, score in zip(KEYPOINT_NAMES, track.scores[0]) if score == 0}
    assert missing == {"left_big_toe"} | {f"face-{i}" for i in range(68)} | {
        n for n in KEYPOINT_NAMES if n.startswith("right_") and ("hand" in n or "finger" in n or "thumb" in n)}
    assert np.isnan(track.keypoints[0, KEYPOINT_NAMES.index("left_big_toe")]).all()


def test_a_folder_of_video_frames_is_a_video_with_people_linked_and_ids_from_the_names(tmp_path):
    for frame in range(6):
        people = [openpose_person(2.0 * frame), openpose_person(500 - 2.0 * frame)]
        write(tmp_path / f"dance_{frame:012d}_keypoints.json", *people[::(-1) ** frame])
    read = read_people(tmp_path, image_size=(1280, 720))
    assert read.mode == "video" and "OpenPose keypoints" in read.summary
    first, second = read.tracks
    np.testing.assert_array_equal(first.frame_ids, np.arange(6))
    np.testing.assert_allclose(first.keypoints[:, 0, 0], 100 + 2.0 * np.arange(6))
    np.testing.assert_allclose(second.keypoints[:, 0, 0], 600 - 2.0 * np.arange(6))


def test_a_folder_of_photos_is_lifted_image_by_image_sized_by_the_images_beside(tmp_path):
    for name, size in (("beach", (800, 600)), ("IMG_2044", (600, 800))):
        Image.new("RGB", size).save(tmp_path / f"{name}.png")
        write(tmp_path / f"{name}_keypoints.json", openpose_person(), openpose_person(50))
    read = read_people(tmp_path)
    assert read.mode == "images"
    assert [(t.image, t.person, t.image_size) for t in read.tracks] == [
        ("IMG_2044", "0", (600, 800)), ("IMG_2044", "1", (600, 800)), ("beach", "0", (800, 600)),
        ("beach", "1", (800, 600))]


def test_a_tracked_person_id_is_kept(tmp_path):
    read = read_people(write(tmp_path / "a_keypoints.json", openpose_person(person_id=[7])), image_size=(640, 480))
    assert [t.person for t in read.tracks] == ["7"]


@pytest.mark.parametrize("person, message", [
    (openpose_person(pose_keypoints_2d=flat(18, 100)), "people[0]/pose_keypoints_2d: expected 25 keypoints as 75 "
     "numbers (x, y, c), found 54 numbers (18 keypoints: run OpenPose with --model_pose BODY_25"),
    (openpose_person(face_keypoints_2d={"x": 1}), "people[0]/face_keypoints_2d: expected a list of numbers, found a "
     "dict"),
    (openpose_person(hand_left_keypoints_2d=["1"] * 63), "people[0]/hand_left_keypoints_2d: expected numbers, found "
     "a string '1' at index 0"),
])
def test_bad_openpose_files_name_the_file_person_and_field(tmp_path, person, message):
    path = write(tmp_path / "f_000000000003_keypoints.json", person)
    with pytest.raises(DataError) as error:
        read_people(path, image_size=(640, 480))
    assert str(error.value).startswith(str(path)) and message in str(error.value)


def test_an_image_without_a_size_names_the_image(tmp_path):
    with pytest.raises(DataError, match="image photo: expected the image size: .* or pass --image-size W H, found "
                                        "no size"):
        read_people(write(tmp_path / "photo_keypoints.json", openpose_person()))
