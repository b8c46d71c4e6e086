"""Shared fixtures: tiny model sizes for every registered lifter, and a tiny synthetic dataset."""
import pytest
import torch

TINY_MODEL_ARGS = {
    "videopose": {"channels": 16, "dropout": 0.0},
    "poseformer": {"joint_width": 2, "depth": 1, "heads": 1},
    "mixste": {"width": 16, "depth": 1, "heads": 1},
    "d3dp": {"width": 16, "depth": 1, "heads": 1},
    "pafuse": {"width": 16, "depth": 1},   # balanced part widths from width 16: 16 / 8 / 8 (body / face / hands)
}
"""Architecture overrides that make each registered lifter small enough for CPU tests (one attention head: at
134 joints the spatial attention maps, not the widths, dominate the cost on CPU)."""


@pytest.fixture(scope="session")
def tiny_args():
    return TINY_MODEL_ARGS


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """A folder with the tiny synthetic set (2 actions per subject) in H3WB's layout."""
    from bench.data.synthetic import write_synthetic

    folder = tmp_path_factory.mktemp("tiny-h3wb")
    write_synthetic(folder, size="tiny", seed=0)
    return folder


@pytest.fixture
def single_thread():
    """Run a test on one CPU thread: tiny models are faster that way, and CI machines are often shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
