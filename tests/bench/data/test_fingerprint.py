"""The data fingerprint hashes what the files hold: the same arrays written another way give the same one, and one
changed value gives another."""
import json
import os

import numpy as np
import pytest

from bench.data.fingerprint import fingerprint_files
from bench.data.h3wb import TEST_FILE, TRAIN_FILE, dataset_files, load_h3wb
from bench.data.h3wb_json_format import TEST_3D
from bench.data.h3wb_json_write import write_h3wb_json
from bench.errors import DataError
from bench.io import save_npz


def _h3wb_like(seed=0):
    """(train members, test members) in H3WB's npz layout: 0-d object arrays holding dicts of arrays."""
    rng = np.random.default_rng(seed)

    def view(frames):
        return {"camera_3d": rng.normal(size=(frames, 133, 3)) * 1000, "pose_2d": rng.normal(size=(frames, 133, 2))}

    def subject(frames):
        return {"Walking 1": {"frame_id": np.arange(frames), "54138969": view(frames), "55011271": view(frames)}}

    metadata = {"S1": {"54138969": {"K": np.eye(3)}}, "left_side": [5, 7], "name": "tiny", "none": None}
    train = {"train_data": np.array({"S1": subject(4), "S5": subject(3)}), "metadata": np.array(metadata)}
    return train, {"data": np.array({"S8": subject(2)})}


def _reordered(tree):
    """The same nested dicts with every dict's keys in reverse insertion order."""
    if isinstance(tree, dict):
        return {key: _reordered(tree[key]) for key in reversed(list(tree))}
    if isinstance(tree, np.ndarray) and tree.dtype == object:
        return np.array(_reordered(tree.item()))
    return tree


def _big_endian(tree):
    """The same nested dicts with every float array stored big-endian."""
    if isinstance(tree, dict):
        return {key: _big_endian(value) for key, value in tree.items()}
    if isinstance(tree, np.ndarray) and tree.dtype == object:
        return np.array(_big_endian(tree.item()))
    if isinstance(tree, np.ndarray) and tree.dtype.kind == "f":
        return tree.astype(">f8")
    return tree


def _write_reproducibly(folder, train, test):
    save_npz(folder / TRAIN_FILE, **train)
    save_npz(folder / TEST_FILE, **test)
    return folder


def _write_otherwise(folder, train, test):
    """np.savez_compressed, members, dict keys and files in another order, big-endian floats, other mtimes."""
    folder.mkdir()
    np.savez_compressed(folder / TEST_FILE, **{k: _big_endian(_reordered(v)) for k, v in test.items()})
    np.savez_compressed(folder / TRAIN_FILE, **{k: _reordered(train[k]) for k in reversed(list(train))})
    for day, name in enumerate((TRAIN_FILE, TEST_FILE)):
        os.utime(folder / name, (86400 * (day + 1),) * 2)
    return folder


def _fingerprint(source):
    return fingerprint_files(dataset_files(source))


def test_the_same_arrays_written_otherwise_give_the_same_fingerprint(tmp_path):
    train, test = _h3wb_like()
    first = _write_reproducibly(tmp_path / "a", train, test)
    other = _write_otherwise(tmp_path / "b", train, test)
    assert (first / TRAIN_FILE).read_bytes() != (other / TRAIN_FILE).read_bytes()
    assert _fingerprint(first) == _fingerprint(other)
    files = [other / TEST_FILE, other / TRAIN_FILE]   # named one by one, in any order, wherever they are
    assert _fingerprint(files) == _fingerprint(files[::-1]) == _fingerprint(first)


@pytest.mark.parametrize("change", ["value", "key", "dtype", "shape", "file name"])
def test_any_change_of_the_arrays_changes_the_fingerprint(change, tmp_path):
    train, test = _h3wb_like()
    before = _fingerprint(_write_reproducibly(tmp_path / "a", train, test))
    view = test["data"].item()["S8"]["Walking 1"]["54138969"]
    if change == "value":
        view["pose_2d"][1, 100, 0] += 1e-3
    elif change == "key":
        view["pose_3d"] = view.pop("pose_2d")
    elif change == "dtype":
        view["pose_2d"] = view["pose_2d"].astype(np.float32)
    elif change == "shape":
        view["pose_2d"] = view["pose_2d"].reshape(1, -1, 2)
    after = _write_reproducibly(tmp_path / "b", train, test)
    if change == "file name":
        (after / TRAIN_FILE).rename(after / "train_h3wb.npz")
    assert _fingerprint(after) != before


def test_float64_last_bits_do_not_count_float32_ones_do(tmp_path):
    """Float64 arrays are hashed at float32 precision: a 1e-12 difference (two numpy builds generating the synthetic
    set) keeps the fingerprint, a float32-visible change does not."""
    train, test = _h3wb_like()
    start = _fingerprint(_write_reproducibly(tmp_path / "b", train, test))
    view = test["data"].item()["S8"]["Walking 1"]["54138969"]
    assert view["pose_2d"].dtype == np.float64
    view["pose_2d"][1, 100, 0] = np.nextafter(view["pose_2d"][1, 100, 0], np.inf)
    assert _fingerprint(_write_reproducibly(tmp_path / "c", train, test)) == start
    view["pose_2d"][1, 100, 0] += 1e-3
    assert _fingerprint(_write_reproducibly(tmp_path / "d", train, test)) != start


def test_the_synthetic_set_keeps_its_fingerprint_through_a_rewrite(tiny_data, tmp_path):
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in (TEST_FILE, TRAIN_FILE):
        with np.load(tiny_data / name, allow_pickle=True) as archive:
            np.savez_compressed(copy / name, **{key: archive[key] for key in reversed(archive.files)})
    assert _fingerprint(copy) == _fingerprint(tiny_data)


def test_the_json_release_is_hashed_by_content_not_layout(tiny_data, tmp_path):
    folder = tmp_path / "json"
    write_h3wb_json(load_h3wb(tiny_data, subjects=["S8"])[:2], folder)
    relaid = tmp_path / "relaid"
    relaid.mkdir()
    for path in dataset_files(folder):   # samples, and keys inside them, in reverse order; other spacing
        content = json.loads(path.read_text(), object_hook=lambda d: dict(reversed(d.items())))
        (relaid / path.name).write_text(json.dumps(content, separators=(" , ", " : ")))
        assert (relaid / path.name).read_text() != path.read_text()
    assert _fingerprint(relaid) == _fingerprint(folder)
    path = relaid / TEST_3D
    content = json.loads(path.read_text())
    sample = content[next(iter(content))]
    sample["keypoints_3d"]["0"]["x"] += 0.5
    path.write_text(json.dumps(content))
    assert _fingerprint(relaid) != _fingerprint(folder)


def test_an_unreadable_file_is_a_data_error_naming_it(tmp_path):
    train, test = _h3wb_like()
    folder = _write_reproducibly(tmp_path / "a", train, test)
    (folder / TEST_FILE).write_bytes(b"not a zip")
    with pytest.raises(DataError, match=rf"{TEST_FILE}: file: expected an npz archive, found not a zip archive"):
        _fingerprint(folder)
    save_npz(folder / TEST_FILE, data=np.array({"S8": {"when": np.datetime64("2026-01-01").item()}}))
    with pytest.raises(DataError, match=r"data/S8/when: expected arrays, numbers, strings, None, lists or dicts, "
                                        r"found date"):
        _fingerprint(folder)
