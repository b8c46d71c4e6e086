"""OpenPifPaf's JSON: ``openpifpaf.predict --json-output`` per image, ``openpifpaf.video --json-output`` JSON lines."""
import json

import numpy as np
import pytest
from PIL import Image

from bench.errors import DataError
from bench.lift.readers import read_people
from bench.skeleton import NUM_KEYPOINTS


def entry(points: np.ndarray, confidence: np.ndarray, **extra) -> dict:
    """One OpenPifPaf annotation as ``Annotation.json_data`` writes it (x = y = c = 0 for a keypoint not found)."""
    data = np.concatenate([points, confidence[:, None]], axis=1)
    data[confidence == 0] = 0.0
    x, y = points[confidence > 0].min(axis=0)
    w, h = points[confidence > 0].max(axis=0) - (x, y)
    return {"keypoints": data.round(2).reshape(-1).tolist(), "bbox": [round(x, 2), round(y, 2), round(w, 2),
                                                                      round(h, 2)],
            "score": 0.8, "category_id": 1, **extra}


def pose(seed: int, offset=(0.0, 0.0)) -> np.ndarray:
    return np.random.default_rng(seed).uniform(50, 250, size=(NUM_KEYPOINTS, 2)).round(2) + offset


def test_a_predict_file_is_one_image_sized_by_the_image_beside_it(tmp_path):
    confidence = np.full(NUM_KEYPOINTS, 0.7)
    confidence[100:] = 0.0  # the right hand and part of the left not found
    people = [entry(pose(0), confidence), entry(pose(1), np.full(NUM_KEYPOINTS, 0.5))]
    Image.new("RGB", (320, 240)).save(tmp_path / "soccer.jpeg")
    (tmp_path / "soccer.jpeg.predictions.json").write_text(json.dumps(people))
    read = read_people(tmp_path / "soccer.jpeg.predictions.json")
    assert read.mode == "images" and "OpenPifPaf predictions" in read.summary
    first, second = read.tracks
    assert first.image_size == second.image_size == (320, 240) and first.image == "soccer"
    np.testing.assert_allclose(first.keypoints[0, :100], pose(0)[:100])
    assert np.isnan(first.keypoints[0, 100:]).all() and (first.scores[0, 100:] == 0).all()
    np.testing.assert_allclose(second.scores, 0.5)


def test_a_folder_of_predict_files_for_photos_of_different_sizes_is_lifted_image_by_image(tmp_path):
    for image_id, size in ((139, (640, 426)), (632, (640, 483)), (724, (375, 500))):
        Image.new("RGB", size).save(tmp_path / f"{image_id:012d}.jpg")
        people = [entry(pose(image_id + k), np.full(NUM_KEYPOINTS, 0.9)) for k in range(2)]
        (tmp_path / f"{image_id:012d}.jpg.predictions.json").write_text(json.dumps(people))
    read = read_people(tmp_path)
    assert read.mode == "images" and len(read.tracks) == 6
    assert [(t.image, t.person, t.image_size) for t in read.tracks[:2]] == [
        ("000000000139", "0", (640, 426)), ("000000000139", "1", (640, 426))]
    assert read.tracks[-1].image_size == (375, 500) and read.tracks[-1].frame_ids.tolist() == [724]


def test_video_json_lines_with_track_ids_give_a_clip_per_person(tmp_path):
    lines = []
    for frame in range(4):
        people = [entry(pose(0, (2.0 * frame, 0)), np.full(NUM_KEYPOINTS, 0.9), id_=3),
                  entry(pose(1, (0, 2.0 * frame)), np.full(NUM_KEYPOINTS, 0.9), id_=5)]
        lines.append(json.dumps({"frame": frame, "predictions": people[::(-1) ** frame]}, separators=(",", ":")))
    (tmp_path / "clip.mp4.openpifpaf.json").write_text("\n".join(lines) + "\n")
    read = read_people(tmp_path / "clip.mp4.openpifpaf.json", image_size=(640, 360))
    assert read.mode == "video" and "OpenPifPaf video predictions" in read.summary
    assert [t.person for t in read.tracks] == ["3", "5"]
    np.testing.assert_allclose(read.tracks[0].keypoints[:, 0, 0], pose(0)[0, 0] + 2.0 * np.arange(4))
    np.testing.assert_array_equal(read.tracks[1].frame_ids, np.arange(4))


def test_video_json_lines_without_ids_are_linked_and_a_single_line_is_a_video_too(tmp_path):
    lines = [json.dumps({"frame": f, "predictions": [entry(pose(k, (3.0 * f, 0)), np.full(NUM_KEYPOINTS, 0.9))
                                                      for k in ((0, 1) if f % 2 else (1, 0))]}) for f in range(5)]
    (tmp_path / "v.json").write_text("\n".join(lines))
    read = read_people(tmp_path / "v.json", image_size=(640, 360))
    assert [t.frames for t in read.tracks] == [5, 5]
    np.testing.assert_allclose(read.tracks[0].keypoints[:, 0, 0], pose(1)[0, 0] + 3.0 * np.arange(5))
    (tmp_path / "one.json").write_text(lines[0])
    assert read_people(tmp_path / "one.json", image_size=(640, 360)).mode == "video"


@pytest.mark.parametrize("name, content, message", [
    ("body17.json", [{"keypoints": [1.0, 2.0, 0.5] * 17, "bbox": [0, 0, 1, 1], "score": 0.5, "category_id": 1}],
     "body17.json: prediction 0/keypoints: expected 133 keypoints as 399 numbers (x, y, c), found 51 numbers (17 "
     "keypoints: OpenPifPaf's COCO body checkpoints give 17, a whole-body checkpoint such as "
     "shufflenetv2k30-wholebody 133)"),
    ("lines.json", '{"frame": 0, "predictions": []}\n{"frame": 1, "predictions": [\n',
     "lines.json: line 2: expected a JSON object {\"frame\": ..., \"predictions\": [...]}, found invalid JSON"),
    ("frame.json", '{"frame": "a", "predictions": []}\n{"frame": 1, "predictions": []}\n',
     "frame.json: line 1/frame: expected an integer frame number, found a string 'a'"),
    ("strings.json", '{"frame": 0, "predictions": [{"keypoints": ["1"], "score": 1}]}\n',
     "strings.json: line 1 (frame 0)/prediction 0/keypoints: expected numbers, found a string '1' at index 0"),
])
def test_bad_openpifpaf_files_name_the_file_line_and_field(tmp_path, name, content, message):
    (tmp_path / name).write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(DataError) as error:
        read_people(tmp_path / name, image_size=(100, 100))
    assert message in str(error.value)
