"""Data: H3WB's official files (npz and JSON), the synthetic set in the npz layout, temporal windows and statistics."""
from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "PAFUSE_BENCH_CACHE"


def cache_dir() -> Path:
    """Where generated data lives: ``$PAFUSE_BENCH_CACHE`` or ``~/.cache/pafuse-bench``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "pafuse-bench")


def ensure_synthetic(size: str = "small", seed: int = 0, progress: bool = False) -> Path:
    """The folder of the synthetic set (size, seed), generated on first use and reused afterwards."""
    from bench.data.h3wb import TEST_FILE, TRAIN_FILE
    from bench.data.synthetic import write_synthetic

    folder = cache_dir() / f"synthetic-{size}-seed{seed}"
    if not all((folder / name).exists() for name in (TRAIN_FILE, TEST_FILE)):
        write_synthetic(folder, size=size, seed=seed, progress=progress)
    return folder
