"""COCO-WholeBody annotations: a file of unrelated photos (sizes that differ, several people each) is lifted image
by image; bad values name the file, the annotation and the field."""
import json

import numpy as np
import pytest

from bench.errors import DataError
from bench.lift.formats.coco import FIELDS
from bench.lift.readers import read_people
from bench.skeleton import C133_GROUPS, NUM_KEYPOINTS

SIZES = {785: (640, 425), 872: (500, 333), 885: (640, 392), 1000: (480, 640)}
PEOPLE = {785: 2, 872: 3, 885: 1, 1000: 2}


def annotation(points: np.ndarray, visibility: np.ndarray, **extra) -> dict:
    """A COCO-WholeBody annotation: (133, 2) pixels and (133,) v split into the five fields."""
    flat = np.concatenate([points, visibility[:, None]], axis=1)
    fields = {name: flat[[i for g in groups for i in C133_GROUPS[g]]].reshape(-1).tolist()
              for name, groups in FIELDS.items()}
    return {"category_id": 1, "iscrowd": 0, "face_valid": True, "lefthand_valid": True, "righthand_valid": True,
            "foot_valid": True, **fields, **extra}


def person(seed: int, size: tuple[int, int]) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, size=(NUM_KEYPOINTS, 2)) * np.array(size) * 0.9


@pytest.fixture
def photos(tmp_path):
    """Four unrelated photos of different sizes with 2, 3, 1 and 2 people; some keypoints not labelled (v = 0)."""
    images = [{"id": i, "file_name": f"{i:012d}.jpg", "width": w, "height": h} for i, (w, h) in SIZES.items()]
    annotations, truth = [], {}
    for image_id, count in PEOPLE.items():
        for k in range(count):
            points = person(image_id * 10 + k, SIZES[image_id])
            v = np.full(NUM_KEYPOINTS, 2.0)
            v[np.random.default_rng(k).choice(NUM_KEYPOINTS, 20, replace=False)] = 0.0  # invisible
            annotations.append(annotation(points, v, id=len(annotations) + 1, image_id=image_id))
            truth[(image_id, str(k))] = points, v
    path = tmp_path / "person_keypoints_val2017.json"
    path.write_text(json.dumps({"images": images[::-1], "annotations": annotations}))  # images out of order
    return path, truth


def test_a_file_of_photos_of_different_sizes_lifts_every_person_of_every_image(photos):
    path, truth = photos
    people = read_people(path)
    assert people.mode == "images" and "4 images" in people.summary and "different sizes" in people.summary
    assert len(people.tracks) == sum(PEOPLE.values()) == 8
    assert [(t.frame_ids[0], t.person) for t in people.tracks] == [(i, str(k)) for i in sorted(PEOPLE)
                                                                    for k in range(PEOPLE[i])]
    for track in people.tracks:
        image_id = int(track.frame_ids[0])
        points, v = truth[(image_id, track.person)]
        assert track.image_size == SIZES[image_id] and track.image == f"{image_id:012d}"
        assert track.keypoints.shape == (1, NUM_KEYPOINTS, 2)
        np.testing.assert_allclose(track.keypoints[0], points)
        np.testing.assert_array_equal(track.scores[0], np.where(v > 0, 1.0, 0.0))


def test_forcing_a_video_on_images_of_different_sizes_is_an_error(photos):
    with pytest.raises(DataError, match="image sizes: expected one image size over a video \\(--images lifts "
                                        "images of different sizes one by one\\), found sizes \\[\\(480, 640\\)"):
        read_people(photos[0], mode="video")


def test_same_size_images_with_ids_far_apart_are_images_and_consecutive_ids_a_video(tmp_path):
    v = np.full(NUM_KEYPOINTS, 2.0)
    for ids, mode in (((139, 632, 785), "images"), ((3, 4, 5), "video")):
        content = {"images": [{"id": i, "width": 640, "height": 480} for i in ids],
                   "annotations": [annotation(person(0, (640, 480)) + i, v, image_id=i) for i in ids]}
        (tmp_path / "a.json").write_text(json.dumps(content))
        people = read_people(tmp_path / "a.json")
        assert people.mode == mode, people.summary
        assert len(people.tracks) == (3 if mode == "images" else 1)


@pytest.mark.parametrize("change, message", [
    (lambda c: c["images"][1].update(width="640"),
     "images[1]/width: expected a positive number of pixels, found a string '640'"),
    (lambda c: c["annotations"][0]["face_kpts"].__setitem__(7, "12.5"),
     "annotations[0] (id 1)/face_kpts: expected numbers, found a string '12.5' at index 7"),
    (lambda c: c["annotations"][0]["keypoints"].__setitem__(0, {"x": 1}),
     "annotations[0] (id 1)/keypoints: expected numbers, found a dict with keys ['x'] at index 0"),
    (lambda c: c["annotations"][0].update(image_id={"id": 785}),
     "annotations[0] (id 1)/image_id: expected an image id (an integer or a string), found a dict"),
    (lambda c: c["annotations"][0].update(track_id=[1]),
     "annotations[0] (id 1)/track_id: expected a track id (an integer or a string), found a list of 1 items"),
])
def test_strings_and_dicts_in_a_file_name_the_file_and_the_field(tmp_path, change, message):
    v = np.full(NUM_KEYPOINTS, 2.0)
    content = {"images": [{"id": i, "width": 640, "height": 480} for i in (785, 872)],
               "annotations": [annotation(person(0, (640, 480)), v, id=1, image_id=785)]}
    change(content)
    (tmp_path / "bad.json").write_text(json.dumps(content))
    with pytest.raises(DataError) as error:
        read_people(tmp_path / "bad.json")
    assert str(error.value).startswith(str(tmp_path / "bad.json")) and message in str(error.value)
