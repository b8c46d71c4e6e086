"""The mirror (left/right) keypoint lists of H3WB's npz metadata, checked against ``bench.skeleton``'s pairs.

H3WB's metadata may carry ``left_side`` and ``right_side``: two lists of keypoint indices. The PAFUSE code reads
them as 0-based c133 indices (it adds 1 for its pelvis), drops any index that appears in both lists (a midline
keypoint listed on both sides) and pairs the rest position by position. This module reads them the same way, so a
file's lists are assumed to be **0-based c133**, pairwise aligned (``left_side[i]`` mirrors ``right_side[i]``).
Pairs are compared without their orientation: swapping (a, b) or (b, a) mirrors the same way.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from bench import skeleton
from bench.errors import DataError

Pairs = tuple[tuple[int, int], ...]


def parse_mirror_lists(path: Path, metadata: dict) -> Pairs | None:
    """The (left, right) c133 pairs of ``metadata``'s ``left_side`` / ``right_side``, or None when it has neither.

    Raises:
        DataError: if the lists are not integer lists of equal length (once shared indices are dropped), hold an
            index outside 0..132, or list an index twice.
    """

    if "left_side" not in metadata and "right_side" not in metadata:
        return None
    where = "metadata/left_side, right_side"
    try:
        left, right = (np.asarray(metadata[key]) for key in ("left_side", "right_side"))
    except KeyError as error:
        raise DataError(path, where, "both lists", f"only the other one (no {error})") from error
    for array in (left, right):
        if array.ndim != 1 or (array.size and not np.issubdtype(array.dtype, np.integer)):
            raise DataError(path, where, "two lists of integer keypoint indices",
                            f"{array.dtype} array of shape {array.shape}")
    shared = {int(i) for i in left} & {int(i) for i in right}
    left, right = ([int(i) for i in side if int(i) not in shared] for side in (left, right))
    if len(left) != len(right):
        raise DataError(path, where, "as many left as right keypoints (besides those on both lists)",
                        f"{len(left)} left and {len(right)} right")
    indices = left + right
    outside = [i for i in indices if not 0 <= i < skeleton.NUM_KEYPOINTS]
    if outside:
        raise DataError(path, where, f"0-based c133 indices (0..{skeleton.NUM_KEYPOINTS - 1})", f"{outside}")
    repeated = sorted({i for i in indices if indices.count(i) > 1})
    if repeated:
        raise DataError(path, where, "each keypoint in at most one pair", f"{repeated} in several")
    return tuple(zip(left, right))


def pair_differences(pairs: Pairs, reference: Pairs = skeleton.MIRROR_PAIRS_C133) -> tuple[list, list]:
    """(pairs only in ``pairs``, pairs only in ``reference``), each sorted, ignoring each pair's orientation."""
    ours, theirs = ({tuple(sorted(p)) for p in group} for group in (reference, pairs))
    return sorted(theirs - ours), sorted(ours - theirs)


def file_mirror_pairs(path: Path, metadata: dict, strict: bool) -> Pairs | None:
    """A file's mirror pairs, with a warning naming the file and the differing pairs when they disagree with ours.

    Args:
        strict: the pairs will be used (``mirror_from_file``): unreadable lists raise DataError. Otherwise they
            only give a warning, and the result is None.
    """

    try:
        pairs = parse_mirror_lists(path, metadata)
    except DataError as error:
        if strict:
            raise
        warnings.warn(f"{error}; mirroring with bench.skeleton.MIRROR_PAIRS_C133", stacklevel=4)
        return None
    if pairs is None:
        return None
    only_file, only_ours = pair_differences(pairs)
    if only_file or only_ours:
        used = "the file's pairs (mirror_from_file=True)" if strict else "bench.skeleton.MIRROR_PAIRS_C133"
        warnings.warn(f"{path}: metadata left_side/right_side (0-based c133) disagree with "
                      f"bench.skeleton.MIRROR_PAIRS_C133: pairs only in the file {only_file}, pairs only in "
                      f"bench.skeleton {only_ours}; mirroring with {used}", stacklevel=4)
    return pairs
