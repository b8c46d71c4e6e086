"""Learning-rate schedules (exponential per epoch, cosine per step, linear warm-up) and validating every few epochs."""
import math

import pytest
import torch

from baselines import model_defaults
from bench.errors import ConfigError
from bench.runs import config as cfg
from bench.runs import training
from bench.runs.schedule import learning_rate
from bench.runs.training import Run


def _train(**keys):
    return {**cfg.DEFAULTS["train"], "lr": 1e-3, "epochs": 4, **keys}


def test_exponential_is_constant_within_an_epoch_and_decays_per_epoch():
    train = _train(lr_decay=0.5)
    assert [learning_rate(train, step, steps_per_epoch=3) for step in range(7)] == pytest.approx(
        [1e-3] * 3 + [5e-4] * 3 + [2.5e-4])


def test_cosine_falls_from_lr_to_zero_over_the_whole_run_and_ignores_lr_decay():
    train = _train(schedule="cosine", lr_decay=0.5)
    rates = [learning_rate(train, step, steps_per_epoch=10) for step in range(41)]
    assert rates[0] == pytest.approx(1e-3) and rates[20] == pytest.approx(5e-4) and rates[40] == pytest.approx(0.0)
    assert rates[10] == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi / 4)))
    assert all(a > b for a, b in zip(rates, rates[1:]))


@pytest.mark.parametrize("schedule", ["exponential", "cosine"])
def test_warmup_ramps_linearly_then_hands_over_to_the_schedule(schedule):
    train = _train(schedule=schedule, warmup_steps=4)
    plain = _train(schedule=schedule)
    rates = [learning_rate(train, step, steps_per_epoch=10) for step in range(6)]
    assert rates[:4] == pytest.approx([learning_rate(plain, s, 10) * (s + 1) / 4 for s in range(4)])
    assert rates[4:] == pytest.approx([learning_rate(plain, s, 10) for s in (4, 5)])


@pytest.mark.parametrize("item, message", [
    ("train.schedule=linear", "train.schedule: expected one of 'exponential', 'cosine', found 'linear'"),
    ("train.warmup_steps=-1", "train.warmup_steps: expected an integer >= 0, found -1"),
    ("train.val_every=0", "train.val_every: expected an integer >= 1, found 0"),
])
def test_bad_schedule_keys_are_named(item, message):
    with pytest.raises(ConfigError, match=message):
        cfg.resolve(cfg.set_overrides(["model=mixste", item]))


def test_the_optimizer_steps_at_the_scheduled_rates(tiny_data, tiny_args, tmp_path, monkeypatch):
    seen = []
    original = training.train_step

    def spy(lifter, optimizer, *args, **kwargs):
        seen.append(optimizer.param_groups[0]["lr"])
        return original(lifter, optimizer, *args, **kwargs)

    monkeypatch.setattr(training, "train_step", spy)
    config = cfg.resolve({"model": "mixste", "data": str(tiny_data), "model_args": tiny_args["mixste"],
                          "train": {"epochs": 2, "batch_size": 8, "lr": 1e-3, "schedule": "cosine",
                                    "warmup_steps": 2}})
    Run(config, out=tmp_path)()
    steps = len(seen) // 2
    assert seen == pytest.approx([learning_rate(config["train"], s, steps) for s in range(2 * steps)])
    assert seen[0] == pytest.approx(5e-4)        # half-way up the warm-up
    assert seen[1] == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi / (2 * steps))))   # cosine from step 1


def test_val_every_validates_those_epochs_and_the_last_and_selects_among_them(tiny_data, tiny_args, tmp_path):
    config = cfg.resolve({"model": "mixste", "data": str(tiny_data), "model_args": tiny_args["mixste"],
                          "train": {"epochs": 3, "batch_size": 32, "val_every": 2}})
    record = Run(config, out=tmp_path)()
    history = record["training"]["history"]
    assert [h["validation_wb"] is None for h in history] == [True, False, False]
    assert record["training"]["selected_epoch"] in (2, 3)
    best = torch.load(tmp_path / record["run_id"] / "best.pt", weights_only=True)
    assert best["epoch"] == record["training"]["selected_epoch"]


