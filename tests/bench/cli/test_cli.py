"""End-to-end tests of the command line, one per command."""
import re

import numpy as np
import pytest

from bench.cli import main
from bench.data.h3wb import TEST_FILE, TRAIN_FILE, load_h3wb


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    assert main(["data", "synth", "--out", str(out), "--seed", "3"]) == 0
    return out


def test_data_synth_writes_both_files_readable_by_the_loader(synth_dir, capsys):
    assert (synth_dir / TRAIN_FILE).stat().st_size > 0 and (synth_dir / TEST_FILE).stat().st_size > 0
    test = load_h3wb(synth_dir, subjects=["S8"])
    assert {s.subject for s in test} == {"S8"} and all(s.pose_3d.shape[1:] == (134, 3) for s in test)


def test_data_stats_prints_counts_and_an_h3wb_like_gap_histogram(synth_dir, tmp_path, capsys):
    plot = tmp_path / "gaps.png"
    assert main(["data", "stats", "--data", str(synth_dir), "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    match = re.search(r"(\d+) gaps, mode (\d+) frames, .* (\d+) gaps >= 100", out)
    assert match and int(match.group(2)) == 5 and int(match.group(3)) > 0
    for subject in ("S1", "S5", "S6", "S7", "S8"):
        assert re.search(rf"^\| {subject} ", out, re.M)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_data_stats_on_a_split_with_max_gap_has_no_gap_above_it(synth_dir, capsys):
    assert main(["data", "stats", "--data", str(synth_dir), "--split", "val", "--max-gap", "50"]) == 0
    out = capsys.readouterr().out
    assert "| S7 " in out and "| S1 " not in out
    assert re.search(r"max (\d+),", out) and int(re.search(r"max (\d+),", out).group(1)) <= 50


def test_bad_data_folder_is_one_clear_error(tmp_path, capsys):
    assert main(["data", "stats", "--data", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "nowhere: folder: expected h3wb_train.npz and/or task1_test_3d.npz, found no such folder" in err


def test_every_command_has_help(capsys):
    for argv in (["--help"], ["data", "--help"], ["data", "synth", "--help"], ["data", "stats", "--help"],
                 ["models", "--help"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 0
    assert "--noise-px" in capsys.readouterr().out


def test_synthetic_sequences_are_sorted_and_metric(synth_dir):
    sequences = load_h3wb(synth_dir, subjects=["S1"])
    assert all(np.all(np.diff(s.frame_ids) > 0) for s in sequences)
    height = np.ptp(sequences[0].pose_3d[0, :, 1])  # camera y points down the image: roughly the body's height
    assert 1.0 < height < 2.2


def test_models_lists_every_lifter_with_its_parameter_count(capsys):
    assert main(["models", "--joints", "134", "--frames", "27"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"\| mixste\s+\| 33,733,123 ", out) and re.search(r"\| d3dp\s+\| 34,784,771 ", out)
    assert main(["models", "--joints", "17", "--frames", "100", "--filter", "video*"]) == 0
    out = capsys.readouterr().out
    assert "videopose" in out and "n/a" in out and "mixste" not in out


def test_models_part_based_lists_pafuse_ablations(capsys):
    assert main(["models", "--part-based", "--filter", "mixste"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"\| mixste\s+\| 33,733,123\s+\| 384/224/256 ", out)
    assert re.search(r"\| reference attach \(body nose, wrists\)\s+\| 27\s+\| 34,964,329 ", out)
    for variant in ("only part-frame shift", "only part denoisers", "WB loss", "MSE", "uniform widths", "N = 81"):
        assert variant in out
