"""Faulty H3WB input: values beyond what float32 or a camera can hold, damaged npz members, silent coercions.

Each case is one DataError (exit 2 through ``bench data stats``) naming the file, the place inside it, what was
expected and what was found.
"""
import io
import json
import pickle
import zipfile

import numpy as np
import pytest

from bench.cli import main
from bench.data import cameras
from bench.data.h3wb import load_h3wb
from bench.data.h3wb_json_write import write_h3wb_json
from bench.data.sequences import MAX_DISTANCE_M
from bench.errors import ConfigError, DataError
from bench.io import save_npz

CAM = "54138969"
WIDTH, HEIGHT = cameras.RESOLUTIONS[CAM]
WHERE = f"S1/Directions 1/{CAM}"


def _view(frames: int = 4) -> dict:
    rng = np.random.default_rng(0)
    return {"camera_3d": rng.normal(0, 300, (frames, 133, 3)) + np.array([0, 0, 4500.0]),
            "pose_2d": rng.uniform(0, 1000, (frames, 133, 2)), "sample_id": np.arange(frames) + 100}


def _entry(view=None, frame_id=None) -> dict:
    return {"frame_id": np.array([30, 10, 20, 40]) if frame_id is None else frame_id,
            CAM: _view() if view is None else view}


def _write(folder, entry=None):
    """An h3wb_train.npz holding S1 with one action; returns its path."""
    path = folder / "h3wb_train.npz"
    save_npz(path, train_data=np.array({"S1": {"Directions 1": entry or _entry()}}, dtype=object))
    return path


def _fails(folder, match, error=DataError):
    with pytest.raises(error, match=match) as info:
        load_h3wb(folder, subjects=["S1"])
    return str(info.value)


