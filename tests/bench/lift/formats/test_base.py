"""The checks every reader shares: numbers, image sizes, points far outside the image."""
import numpy as np
import pytest

from bench.errors import DataError
from bench.lift.formats.base import check_size, flat_keypoints, numbers, outside_image, usable_mask


def test_numbers_accept_ints_floats_and_null_as_nan():
    np.testing.assert_array_equal(numbers("f.json", "x", [[1, 2.5], [None, 4]]), [[1, 2.5], [np.nan, 4]])


@pytest.mark.parametrize("value, found", [
    ([1.0, "12.5", 3.0], "a string '12.5' at index 1"),
    ([[1.0, 2.0], [3.0, {"x": 1}]], "a dict with keys ['x'] at index 1, 1"),
    ("1 2 3", "a string '1 2 3'"),
    ([[1.0, 2.0], [3.0]], "found lists of uneven lengths"),
])
def test_numbers_name_the_first_value_that_is_not_a_number(value, found):
    with pytest.raises(DataError, match="f.json: people\\[0\\]/keypoints: expected") as error:
        numbers("f.json", "people[0]/keypoints", value)
    assert found in str(error.value)


@pytest.mark.parametrize("size, found", [(["640", 480], "a string '640'"), ([640], "a list of 1 items"),
                                          ([640, -1], "int -1"), ([640, float("nan")], "float nan"),
                                          ({"w": 1}, "a dict")])
def test_image_sizes_must_be_two_positive_numbers(size, found):
    with pytest.raises(DataError, match="expected an image size \\(width, height\\) of two positive numbers") as e:
        check_size("f.json", "image_size", size)
    assert found in str(e.value)
    assert check_size("f.json", "image_size", np.array([640.0, 480])) == (640, 480)


def test_confidence_zero_is_a_missing_keypoint_and_counts_are_checked():
    points, scores = flat_keypoints("f.json", "k", [10, 20, 0.9, 0, 0, 0, 5, 6, 0.01], 3)
    np.testing.assert_array_equal(scores, [0.9, 0.0, 0.01])
    assert np.isnan(points[1]).all() and (points[[0, 2]] == [[10, 20], [5, 6]]).all()
    with pytest.raises(DataError, match="k: expected 3 keypoints as 9 numbers \\(x, y, c\\), found 6 numbers "
                                        "\\(2 keypoints: hint\\)"):
        flat_keypoints("f.json", "k", [1] * 6, 3, ": hint")


def test_points_more_than_one_image_size_outside_the_image_are_not_usable():
    points = np.array([[10.0, 10.0], [1e30, 5.0], [-700.0, 10.0], [-600.0, 10.0], [np.nan, 1.0], [10.0, 1000.0]])
    np.testing.assert_array_equal(outside_image(points, (640, 480)), [False, True, True, False, False, True])
    usable = usable_mask(points, np.ones(6), 0.3, (640, 480))
    np.testing.assert_array_equal(usable, [True, False, False, True, False, False])