@pytest.mark.parametrize("model", ["videopose", "poseformer", "mixste", "d3dp", "pafuse"])
def test_the_paper_preset_is_the_reference_recipe(model):
    paper = cfg.resolve({"model": model}, preset_name="paper")
    assert paper == cfg.resolve({"model": model})   # the preset adds nothing to the lifter's recipe
    train = paper["train"]
    assert (train["schedule"], train["warmup_steps"], train["stride"], train["val_every"]) == ("exponential", 0,
                                                                                               None, 1)
    if model == "pafuse":   # D3DP's recipe, which PAFUSE uses unchanged
        assert {key: train[key] for key in ("optimizer", "lr", "lr_decay", "weight_decay", "batch_size", "epochs")} == {
            "optimizer": "adamw", "lr": 6e-5, "lr_decay": 0.993, "weight_decay": 0.1, "batch_size": 37, "epochs": 400}
        sizes = {**model_defaults(model), **paper["model_args"]}   # the lifter's recipe sizes, nothing over them
        assert paper["model_args"] == {} and (sizes["width"], sizes["depth"], sizes["heads"]) == (512, 8, 8)
        assert paper["eval"]["hypotheses_steps"] == [[1, 1], [20, 10], [300, 5]] and paper["frames"] == 27


def test_the_quick_preset_keeps_its_run_ids():
    """Same flags, same run folder: resolving twice, or in another order of --set, gives the same id."""
    first = cfg.resolve(cfg.set_overrides(["model=pafuse", "seed=1", "train.epochs=2"]), preset_name="quick")
    again = cfg.resolve(cfg.set_overrides(["train.epochs=2", "model=pafuse", "seed=1"]), preset_name="quick")
    assert cfg.run_id(first) == cfg.run_id(again) and first == again
    assert cfg.run_id(first) != cfg.run_id(cfg.resolve(cfg.set_overrides(["model=pafuse", "seed=1"]),
                                                       preset_name="quick"))


@pytest.mark.parametrize("model", ["videopose", "poseformer", "mixste", "d3dp", "pafuse"])
def test_the_medium_preset_is_quick_trained_twice_as_long(model):
    quick = cfg.resolve({"model": model}, preset_name="quick")
    medium = cfg.resolve({"model": model}, preset_name="medium")
    assert medium["train"] == {**quick["train"], "epochs": 2 * quick["train"]["epochs"]}
    assert {k: v for k, v in medium.items() if k != "train"} == {k: v for k, v in quick.items() if k != "train"}


def test_a_preset_that_extends_another_layers_over_it_per_lifter(tmp_path, monkeypatch):
    (tmp_path / "base.yaml").write_text("train: {epochs: 3, lr: 0.5}\nlifters:\n  mixste: {train: {epochs: 5}}\n")
    (tmp_path / "child.yaml").write_text("extends: base\ntrain: {batch_size: 7}\n"
                                         "lifters:\n  mixste: {train: {lr: 0.25}}\n")
    (tmp_path / "loop.yaml").write_text("extends: loop\n")
    (tmp_path / "orphan.yaml").write_text("extends: missing\n")
    monkeypatch.setattr(cfg, "PRESET_DIR", tmp_path)
    assert cfg.preset("child", "mixste")["train"] == {"epochs": 5, "lr": 0.25, "batch_size": 7}
    assert cfg.preset("child", "videopose")["train"] == {"epochs": 3, "lr": 0.5, "batch_size": 7}
    with pytest.raises(ConfigError, match="in a cycle: loop -> loop"):
        cfg.preset("loop", "mixste")
    with pytest.raises(ConfigError, match="unknown preset 'missing' \\(extended by 'orphan'\\)"):
        cfg.preset("orphan", "mixste")