def _cli_fails(folder, capsys, *parts):
    """``bench data stats`` on ``folder``: exit 2, one line naming the file and every one of ``parts``."""
    capsys.readouterr()
    assert main(["data", "stats", "--data", str(folder), "--subjects", "S1"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    assert captured.err.startswith("error: ") and str(folder / "h3wb_train.npz") in captured.err
    assert all(part in captured.err for part in parts), captured.err


# --- values beyond float32, beyond the image, beyond the room ---------------------------------------------------

def test_3d_value_finite_in_float64_but_infinite_in_float32_is_an_error(tmp_path, capsys):
    entry = _entry()
    entry[CAM]["camera_3d"][0, 5, 2] = 1e42   # frame_id 30: first in the file, third once sorted
    _write(tmp_path, entry)
    message = _fails(tmp_path, r"camera_3d\[0, 5, 2\]: expected coordinates within 20 m of the camera")
    assert "found 1e+42 mm (inf as float32)" in message
    _cli_fails(tmp_path, capsys, f"{WHERE}/camera_3d[0, 5, 2]", "1e+42 mm")


def test_2d_value_of_1e300_pixels_is_an_error(tmp_path, capsys):
    entry = _entry()
    entry[CAM]["pose_2d"][3, 7, 1] = 1e300
    _write(tmp_path, entry)
    message = _fails(tmp_path, rf"{WHERE}/pose_2d\[3, 7, 1\]: expected pixels within 1 image size of the "
                               rf"{WIDTH}x{HEIGHT} image \(-{WIDTH} <= x <= {2 * WIDTH}, -{HEIGHT} <= y <= "
                               rf"{2 * HEIGHT}\)")
    assert message.endswith("found 1e+300 px (inf as float32)")
    _cli_fails(tmp_path, capsys, f"{WHERE}/pose_2d[3, 7, 1]", "1e+300 px")


@pytest.mark.parametrize("field, index, value, ok", [
    ("pose_2d", (1, 0, 0), -WIDTH + 1.0, True),          # just inside the margin
    ("pose_2d", (1, 0, 1), 2 * HEIGHT - 1.0, True),
    ("pose_2d", (1, 0, 0), 2.5 * WIDTH, False),          # 1.5 image widths to the right of the image
    ("pose_2d", (1, 0, 1), -1.5 * HEIGHT, False),
    ("camera_3d", (2, 9, 2), (MAX_DISTANCE_M - 1) * 1000, True),
    ("camera_3d", (2, 9, 0), -(MAX_DISTANCE_M + 5) * 1000, False),   # 25 m: millimetres stored as micrometres?
])
def test_plausible_ranges_are_stated_and_kept(tmp_path, field, index, value, ok):
    entry = _entry()
    entry[CAM][field][index] = value
    _write(tmp_path, entry)
    if ok:
        (sequence,) = load_h3wb(tmp_path, subjects=["S1"])
        assert np.isfinite(sequence.pose_2d).all() and np.isfinite(sequence.pose_3d).all()
    else:
        message = _fails(tmp_path, rf"{field}\[{index[0]}, {index[1]}, {index[2]}\]: expected ")
        unit = "px" if field == "pose_2d" else "mm"
        assert message.endswith(f"found {value:g} {unit}")


def test_json_release_values_are_range_checked_by_sample_and_joint(tiny_data, tmp_path, capsys):
    write_h3wb_json(tiny_data, tmp_path)
    path = tmp_path / "2Dto3D_train.json"
    samples = json.loads(path.read_text())
    sample = sorted(samples, key=int)[3]
    samples[sample]["keypoints_3d"]["12"]["y"] = 1e42
    path.write_text(json.dumps(samples))
    with pytest.raises(DataError, match=rf"2Dto3D_train.json: sample {sample}/keypoints_3d/12/y: expected "
                                        r"coordinates within 20 m of the camera .* found 1e\+42 mm"):
        load_h3wb(tmp_path, subjects=None)


# --- damaged npz members ----------------------------------------------------------------------------------------

def _member_bytes(value) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asanyarray(value), allow_pickle=True)
    return buffer.getvalue()


def _bad_crc(path):
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("train_data.npy")
    raw = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    raw[start + info.file_size // 2] ^= 0x01   # inside the raw bytes of a pose array: the pickle stays valid
    path.write_bytes(bytes(raw))


def _replace_member(path, data: bytes):
    """Rewrite the npz with ``train_data.npy`` replaced by ``data`` (stored with a correct CRC)."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members["train_data.npy"] = data
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)


@pytest.mark.parametrize("damage, found", [
    ("bad_crc", r"BadZipFile: Bad CRC-32 for file 'train_data.npy'"),
    ("truncated_pickle", r"(UnpicklingError|EOFError)"),
    ("garbage_header", r"ValueError: "),
    ("foreign_pickle", r"(ModuleNotFoundError|AttributeError)"),
])
def test_damaged_npz_member_names_the_file_and_member(tmp_path, capsys, damage, found):
    path = _write(tmp_path)
    tree = np.array({"S1": {"Directions 1": _entry()}}, dtype=object)
    if damage == "bad_crc":
        _bad_crc(path)
    elif damage == "truncated_pickle":
        _replace_member(path, _member_bytes(tree)[:-200])
    elif damage == "garbage_header":
        header = b"{'descr': garbage, 'shape': ()}".ljust(63) + b"\n"
        _replace_member(path, b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header)
    else:   # a pickle naming a module that does not exist
        header = _member_bytes(np.array(None, dtype=object))
        payload = pickle.dumps(np.array(0.0)).replace(b"numpy", b"nompy")
        _replace_member(path, header[:header.index(b"\n") + 1] + payload)
    message = _fails(tmp_path, rf"h3wb_train.npz: member train_data.npy: expected a readable numpy array, found "
                               rf"damaged content \({found}")
    assert str(path) in message
    _cli_fails(tmp_path, capsys, "member train_data.npy", "damaged content")


# --- no silent coercions ----------------------------------------------------------------------------------------

def test_fractional_frame_ids_are_an_error(tmp_path, capsys):
    _write(tmp_path, _entry(frame_id=np.array([30.0, 10.5, 20.0, 40.0])))
    _fails(tmp_path, r"S1/Directions 1/frame_id: expected integers \(as int64\), found 10.5 at index \(1,\)")
    _cli_fails(tmp_path, capsys, "S1/Directions 1/frame_id", "10.5")


def test_integral_float_frame_ids_are_read(tmp_path):
    _write(tmp_path, _entry(frame_id=np.array([30.0, 10.0, 20.0, 40.0])))
    (sequence,) = load_h3wb(tmp_path, subjects=["S1"])
    assert sequence.frame_ids.tolist() == [10, 20, 30, 40] and sequence.frame_ids.dtype == np.int64


def test_fractional_sample_ids_are_an_error(tmp_path):
    entry = _entry()
    entry[CAM]["sample_id"] = np.array([1.0, 2.0, 3.25, 4.0])
    _write(tmp_path, entry)
    _fails(tmp_path, rf"{WHERE}/sample_id: expected integers \(as int64\), found 3.25 at index \(2,\)")


@pytest.mark.parametrize("field", ["camera_3d", "pose_2d", "frame_id"])
def test_complex_values_are_an_error(tmp_path, capsys, field):
    entry = _entry()
    if field == "frame_id":
        entry["frame_id"] = entry["frame_id"] + 0j
        where = "S1/Directions 1/frame_id"
    else:
        entry[CAM][field] = entry[CAM][field] + 1j
        where = f"{WHERE}/{field}"
    _write(tmp_path, entry)
    _fails(tmp_path, rf"{where}: expected real numbers, found dtype complex128")
    _cli_fails(tmp_path, capsys, where, "complex128")


def test_action_with_frame_ids_but_no_camera_view_is_an_error(tmp_path, capsys):
    _write(tmp_path, {"frame_id": np.arange(4), "global_3d": np.zeros((4, 133, 3))})
    _fails(tmp_path, r"S1/Directions 1: expected camera views beside 'frame_id' .* found none: keys "
                     r"\['frame_id', 'global_3d'\]")
    _cli_fails(tmp_path, capsys, "S1/Directions 1", "camera views")


@pytest.mark.parametrize("max_gap", [0, -3, 2.5, True])
def test_max_gap_below_one_or_not_an_integer_is_an_error(tmp_path, max_gap):
    _write(tmp_path)
    with pytest.raises(ConfigError, match=rf"max_gap: expected null or an integer >= 1, found {max_gap!r}"):
        load_h3wb(tmp_path, subjects=["S1"], max_gap=max_gap)


@pytest.mark.parametrize("value", ["0", "-1"])
def test_max_gap_flag_below_one_names_the_flag(tmp_path, capsys, value):
    _write(tmp_path)
    assert main(["data", "stats", "--data", str(tmp_path), "--subjects", "S1", "--max-gap", value]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"error: --max-gap: expected an integer >= 1, found {value}\n" and captured.out == ""
