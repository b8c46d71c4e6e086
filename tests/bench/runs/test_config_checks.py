"""Every configuration value is checked before any work: type and range per key, the dotted key in the message."""
import pytest
import torch

from bench.cli import main
from bench.runs import config as cfg
from bench.runs.config_rules import RULES
from bench.runs.training import Run


def _leaves(tree: dict, prefix: str = "") -> set[str]:
    keys = set()
    for key, value in tree.items():
        if isinstance(value, dict) and key != "model_args":
            keys |= _leaves(value, f"{prefix}{key}.")
        else:
            keys.add(prefix + key)
    return keys


def test_every_key_of_the_defaults_has_exactly_one_rule():
    assert set(RULES) == _leaves(cfg.DEFAULTS)


@pytest.mark.parametrize("setting, message", [
    ("eval.protocol=foo", "eval.protocol: expected one of 'h3wb', 'pafuse', found 'foo'"),
    ("eval.batch_size=0", "eval.batch_size: expected an integer >= 1, found 0"),
    ("train.epochs=1.5", "train.epochs: expected an integer >= 1, found 1.5"),
    ("train.batch_size=2.5", "train.batch_size: expected an integer >= 1, found 2.5"),
    ("train.lr_decay=abc", "train.lr_decay: expected a number > 0, found 'abc'"),
    ("train.lr=-1", "train.lr: expected a number > 0, found -1"),
    ("train.lr=1e-4", "train.lr: expected a number > 0, found '1e-4' (text: YAML reads a number like 1e-4"),
    ("train.lr=.nan", "train.lr: expected a number > 0, found nan"),
    ("train.weight_decay=-0.1", "train.weight_decay: expected a number >= 0, found -0.1"),
    ("train.optimizer=sgd", "train.optimizer: expected one of 'adam', 'adamw', found 'sgd'"),
    ("train.flip_augment=yes-please", "train.flip_augment: expected true or false, found 'yes-please'"),
    ("train.amsgrad=1", "train.amsgrad: expected true or false, found 1"),
    ("train.bn_momentum_start=2", "train.bn_momentum_start: expected null or a number > 0 and <= 1, found 2"),
    ("train.stride=0", "train.stride: expected null or an integer >= 1, found 0"),
    ("frames=0", "frames: expected an integer >= 1, found 0"),
    ("frames=big", "frames: expected an integer >= 1, found 'big'"),
    ("max_gap=0", "max_gap: expected null or an integer >= 1, found 0"),
    ("max_gap=2.5", "max_gap: expected null or an integer >= 1, found 2.5"),
    ("seed=-1", "seed: expected an integer from 0 to 4294967295, found -1"),
    ("selection=best", "selection: expected one of 'val', 'last', found 'best'"),
    ("device=gpu", "device: expected 'cpu', 'cuda' or 'cuda:N', found 'gpu'"),
    ("device=cuda:x", "device: expected 'cpu', 'cuda' or 'cuda:N', found 'cuda:x'"),
    ("bf16=maybe", "bf16: expected true or false, found 'maybe'"),
    ("compile=1", "compile: expected true, false or the name of a torch.compile backend"),
    ("compile=no-such-backend", "found 'no-such-backend'"),
    ("part_based=0", "part_based: expected true or false, found 0"),
    ("parts.hands=both", "parts.hands: expected null or one of 'joint', 'shared', found 'both'"),
    ("parts.shift=0", "parts.shift: expected null or true or false, found 0"),
    ("parts.widths=wide", "parts.widths: expected null or one of 'balanced', 'uniform', 'match'"),
    ("synthetic.size=huge", "synthetic.size: expected one of 'tiny', 'small', 'full', found 'huge'"),
    ("synthetic.seed=0.5", "synthetic.seed: expected an integer >= 0, found 0.5"),
    ("eval.hypotheses_steps=[[1.5,1]]", "eval.hypotheses_steps: expected a non-empty list of [hypotheses, steps]"),
    ("eval.hypotheses_steps=[]", "eval.hypotheses_steps: expected a non-empty list"),
    ("eval.flip_test=2", "eval.flip_test: expected true or false, found 2"),
    ("data=[]", "data: expected null or a path or a non-empty list of paths, found []"),
])
def test_bad_value_fails_before_any_work_naming_its_key(setting, message, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(Run, "__call__", lambda self: pytest.fail("a bad configuration must not start a run"))
    out = tmp_path / "runs"
    assert main(["run", "--model", "d3dp", "--set", setting, "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ") and message in captured.err, captured.err
    assert "Traceback" not in captured.err and not out.exists()


@pytest.mark.parametrize("flag, message", [
    (["--frames", "0"], "frames: expected an integer >= 1, found 0"),
    (["--epochs", "0"], "train.epochs: expected an integer >= 1, found 0"),
    (["--batch-size", "-4"], "train.batch_size: expected an integer >= 1, found -4"),
    (["--lr", "0"], "train.lr: expected a number > 0, found 0.0"),
    (["--seed", "-2"], "seed: expected an integer from 0 to 4294967295, found -2"),
    (["--hypotheses", "0", "--steps", "1"], "eval.hypotheses_steps: expected a non-empty list of [hypotheses"),
])
def test_bad_flag_values_fail_the_same_way(flag, message, tmp_path, capsys):
    assert main(["run", "--model", "d3dp", *flag, "--out", str(tmp_path / "runs")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_bad_value_in_a_config_file_names_its_key(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("train:\n  epochs: ten\n")
    with pytest.raises(ValueError, match="train.epochs: expected an integer >= 1, found 'ten'"):
        cfg.resolve({"model": "mixste"}, config_file=config)
    config.write_text("eval:\n  flip_test: null\n")   # null flags are ignored; a file's null is a value
    with pytest.raises(ValueError, match="eval.flip_test: expected true or false, found None"):
        cfg.resolve({"model": "mixste"}, config_file=config)
    with pytest.raises(ValueError, match=f"{tmp_path}: cannot read the config file"):
        cfg.resolve({"model": "mixste"}, config_file=tmp_path)   # a folder


def test_cuda_without_a_gpu_says_so(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for device in ("cuda", "cuda:1"):
        assert main(["run", "--model", "mixste", "--device", device, "--out", str(tmp_path / "runs")]) == 2
        err = capsys.readouterr().err
        assert f"device: '{device}' asks for a GPU, but torch.cuda.is_available() is false" in err
    assert not (tmp_path / "runs").exists()
    # a sweep's run is resolved here but runs on a GPU node: only the form of its device is checked
    assert cfg.resolve({"model": "mixste", "device": "cuda"}, runs_here=False)["device"] == "cuda"


def test_good_values_resolve(tmp_path):
    config = cfg.resolve({"model": "pafuse", "max_gap": 5, "compile": "aot_eager", "device": "cpu",
                          "parts": {"widths": "uniform", "shift": False}, "train": {"lr": 1, "lr_decay": 0.5},
                          "eval": {"hypotheses_steps": [[1, 1], [20, 10]]}})
    assert config["max_gap"] == 5 and config["part_based"] is True and config["train"]["lr"] == 1
