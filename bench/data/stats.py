"""Dataset statistics: sample counts per subject, action and camera, and the gaps between annotated frames."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
from tabulate import tabulate

from bench.data.h3wb import Sequence
from bench.io import atomic_path

GAP_BINS = (1, 2, 3, 4, 5, 6, 10, 20, 50, 100, 200, 500)
"""Left edges of the gap histogram's bins (in frames); the last bin is open-ended."""


def frame_gaps(sequences: list[Sequence]) -> np.ndarray:
    """Gaps (in frames) between consecutive annotated frames, once per take (cameras share their frame ids)."""
    takes = {(s.subject, s.action, s.segment): s.frame_ids for s in sequences}
    return np.concatenate([np.diff(ids) for ids in takes.values()] or [np.zeros(0, np.int64)])


def gap_histogram(gaps: np.ndarray) -> list[tuple[str, int]]:
    """Counts of gaps per bin of GAP_BINS, labelled like '5', '6-9' or '>=500'."""
    edges = list(GAP_BINS) + [np.inf]
    rows = []
    for low, high in zip(edges[:-1], edges[1:]):
        label = f">={low}" if high == np.inf else (f"{low}" if high == low + 1 else f"{low}-{int(high) - 1}")
        rows.append((label, int(((gaps >= low) & (gaps < high)).sum())))
    return rows


def gap_mode(gaps: np.ndarray) -> int:
    """The most frequent gap (smallest on ties)."""
    values, counts = np.unique(gaps, return_counts=True)
    return int(values[np.argmax(counts)])


def count_table(sequences: list[Sequence]) -> str:
    """A table of annotated samples per subject and camera, with the number of actions."""
    frames: Counter = Counter()
    actions: dict[str, set] = {}
    for s in sequences:
        frames[(s.subject, s.camera)] += s.frames
        actions.setdefault(s.subject, set()).add(s.action)
    subjects = sorted(actions)
    camera_ids = sorted({s.camera for s in sequences})
    rows = [[subject, len(actions[subject])] + [frames[(subject, c)] for c in camera_ids]
            + [sum(frames[(subject, c)] for c in camera_ids)] for subject in subjects]
    rows.append(["all", len(set().union(*actions.values()))] + [sum(frames[(s, c)] for s in subjects)
                                                                for c in camera_ids] + [sum(frames.values())])
    return tabulate(rows, headers=["subject", "actions"] + camera_ids + ["samples"], tablefmt="github")


def action_table(sequences: list[Sequence]) -> str:
    """Annotated instants (one per frame id, all cameras) per action and subject."""
    takes = {(s.subject, s.action, s.segment): s.frames for s in sequences}
    subjects = sorted({subject for subject, _, _ in takes})
    actions = sorted({action for _, action, _ in takes})
    rows = [[action] + [sum(n for (s, a, _), n in takes.items() if s == subject and a == action)
                        for subject in subjects] for action in actions]
    return tabulate(rows, headers=["action"] + subjects, tablefmt="github")


def plot_gaps(gaps: np.ndarray, path: str | Path) -> Path:
    """Save a bar chart of the gap histogram (log counts, so the long tail stays visible)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = gap_histogram(gaps)
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.bar([label for label, _ in rows], [max(count, 0) for _, count in rows], color="#4477aa")
    ax.set_yscale("log")
    ax.tick_params(axis="x", labelrotation=30)
    ax.set_xlabel("gap between consecutive annotated frames (frames)")
    ax.set_ylabel("count (log)")
    ax.set_title(f"{len(gaps)} gaps, mode {gap_mode(gaps)} frames, {int((gaps >= 100).sum())} gaps >= 100")
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", dpi=120)
    plt.close(fig)
    return path


def report(sequences: list[Sequence]) -> str:
    """The text that ``bench data stats`` prints."""
    gaps = frame_gaps(sequences)
    lines = [f"{len(sequences)} sequences, {sum(s.frames for s in sequences)} samples", "",
             "Samples per subject and camera:", count_table(sequences), "",
             "Annotated instants per action:", action_table(sequences), ""]
    if len(gaps):
        lines += [f"Gaps between annotated frames: {len(gaps)} gaps, mode {gap_mode(gaps)} frames, "
                  f"median {int(np.median(gaps))}, max {int(gaps.max())}, {int((gaps >= 100).sum())} gaps >= 100",
                  tabulate(gap_histogram(gaps), headers=["gap (frames)", "count"], tablefmt="github")]
    return "\n".join(lines)
