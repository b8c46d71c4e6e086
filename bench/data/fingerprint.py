"""A data set's fingerprint: a hash of what its files hold, not of how they were written.

The same arrays give the same fingerprint on every machine: neither the files' bytes (an npz is a zip whose members
carry time stamps, a compression choice, and for H3WB's dicts a pickle whose bytes depend on numpy's version) nor
their modification times, folder, listing order or a JSON file's layout (key order, spacing) count. What counts, file
by file in name order:

* an npz member, key by key in sorted order: a plain array as its name, dtype (little-endian), shape and C-order
  bytes; an object array (H3WB's 0-d arrays holding dicts) unpickled and walked, dict keys in sorted order, down to
  arrays, numbers (int64, float64, bool), strings and None, each named by its path (``h3wb_train.npz/train_data/S1/
  Walking 1/54138969/camera_3d``);
* a JSON file (the release's ``*.json``): each top-level entry by its sorted key, as JSON text with sorted keys and no
  spaces, so that its numbers are written the one way Python writes them.

The file names count: they name a file's part of the data set (and for the JSON release, how it is read).

Floats wider than 32 bits are hashed as float32, the precision the lifters are fed. The synthetic set is generated in
float64, and its last bits depend on the machine's numpy build and vector kernels (up to 1e-12 apart between numpy
1.26 and 2.x, or with and without AVX-512); rounded to float32 those sets are identical, and so are their fingerprints.
"""
from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np

from bench.errors import DataError

_SCALARS = {bool: np.bool_, int: np.int64, float: np.float64}
"""A Python number leaf -> the dtype it is hashed as, the same on every platform."""


def fingerprint_files(files: list[Path]) -> str:
    """sha256 of the arrays in ``files`` (npz or H3WB JSON release files), first 16 hex digits.

    Raises:
        DataError: a file that cannot be read, or that holds something other than arrays, numbers, strings, None,
            lists and dicts, named by file and place.
    """
    digest = hashlib.sha256()
    for path in sorted(map(Path, files), key=lambda p: p.name):
        records = _json_records(path) if path.suffix.lower() == ".json" else _npz_records(path)
        for place, kind, shape, data in records:
            for part in (place.encode(), kind.encode(), ",".join(map(str, shape)).encode(), data):
                digest.update(len(part).to_bytes(8, "little"))
                digest.update(part)
    return digest.hexdigest()[:16]


def _npz_records(path: Path):
    """(place, kind, shape, bytes) of every leaf of an npz file, members in sorted order."""
    with _open_npz(path) as archive:
        for key in sorted(archive.files):
            yield from _leaves(_member(archive, path, key), f"{path.name}/{key}", path)


def _open_npz(path: Path):
    if not path.is_file():
        raise DataError(path, "file", "an npz archive", "no such file")
    if not zipfile.is_zipfile(path):   # np.load would unpickle any other file
        raise DataError(path, "file", "an npz archive", "not a zip archive")
    try:
        return np.load(path, allow_pickle=True)
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise DataError(path, "file", "an npz archive", f"unreadable content ({error})") from error


def _member(archive, path: Path, key: str):
    try:
        return archive[key]
    except Exception as error:  # unpickling damaged bytes can raise nearly any exception type
        raise DataError(path, f"member {key}.npy", "a readable numpy array",
                        f"damaged content ({type(error).__name__}: {error})") from error


def _json_records(path: Path):
    """(place, "json", (), canonical text) of every top-level entry of a JSON file, keys in sorted order."""
    try:
        with open(path, encoding="utf-8") as handle:
            content = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(path, "file", "a JSON document", f"invalid JSON ({error})") from error
    entries = sorted(content.items()) if isinstance(content, dict) else [("", content)]
    for key, value in entries:
        yield f"{path.name}/{key}", "json", (), json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _leaves(value, place: str, path: Path):
    """(place, kind, shape, bytes) of every array, number, string and None in ``value``, dict keys sorted."""
    if isinstance(value, dict):
        for key in sorted(value, key=lambda k: (str(k), type(k).__name__)):
            yield from _leaves(value[key], f"{place}/{key}", path)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _leaves(item, f"{place}/{index}", path)
    elif isinstance(value, np.ndarray) and value.dtype == object:
        yield place, "object", value.shape, b""
        yield from _leaves(value.tolist(), place, path)
    elif isinstance(value, (np.ndarray, np.generic)):
        yield _array_record(place, np.asarray(value))
    elif type(value) in _SCALARS:
        yield _array_record(place, np.asarray(value, dtype=_SCALARS[type(value)]))
    elif isinstance(value, str):
        yield place, "str", (), value.encode()
    elif value is None:
        yield place, "none", (), b""
    else:
        raise DataError(path, place, "arrays, numbers, strings, None, lists or dicts", type(value).__name__)


def _array_record(place: str, array: np.ndarray) -> tuple[str, str, tuple, bytes]:
    """An array's record: its dtype made little-endian, its shape, and its C-order bytes (float64 values rounded to
    float32 first, see the module docstring)."""
    dtype = array.dtype.newbyteorder("<").str
    if array.dtype.kind == "f" and array.dtype.itemsize > 4:
        array = array.astype(np.float32)
    little = array.astype(array.dtype.newbyteorder("<"), copy=False)
    return place, dtype, little.shape, little.tobytes()
